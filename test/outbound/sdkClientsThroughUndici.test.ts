import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { openLedgerTableService } from '../../shared/ledger/ledgerTableService.js';
import { KeyVaultSecretStore } from '../../shared/secrets/keyVaultSecretStore.js';
import { startKeyVaultTestServer, type KeyVaultTestServer } from '../../tooling/doubles/keyVaultTestServer.js';
import { startAzuriteFixture, type AzuriteFixture } from '../support/azuriteFixture.js';

/**
 * The Azure SDK clients of the product send through the one outbound client (undici, shared/outbound/), not
 * through Node's `http`/`https` modules that the SDK's default client uses: Key Vault over HTTPS with the test CA
 * (NODE_EXTRA_CA_CERTS), the ledger's table service on Azurite over plain HTTP.
 */

let vault: KeyVaultTestServer;
let azurite: AzuriteFixture;

beforeAll(async () => {
  [vault, azurite] = await Promise.all([startKeyVaultTestServer(), startAzuriteFixture()]);
  process.env.IDENTITY_ENDPOINT = vault.identityEndpoint;
  process.env.IDENTITY_HEADER = vault.identityHeader;
});
afterAll(async () => {
  await Promise.all([vault?.close(), azurite?.dispose()]);
});
afterEach(() => {
  vi.restoreAllMocks();
});

function nodeRequests(): () => number {
  const calls = [vi.spyOn(http, 'request'), vi.spyOn(http, 'get'), vi.spyOn(https, 'request'), vi.spyOn(https, 'get')];
  return () => calls.reduce((sum, spy) => sum + spy.mock.calls.length, 0);
}

describe('the SDK clients send through undici', () => {
  it('a Key Vault read (challenge, managed identity token, secret) makes no Node http/https request', async () => {
    const name = `secret-${randomUUID()}`;
    vault.seed(name, 'value-1');
    const counted = nodeRequests();
    const store = new KeyVaultSecretStore({ vaultUrl: vault.vaultUrl, timeoutMs: 5_000, clientId: randomUUID() });
    const secret = await store.getSecret(name);
    expect(secret?.value).toBe('value-1');
    expect(counted()).toBe(0);
  });

  it('a Key Vault read right after the challenge goes over the same kept-alive connection', async () => {
    // A vault of its own: a new origin, so no connection of an earlier test can be reused.
    const own = await startKeyVaultTestServer();
    // Its own identity endpoint too, for the credential of this test's new client id (made at the first read).
    vi.stubEnv('IDENTITY_ENDPOINT', own.identityEndpoint);
    vi.stubEnv('IDENTITY_HEADER', own.identityHeader);
    try {
      const name = `secret-${randomUUID()}`;
      own.seed(name, 'value-1');
      const store = new KeyVaultSecretStore({ vaultUrl: own.vaultUrl, timeoutMs: 5_000, clientId: randomUUID() });
      expect((await store.getSecret(name))?.value).toBe('value-1');
      expect((await store.getSecret(`${name}-absent`))?.value).toBeUndefined();
      // The challenge, the read it was for, and a second read: three requests, one TLS connection.
      expect(own.stats.vaultRequests).toBe(3);
      expect(own.stats.vaultConnections).toBe(1);
    } finally {
      vi.unstubAllEnvs();
      await own.close();
    }
  });

  it('a table service listing on Azurite makes no Node http/https request', async () => {
    const counted = nodeRequests();
    const service = await openLedgerTableService(
      { tableName: `t${randomUUID().replaceAll('-', '')}`, connectionString: azurite.connectionString },
      () => Promise.reject(new Error('no identity with a connection string')),
    );
    expect(await service.listPeriodTables()).toEqual([]);
    expect(service.operations).toBeGreaterThan(0);
    expect(counted()).toBe(0);
  });
});
