import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { createServices } from '../../shared/services.js';
import { loadConfig } from '../../shared/config.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { createMixedRealityAccount } from '../../tools/sts/credentials/provisioning.js';
import { startTestHost } from '../support/localHostFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';
import { closeLoopbackClients, loopbackClient, sendHttp } from './hardeningSupport.js';

/**
 * The embedded file store answers unknown names from its in-memory snapshot and remembers nothing about
 * them, so a flood of made-up names cannot grow memory; what it holds is bounded by the secrets in the file.
 */
let credentials: TestCredentials;
beforeAll(async () => {
  credentials = await createTestCredentials();
});
afterAll(async () => {
  await closeLoopbackClients();
  await credentials.remove();
});

describe('FileSecretStore and unknown names', () => {
  it('100,000 unknown names leave nothing behind, and a name created afterwards is found at once', async () => {
    const store = new FileSecretStore(credentials.storePath);
    const known = (await store.listSecretNames()).length;
    for (let i = 0; i < 100_000; i += 1)
      expect(await store.getSecret(vaultLayout.mixedRealityAccount(randomUUID()))).toBeUndefined();
    expect(store.viewCount).toBe(0);

    const account = await createMixedRealityAccount(store, { accountDomain: 'westus2.mixedreality.azure.com' });
    expect((await store.getSecret(vaultLayout.mixedRealityAccount(account.accountId)))?.value).toContain(
      account.accountId,
    );
    expect(store.viewCount).toBeLessThanOrEqual(known + 1);
  });

  it('over HTTP, 2,000 random account ids from one address: the store holds no more than its own secrets', async () => {
    const services = await createServices(
      loadConfig({
        STS_ISSUER: 'https://sts.test.example/',
        STS_LEDGER_MODE: 'off',
        STS_LOCAL_STORE_PATH: credentials.storePath,
      }),
    );
    const store = services.secrets as FileSecretStore;
    const host = await startTestHost({ services });
    try {
      for (let i = 0; i < 2_000; i += 1) {
        const accountId = randomUUID();
        const answer = await sendHttp(
          host.url,
          {
            method: 'GET',
            path: `/accounts/${accountId}/token`,
            headers: { authorization: `Bearer ${accountId}:k${i}` },
          },
          loopbackClient('127.0.20.1'),
        );
        expect([401, 429]).toContain(answer.status);
      }
      expect(store.viewCount).toBeLessThanOrEqual((await store.listSecretNames()).length);
    } finally {
      await host.close();
    }
  });
});
