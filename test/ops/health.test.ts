import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { DependencyUnavailableError } from '../../shared/errors.js';
import {
  createHealthProbe,
  HEALTH_CACHE_MS,
  HEALTH_TELEMETRY_FIELDS,
  HEALTH_TELEMETRY_PREFIX,
} from '../../shared/health/healthProbe.js';
import type { SecretStore } from '../../shared/secrets/secretStore.js';
import { createServices, type StsServices } from '../../shared/services.js';
import { FROZEN_NOW, startFlowHarness, TEST_ENV, type FlowHarness } from '../flows/flowHarness.js';
import { startAzuriteFixture, type AzuriteFixture } from '../support/azuriteFixture.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';

/** GET /health over HTTP through the local host (docs/operations.md, "Health endpoint"). */

let harness: FlowHarness;
let azurite: AzuriteFixture;
const hosts: TestHost[] = [];

beforeAll(async () => {
  harness = await startFlowHarness();
  azurite = await startAzuriteFixture();
}, 60_000);
afterAll(async () => {
  await Promise.all(hosts.map((host) => host.close()));
  await harness.close();
  await azurite.dispose();
});

/** The harness's store, counting reads that go past the cache (the health check's vault read). */
function countingStore(inner: SecretStore): SecretStore & { freshReads: number } {
  const store = {
    freshReads: 0,
    getSecret: (name: string) => inner.getSecret(name),
    getFreshSecret: (name: string) => {
      store.freshReads += 1;
      return inner.getFreshSecret(name);
    },
    getSecretVersions: (name: string) => inner.getSecretVersions(name),
  };
  return store;
}

async function health(
  services: StsServices,
): Promise<{ host: TestHost; get: () => Promise<{ status: number; headers: Record<string, unknown>; text: string }> }> {
  const host = await startTestHost({ services });
  hosts.push(host);
  return {
    host,
    get: async () => {
      const response = await request(`${host.url}/health`);
      return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
    },
  };
}

describe('GET /health', () => {
  it('200 with the store and the signing key: its age, ledger off, Entra not configured; nothing else', async () => {
    const { get } = await health(harness.services);
    const answer = await get();
    expect(answer.status).toBe(200);
    expect(answer.headers['cache-control']).toBe('no-store, no-cache');
    const body = JSON.parse(answer.text) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 'healthy',
      checks: { vault: 'up', signingKey: { status: 'up' }, ledger: 'off', entraAuthority: 'not-configured' },
    });
    const age = (body.checks as { signingKey: { ageSeconds: unknown } }).signingKey.ageSeconds;
    expect(typeof age === 'number' && age >= 0).toBe(true);
    // No credential id, no key, no setting, no path: only states and ages.
    const { account } = harness.credentials.mixedReality;
    for (const secretish of [account.accountId, account.keys[0], TEST_ENV.STS_ISSUER, harness.credentials.storePath]) {
      expect(answer.text).not.toContain(secretish);
    }
  });

  it('is cached: a burst of probes costs one store read past the cache, and one telemetry record', async () => {
    const store = countingStore(harness.services.secrets);
    const { host, get } = await health({ ...harness.services, secrets: store });
    const answers = await Promise.all(Array.from({ length: 20 }, () => get()));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(store.freshReads).toBe(1);
    const records = host.logLines.filter((line) => line.includes(HEALTH_TELEMETRY_PREFIX));
    expect(records).toHaveLength(1);
    const record = JSON.parse(
      (records[0] ?? '').slice((records[0] ?? '').indexOf(HEALTH_TELEMETRY_PREFIX) + HEALTH_TELEMETRY_PREFIX.length),
    ) as object;
    expect(Object.keys(record).sort()).toEqual([...HEALTH_TELEMETRY_FIELDS].sort());
  });

  it('503 with Retry-After when the vault cannot be reached (and says only which check is down)', async () => {
    const down = new DependencyUnavailableError('secret-store', 1, 'Key Vault unreachable');
    const store: SecretStore = {
      getSecret: () => Promise.reject(down),
      getFreshSecret: () => Promise.reject(down),
      getSecretVersions: () => Promise.reject(down),
    };
    const answer = await (await health({ ...harness.services, secrets: store })).get();
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('10');
    expect(JSON.parse(answer.text)).toMatchObject({
      status: 'unhealthy',
      checks: { vault: 'down', signingKey: { status: 'down' } },
    });
    expect(answer.text).not.toContain('unreachable');
  });

  it('the ledger: up when a probe row is written (Azurite), down when the table cannot be reached', async () => {
    const withLedger = async (connectionString: string) =>
      createServices(
        loadConfig({
          ...TEST_ENV,
          STS_LOCAL_STORE_PATH: harness.credentials.storePath,
          STS_LEDGER_MODE: 'required',
          STS_LEDGER_CONNECTION_STRING: connectionString,
        }),
        () => new Date(FROZEN_NOW),
      );
    const up = await (await health(await withLedger(azurite.connectionString))).get();
    expect(up.status).toBe(200);
    expect(JSON.parse(up.text)).toMatchObject({ checks: { ledger: 'up' } });

    const closedPort = azurite.connectionString.replace(`:${azurite.port}`, ':1');
    const down = await (await health(await withLedger(closedPort))).get();
    expect(down.status).toBe(503);
    expect(JSON.parse(down.text)).toMatchObject({ status: 'unhealthy', checks: { ledger: 'down', vault: 'up' } });
  });

  it('the Entra authority: up when its discovery names it, else down; asked again after the cache period', async () => {
    const authority = 'https://login.microsoftonline.com/00000000-0000-4000-8000-000000000001/v2.0';
    const config = loadConfig({
      ...TEST_ENV,
      STS_LOCAL_STORE_PATH: harness.credentials.storePath,
      STS_ENTRA_AUTHORITY: authority,
      STS_ENTRA_AUDIENCE: 'api://sts',
    });
    let now = FROZEN_NOW.getTime();
    let issuer = authority;
    const asked: string[] = [];
    const probe = createHealthProbe({
      config,
      secrets: harness.services.secrets,
      clock: () => new Date(now),
      fetchDocument: (url) => {
        asked.push(url);
        return Promise.resolve({ issuer });
      },
    });
    expect((await probe.report()).report).toMatchObject({ status: 'healthy', entraAuthority: 'up' });
    issuer = 'https://evil.example/';
    expect((await probe.report()).fresh).toBe(false); // cached
    now += HEALTH_CACHE_MS;
    expect((await probe.report()).report).toMatchObject({ status: 'unhealthy', entraAuthority: 'down' });
    expect(asked).toEqual([
      `${authority}/.well-known/openid-configuration`,
      `${authority}/.well-known/openid-configuration`,
    ]);
  });
});
