import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { closeServices, createServices, getServices, setServices, withServices } from '../../shared/services.js';

/** How upstream mode is wired into the services: created lazily, per services instance, closed on shutdown. */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sts-upstream-wiring-'));
});
afterAll(async () => {
  setServices(undefined);
  await rm(dir, { recursive: true, force: true });
});

async function undiciLoads(env: Record<string, string>): Promise<{ outcome: string; loaded: string[] }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'test/upstream/fixtures/reportUndiciLoads.ts'], {
    env: { PATH: process.env.PATH ?? '', STS_LEDGER_MODE: 'off', STS_LOCAL_STORE_PATH: join(dir, `${Math.random().toString(36).slice(2)}.json`), ...env },
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { outcome: string; loaded: string[] };
}

describe('services.upstream', () => {
  it('minting locally never loads undici; serving a credential in upstream mode does', async () => {
    const [local, upstream] = await Promise.all([undiciLoads({}), undiciLoads({ CALL_UPSTREAM: '1' })]);
    expect(local).toEqual({ outcome: 'issued', loaded: [] });
    expect(upstream.outcome).toBe('DependencyUnavailableError');
    expect(upstream.loaded).toContain('undici');
  }, 60_000);

  it('withServices answers getServices() with its own services inside, the process-wide ones outside', async () => {
    const config = loadConfig({ STS_LEDGER_MODE: 'off', STS_LOCAL_STORE_PATH: join(dir, 'a.json') });
    const processWide = await createServices(config);
    const other = await createServices(config);
    setServices(processWide);
    const inside = await withServices(other, async () => {
      await new Promise((resolve) => setImmediate(resolve)); // across a turn of the event loop
      return getServices();
    });
    expect(inside).toBe(other);
    expect(await getServices()).toBe(processWide);
  });

  it('closeServices closes the upstream client: later upstream calls answer 503, not a hang', async () => {
    const services = await createServices(loadConfig({ STS_LEDGER_MODE: 'off', STS_LOCAL_STORE_PATH: join(dir, 'b.json') }));
    setServices(services);
    await closeServices();
    const error = await services.upstream
      .cognitiveToken({ endpoint: 'https://127.0.0.1:1', secretName: 'upstream-cs-x' })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect((error as DependencyUnavailableError).dependency).toBe('upstream');
  });
});
