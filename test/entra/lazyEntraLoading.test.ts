import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Cold start: jose and the Entra validation load on the first JWT bearer, never for key callers. */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sts-lazy-entra-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function modulesLoaded(env: Record<string, string>): Promise<string[]> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'test/entra/fixtures/reportEntraLoads.ts'],
    {
      env: {
        PATH: process.env.PATH ?? '',
        STS_LEDGER_MODE: 'off',
        STS_LOCAL_STORE_PATH: join(dir, 'secrets.json'),
        // Nobody listens there: the JWT request fails as an outage would, after loading what it needs.
        STS_ENTRA_AUTHORITY: 'https://127.0.0.1:1/tenant/v2.0',
        STS_ENTRA_AUDIENCE: 'api://sts',
        ...env,
      },
      timeout: 60_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as string[];
}

describe('Entra validation loading', () => {
  it('with STS_ENTRA_AUTHORITY set, key callers load neither jose nor the validator', async () => {
    expect(await modulesLoaded({})).toEqual([]);
  });

  it('the first JWT bearer loads them (so the probe above can see a load)', async () => {
    expect(await modulesLoaded({ REPORT_AFTER_JWT: '1' })).toEqual(
      expect.arrayContaining(['jose', 'mixedRealityEntraCaller.js', 'entraTokenValidator.js', 'authorityKeys.js']),
    );
  });
});
