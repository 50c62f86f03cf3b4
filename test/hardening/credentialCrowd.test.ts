import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import type { MixedRealityAccount } from '../../shared/credentials/records.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import type { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { IndexedSecretStore } from '../../shared/secrets/indexedSecretStore.js';
import { createServices, type StsServices } from '../../shared/services.js';
import { createMixedRealityAccount } from '../../tools/sts/credentials/provisioning.js';
import { startKeyVaultTestServer, type KeyVaultTestServer } from '../../tooling/doubles/keyVaultTestServer.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';
import {
  closeLoopbackClients,
  flowRequest,
  loopbackClient,
  sendHttp,
  TOKEN_FLOWS,
  type Answer,
  type ClientRequest,
} from './hardeningSupport.js';

/**
 * A crowd of strangers (many loopback source addresses, 127.0.x.y) presenting made-up credentials in every
 * flow, against the Key Vault path (real SDKs, the Key Vault test server with a transaction budget and small
 * list pages) and the embedded file store, over HTTP. What must hold (docs/key-vault.md#index): a right key is
 * served (no 503) on a cold instance during the crowd; the vault sees no read of a name it does not hold;
 * found secrets stay cached however many absent names are asked for; a change made in the vault directly,
 * outside the admin CLI, is picked up at the next listing. Counts are asserted, never times.
 */

/** Small pages, so every listing spans several list calls as a large vault's does. */
const PAGE_SIZE = 4;
const INDEX_REFRESH = 60;
let vault: KeyVaultTestServer;
let credentials: TestCredentials;
/** Extra accounts in the vault that no test reads before the crowd arrives. */
let unreadAccounts: MixedRealityAccount[];
let nowMs = 0;
const clock = (): Date => new Date(nowMs);

beforeAll(async () => {
  // Scaled-down Key Vault throttling (Azure: 4,000 per 10 s per vault); the tests stay far below it.
  vault = await startKeyVaultTestServer({ pageSize: PAGE_SIZE, budget: { transactions: 2_000, windowSeconds: 10 } });
  process.env.IDENTITY_ENDPOINT = vault.identityEndpoint;
  process.env.IDENTITY_HEADER = vault.identityHeader;
  credentials = await createTestCredentials();
  for (const name of await credentials.store.listSecretNames()) {
    for (const version of [...(await credentials.store.getSecretVersions(name))].reverse()) {
      vault.seed(name, version.value, { contentType: version.contentType, enabled: version.enabled });
    }
  }
  unreadAccounts = [];
  for (let i = 0; i < 6; i += 1) {
    const account = await createMixedRealityAccount(credentials.store, {
      accountDomain: 'westus2.mixedreality.azure.com',
    });
    const secret = vaultLayout.mixedRealityAccount(account.accountId);
    vault.seed(secret, (await credentials.store.getSecret(secret))?.value ?? '', { contentType: 'application/json' });
    unreadAccounts.push(account);
  }
  nowMs = Date.now() + 1_000;
});
afterAll(async () => {
  await closeLoopbackClients();
  await vault.close();
  await credentials.remove();
});
afterEach(() => {
  vault.resetFaults();
});

/**
 * The app on the Key Vault test server; `warnings` collects what the operator is told (`createServices`' `warn`).
 */
async function startKeyVaultApp(
  env: Record<string, string> = {},
): Promise<{ host: TestHost; services: StsServices; warnings: string[] }> {
  const config = loadConfig({
    STS_ISSUER: 'https://sts.test.example/',
    STS_LEDGER_MODE: 'off',
    KEY_VAULT_URL: vault.vaultUrl,
    STS_VAULT_TIMEOUT_MS: '10000',
    STS_SECRET_INDEX_REFRESH_SECONDS: String(INDEX_REFRESH),
    ...env,
  });
  const warnings: string[] = [];
  const services = await createServices(config, clock, (line) => warnings.push(line));
  return { host: await startTestHost({ services }), services, warnings };
}

/** One request with a made-up credential of `flow`'s kind: unknown account id, key, issuer or namespace. */
function strangerRequest(i: number): ClientRequest {
  const key = randomBytes(24).toString('base64');
  switch (i % 5) {
    case 0: {
      const accountId = randomUUID();
      return {
        method: 'GET',
        path: `/accounts/${accountId}/token`,
        headers: { authorization: `Bearer ${accountId}:${key}` },
      };
    }
    case 1:
      return {
        method: 'POST',
        path: '/sts/v1.0/issueToken',
        headers: { 'ocp-apim-subscription-key': randomBytes(16).toString('hex') },
        body: '',
      };
    case 2:
      return flowRequest('issueLimitedAccessToken', credentials, randomBytes(16).toString('hex'));
    case 3:
      return {
        method: 'POST',
        path: '/WRAPv0.9/',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          wrap_name: `made-up-${i}`,
          wrap_password: key,
          wrap_scope: 'http://contoso.servicebus.windows.net/',
        }).toString(),
      };
    default:
      return {
        method: 'POST',
        path: '/WRAPv0.9/',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          wrap_name: 'owner',
          wrap_password: key,
          wrap_scope: `http://ns${i}.servicebus.windows.net/`,
        }).toString(),
      };
  }
}

/**
 * `perAddress` made-up requests from each of `addresses` source addresses 127.0.<octet>.1.., at most 64 in
 * flight; resolves with every status seen. `onProgress` is called after each answer with the count so far.
 */
async function crowd(
  host: TestHost,
  octet: number,
  addresses: number,
  perAddress: number,
  onProgress?: (answered: number) => void,
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const jobs = Array.from({ length: addresses * perAddress }, (_, i) => i);
  let answered = 0;
  const worker = async (): Promise<void> => {
    for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) {
      const from = loopbackClient(`127.0.${octet}.${(job % addresses) + 1}`);
      const answer = await sendHttp(host.url, strangerRequest(job), from);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      answered += 1;
      onProgress?.(answered);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  return statuses;
}

function accountRequest(account: MixedRealityAccount, key = account.keys[0]): ClientRequest {
  return {
    method: 'GET',
    path: `/accounts/${account.accountId}/token`,
    headers: { authorization: `Bearer ${account.accountId}:${key}` },
  };
}

/** Every name the vault was asked for is a name it holds: no read was spent on a made-up credential. */
function expectOnlyExistingNamesRead(): void {
  const existing = new Set(vault.names().map((name) => name.toLowerCase()));
  expect(vault.namesRead().filter((name) => !existing.has(name))).toEqual([]);
}

describe('a crowd of made-up credentials on the Key Vault path', () => {
  it('a cold instance under a crowd from 200 addresses serves right keys it never read, with no read of an unknown name', async () => {
    vault.resetCounters();
    const { host, services } = await startKeyVaultApp();
    try {
      const honest: Promise<Answer>[] = [];
      const honestFrom = loopbackClient('127.0.31.1');
      // The crowd is the cold instance's first traffic; right keys arrive while it is under way.
      let round = 0;
      const statuses = await crowd(host, 30, 200, 5, (answered) => {
        if (answered % 200 !== 0 || round >= 4) return;
        for (const flow of TOKEN_FLOWS) honest.push(sendHttp(host.url, flowRequest(flow, credentials), honestFrom));
        honest.push(sendHttp(host.url, accountRequest(unreadAccounts[round] as MixedRealityAccount), honestFrom));
        round += 1;
      });
      const answers = await Promise.all(honest);
      expect(answers).toHaveLength(4 * (TOKEN_FLOWS.length + 1));
      expect(answers.map((a) => a.status).filter((status) => status !== 200)).toEqual([]);

      expect(statuses.get(503)).toBeUndefined();
      expect([...statuses.keys()].every((status) => [400, 401, 403, 429].includes(status))).toBe(true);
      expectOnlyExistingNamesRead();
      expect(vault.stats.budgetThrottled).toBe(0);
      const stats = (services.secrets as IndexedSecretStore).stats();
      expect(stats.index.listings).toBe(1);
      expect(stats.index.pages).toBeGreaterThan(1); // the listing was paged (nextLink)
      expect(stats.size).toBeLessThanOrEqual(vault.names().length); // the cache holds found secrets only
    } finally {
      await host.close();
    }
  });

  it('found secrets are never evicted by absent names: a flood leaves a warm account cached (no re-read)', async () => {
    const { host, services } = await startKeyVaultApp({ STS_SECRET_CACHE_MAX_ENTRIES: '10' });
    try {
      const account = unreadAccounts[0] as MixedRealityAccount;
      const secret = vaultLayout.mixedRealityAccount(account.accountId);
      expect((await sendHttp(host.url, accountRequest(account))).status).toBe(200);
      const reads = vault.readsOf(secret);

      await crowd(host, 32, 50, 20); // 1,000 made-up credentials, a hundred times the cache's bound

      expect((await sendHttp(host.url, accountRequest(account), loopbackClient('127.0.33.1'))).status).toBe(200);
      expect(vault.readsOf(secret)).toBe(reads);
      const stats = (services.secrets as IndexedSecretStore).stats();
      expect(stats.evictions).toBe(0);
      expect(stats.refusedUnlisted).toBeGreaterThanOrEqual(1_000);
      expectOnlyExistingNamesRead();
    } finally {
      await host.close();
    }
  });

  it('changes made in the vault directly (disable, new value, delete, create) are picked up at the next listing', async () => {
    const { host, services } = await startKeyVaultApp();
    const index = (services.secrets as IndexedSecretStore).index;
    try {
      const [disabled, rotated, deleted] = unreadAccounts.slice(3, 6) as [
        MixedRealityAccount,
        MixedRealityAccount,
        MixedRealityAccount,
      ];
      for (const account of [disabled, rotated, deleted])
        expect((await sendHttp(host.url, accountRequest(account))).status).toBe(200);
      const created = await createMixedRealityAccount(credentials.store, {
        accountDomain: 'westus2.mixedreality.azure.com',
      });
      const createdSecret = vaultLayout.mixedRealityAccount(created.accountId);

      // As the portal or `az keyvault secret set` would: straight into the vault, not through the admin CLI.
      vault.setEnabled(vaultLayout.mixedRealityAccount(disabled.accountId), false);
      const newKey = randomBytes(32).toString('base64');
      const rotatedRecord = { ...rotated, keys: [newKey, rotated.keys[1]] };
      vault.seed(vaultLayout.mixedRealityAccount(rotated.accountId), JSON.stringify(rotatedRecord), {
        contentType: 'application/json',
      });
      vault.deleteSecret(vaultLayout.mixedRealityAccount(deleted.accountId));
      vault.seed(createdSecret, (await credentials.store.getSecret(createdSecret))?.value ?? '', {
        contentType: 'application/json',
      });

      // Until the next listing, the instance answers from what it holds (within the documented interval).
      expect((await sendHttp(host.url, accountRequest(created))).status).toBe(401);

      nowMs += INDEX_REFRESH * 1.2 * 1000 + 1_000; // past the longest jittered interval
      await sendHttp(host.url, accountRequest(created)); // this lookup starts the listing in the background
      await index.refreshNow(); // joins it

      expect((await sendHttp(host.url, accountRequest(disabled))).status).toBe(401);
      expect((await sendHttp(host.url, accountRequest(rotated))).status).toBe(401); // the old key 1
      expect((await sendHttp(host.url, accountRequest(rotated, newKey))).status).toBe(200);
      expect((await sendHttp(host.url, accountRequest(rotated, rotated.keys[1]))).status).toBe(200);
      expect((await sendHttp(host.url, accountRequest(deleted))).status).toBe(401);
      expect((await sendHttp(host.url, accountRequest(created))).status).toBe(200);
      expect(index.stats().listings).toBe(2);
    } finally {
      await host.close();
    }
  });

  it('a vault over its transaction budget answers 429 + Retry-After, and a cold instance says 503 + Retry-After, not 500', async () => {
    const saved = vault.budget;
    vault.budget = { transactions: 0, windowSeconds: 10 };
    const { host, warnings } = await startKeyVaultApp();
    try {
      const answer = await sendHttp(host.url, flowRequest('mixedRealityToken', credentials));
      expect(answer.status).toBe(503);
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(vault.stats.budgetThrottled).toBeGreaterThanOrEqual(1);
      // The operator is told why every lookup answers 503, once, without the key the request carried.
      expect(warnings).toEqual([
        'secret name index: the first listing failed (DependencyUnavailableError ERR_STS_DEPENDENCY_UNAVAILABLE: ' +
          'Key Vault throttled the request (429)); lookups answer 503 until it succeeds',
      ]);
    } finally {
      vault.budget = saved;
      await host.close();
    }
  });
});

describe('a crowd of made-up credentials on the embedded file store', () => {
  it('a cold instance under a crowd from 200 addresses serves every right key; the store holds only its own secrets', async () => {
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
      const honest: Promise<Answer>[] = [];
      let round = 0;
      const statuses = await crowd(host, 34, 200, 5, (answered) => {
        if (answered % 200 !== 0 || round >= 4) return;
        for (const flow of TOKEN_FLOWS)
          honest.push(sendHttp(host.url, flowRequest(flow, credentials), loopbackClient('127.0.35.1')));
        honest.push(
          sendHttp(
            host.url,
            accountRequest(unreadAccounts[round] as MixedRealityAccount),
            loopbackClient('127.0.35.1'),
          ),
        );
        round += 1;
      });
      const answers = await Promise.all(honest);
      expect(answers).toHaveLength(4 * (TOKEN_FLOWS.length + 1));
      expect(answers.map((a) => a.status).filter((status) => status !== 200)).toEqual([]);
      expect(statuses.get(503)).toBeUndefined();
      expect(store.viewCount).toBeLessThanOrEqual((await store.listSecretNames()).length);
    } finally {
      await host.close();
    }
  });
});
