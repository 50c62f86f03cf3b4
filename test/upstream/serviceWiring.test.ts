import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { defineStsFunction } from '../../shared/app/stsFunction.js';
import { closeServices, createServices, getServices } from '../../shared/services.js';

/** How upstream mode is wired into the services: created lazily, per services instance, closed on shutdown. */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sts-upstream-wiring-'));
});
afterEach(async () => {
  await closeServices();
  vi.unstubAllEnvs();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The process's services come from `process.env`, as in a worker: point them at a temp store. */
function stubProcessEnv(issuer: string, store: string): void {
  vi.stubEnv('STS_ISSUER', issuer);
  vi.stubEnv('STS_LEDGER_MODE', 'off');
  vi.stubEnv('STS_LOCAL_STORE_PATH', join(dir, store));
  vi.stubEnv('KEY_VAULT_URL', '');
}

async function undiciLoads(env: Record<string, string>): Promise<{ outcome: string; loaded: string[] }> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'test/upstream/fixtures/reportUndiciLoads.ts'],
    {
      env: {
        PATH: process.env.PATH ?? '',
        STS_LEDGER_MODE: 'off',
        STS_LOCAL_STORE_PATH: join(dir, `${Math.random().toString(36).slice(2)}.json`),
        ...env,
      },
      timeout: 60_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { outcome: string; loaded: string[] };
}

describe('services.upstream', () => {
  it('minting locally never loads undici; serving a credential in upstream mode does', async () => {
    const [local, upstream] = await Promise.all([undiciLoads({}), undiciLoads({ CALL_UPSTREAM: '1' })]);
    expect(local).toEqual({ outcome: 'issued', loaded: [] });
    expect(upstream.outcome).toBe('DependencyUnavailableError');
    expect(upstream.loaded).toContain('undici/lib/dispatcher/pool.js');
    // The part of undici the client uses, not its index (which loads fetch, WebSocket, the caches and mocks too).
    expect(upstream.loaded).not.toContain('undici');
  }, 60_000);

  it('a definition answers with the process services, and handlerFor(services) with those services', async () => {
    stubProcessEnv('https://sts.process.test.example/', 'a.json');
    const other = await createServices(
      loadConfig({
        STS_ISSUER: 'https://sts.other.test.example/',
        STS_LEDGER_MODE: 'off',
        STS_LOCAL_STORE_PATH: join(dir, 'other.json'),
      }),
    );
    // Called directly, so the catalogue route of the entry it borrows does not matter.
    const reportIssuer = defineStsFunction({
      name: 'openidConfiguration',
      handle: async ({ services }) => ({ response: { jsonBody: { issuer: services.config.issuer } } }),
    });
    const issuerFrom = async (handler: typeof reportIssuer.handler): Promise<unknown> => {
      const request = new HttpRequest({ method: 'GET', url: 'http://127.0.0.1:7071/test/issuer' });
      const answer = (await handler(request, new InvocationContext({ logHandler: () => {} }))) as HttpResponseInit;
      return (JSON.parse(answer.body as string) as { issuer: string }).issuer;
    };

    expect(await issuerFrom(reportIssuer.handlerFor(other))).toBe('https://sts.other.test.example/');
    expect(await issuerFrom(reportIssuer.handler)).toBe('https://sts.process.test.example/');
    expect((await getServices()).config.issuer).toBe('https://sts.process.test.example/');
    await other.upstream.close();
  });

  it('closeServices closes the upstream client: later upstream calls answer 503, not a hang', async () => {
    stubProcessEnv('https://sts.process.test.example/', 'b.json');
    const services = await getServices();
    await closeServices();
    const error = await services.upstream
      .cognitiveToken({ endpoint: 'https://127.0.0.1:1', secretName: 'upstream-cs-x' })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect((error as DependencyUnavailableError).dependency).toBe('upstream');
  });
});
