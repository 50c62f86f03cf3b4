import { randomUUID } from 'node:crypto';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { decodeProtectedHeader } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { definition as mixedRealityToken } from '../../functions/mixedRealityToken.js';
import { loadConfig } from '../../shared/config.js';
import {
  createMixedRealityAccount,
  rotateCredentialKey,
  rotateSigningKey,
  setCredentialEnabled,
} from '../../tools/sts/credentials/provisioning.js';
import type { MixedRealityAccount } from '../../shared/credentials/records.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { CachedSecretStore } from '../../shared/secrets/cachedSecretStore.js';
import { IndexedSecretStore } from '../../shared/secrets/indexedSecretStore.js';
import { KeyVaultSecretStore } from '../../shared/secrets/keyVaultSecretStore.js';
import { createServices, type StsServices } from '../../shared/services.js';
import { generateSigningJwk } from '../../shared/tokens/signingKeyMaterial.js';
import { JWKS_MAX_AGE_SECONDS } from '../../shared/tokens/signingKeyRing.js';
import { startKeyVaultTestServer, type KeyVaultTestServer } from '../../tooling/doubles/keyVaultTestServer.js';

/**
 * The Key Vault path end to end: the Mixed Reality function handler, with services built from configuration
 * (`KEY_VAULT_URL` set ⇒ CachedSecretStore over KeyVaultSecretStore), the real SDKs, the managed identity of
 * App Service, and the Key Vault test server. The services' clock is injected and moved by hand.
 */

const MAX_AGE = 300;
const NEGATIVE_AGE = 30;
const INDEX_REFRESH = 60;
const MAX_STALE = 600;
/**
 * The app's vault timeout (and so its wait for a free read slot). Generous, so that a loaded machine never
 * turns slow reads into 503s; no assertion here measures time, and only "a vault that never answers" waits it out.
 */
const VAULT_TIMEOUT_MS = 5_000;

let server: KeyVaultTestServer;
/** Writes as an operator would (uncached, same vault). */
let admin: KeyVaultSecretStore;
let nowMs = 0;
const clock = (): Date => new Date(nowMs);
const advance = (seconds: number): void => {
  nowMs += seconds * 1000;
};

beforeAll(async () => {
  server = await startKeyVaultTestServer();
  process.env.IDENTITY_ENDPOINT = server.identityEndpoint;
  process.env.IDENTITY_HEADER = server.identityHeader;
  admin = new KeyVaultSecretStore({ vaultUrl: server.vaultUrl, timeoutMs: 5_000 });
  server.seed(vaultLayout.signingKey, JSON.stringify(generateSigningJwk('ES256')), {
    contentType: 'application/jwk+json',
  });
  nowMs = Date.now() + 1_000; // after the signing key's creation second
});
afterAll(async () => {
  await server.close();
});
afterEach(() => {
  server.resetFaults();
  // Whatever the fault, the operator is never told a key.
  for (const line of warnings) for (const key of keysCreated) expect(line).not.toContain(key);
});

/** The services {@link requestToken} answers with: the latest {@link startServices}. */
let current: StsServices | undefined;
/**
 * What the latest services told the operator (`createServices`' `warn`): a list of its own per
 * {@link startServices}, so a line an earlier test's services log late never lands in a later test's list.
 */
let warnings: string[] = [];
/** Every account key this file created. */
const keysCreated = new Set<string>();

/** The secret store's lines among {@link warnings}: one when an outage starts, one when the store answers again. */
const storeWarnings = (): string[] => warnings.filter((line) => line.startsWith('secret store: '));
const SERVING_STALE = / serving cached answers up to 600 s past their max age until it answers$/;

/** Fresh services (a fresh cache) as the function app builds them from its settings. */
async function startServices(env: Record<string, string> = {}): Promise<StsServices> {
  const config = loadConfig({
    STS_ISSUER: 'https://sts.test.example/',
    STS_LEDGER_MODE: 'off',
    KEY_VAULT_URL: server.vaultUrl,
    STS_SECRET_CACHE_MAX_AGE_SECONDS: String(MAX_AGE),
    STS_SECRET_CACHE_NEGATIVE_SECONDS: String(NEGATIVE_AGE),
    STS_SECRET_CACHE_MAX_STALE_SECONDS: String(MAX_STALE),
    STS_VAULT_TIMEOUT_MS: String(VAULT_TIMEOUT_MS),
    ...env,
  });
  const told: string[] = [];
  const services = await createServices(config, clock, (line) => told.push(line));
  warnings = told;
  expect(services.secrets).toBeInstanceOf(IndexedSecretStore);
  current = services;
  return services;
}

function cacheOf(services: StsServices): CachedSecretStore {
  return (services.secrets as IndexedSecretStore).cache;
}

interface Observed {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

async function requestToken(accountId: string, key: string): Promise<Observed> {
  const request = new HttpRequest({
    method: 'GET',
    url: `http://127.0.0.1:7071/accounts/${accountId}/token`,
    headers: { Authorization: `Bearer ${accountId}:${key}` },
    params: { accountId },
  });
  const context = new InvocationContext({ functionName: mixedRealityToken.name, logHandler: () => {} });
  if (!current) throw new Error('call startServices first');
  const init = (await mixedRealityToken.handlerFor(current)(request, context)) as HttpResponseInit;
  return { status: init.status ?? 200, headers: new Headers(init.headers), body: (init.body ?? '') as string };
}

function accessTokenOf(response: Observed): string {
  return (JSON.parse(response.body) as { AccessToken: string }).AccessToken;
}

async function newAccount(): Promise<MixedRealityAccount> {
  const account = await createMixedRealityAccount(admin, { accountDomain: 'eastus2.mixedreality.azure.com' });
  for (const key of account.keys) keysCreated.add(key);
  return account;
}

const secretOf = (account: MixedRealityAccount): string => vaultLayout.mixedRealityAccount(account.accountId);

describe('cost: the vault is read once per credential per max age', () => {
  it('100 concurrent requests for one cold credential make exactly 1 vault read', async () => {
    await startServices();
    const account = await newAccount();
    const readsBefore = server.readsOf(secretOf(account)); // the operator's existence check when creating it

    const responses = await Promise.all(
      Array.from({ length: 100 }, () => requestToken(account.accountId, account.keys[0])),
    );

    expect(responses.map((r) => r.status)).toEqual(Array.from({ length: 100 }, () => 200));
    expect(server.readsOf(secretOf(account)) - readsBefore).toBe(1);
  });

  it('a warm credential costs 0 vault calls', async () => {
    const services = await startServices();
    const account = await newAccount();
    expect((await requestToken(account.accountId, account.keys[1])).status).toBe(200);
    const requestsBefore = server.stats.vaultRequests;

    for (let i = 0; i < 200; i += 1) {
      expect((await requestToken(account.accountId, account.keys[i % 2] as string)).status).toBe(200);
      advance(1); // 200 s of traffic, inside the max age
    }

    expect(server.stats.vaultRequests).toBe(requestsBefore);
    expect(cacheOf(services).stats().hits).toBeGreaterThanOrEqual(200);
  });

  it('refreshes ahead of expiry in the background: no request waits for the vault', async () => {
    const services = await startServices();
    const account = await newAccount();
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(200);
    const reads = server.readsOf(secretOf(account));

    advance(MAX_AGE * 0.7);
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(200);
    expect(cacheOf(services).stats().refreshes).toBe(0);

    advance(MAX_AGE * 0.15);
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(200);
    await server.whenReadsOf(secretOf(account), reads + 1); // the background refresh reaches the vault
    expect(server.readsOf(secretOf(account))).toBe(reads + 1);
    expect(cacheOf(services).stats().refreshes).toBe(1);

    advance(MAX_AGE * 0.5); // past the first entry's max age, inside the refreshed one's
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(200);
    expect(server.readsOf(secretOf(account))).toBe(reads + 1);
  });
});

describe('unknown account ids: no vault read, nothing held (the secret name index)', () => {
  it('10,000 lookups of 300 random unknown ids cost no vault read and leave no cache entry', async () => {
    const services = await startServices();
    const ids = Array.from({ length: 300 }, () => randomUUID());
    const readsBefore = server.stats.secretReads;

    for (let batch = 0; batch < 100; batch += 1) {
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          services.credentials.verifyAccountKey(ids[(batch * 100 + i * 7) % ids.length] as string, 'k'),
        ),
      );
      expect(results.every((r) => !r.ok && r.reason === 'unknown_credential')).toBe(true);
    }

    expect(server.stats.secretReads - readsBefore).toBe(0);
    expect(cacheOf(services).stats()).toMatchObject({ storeReads: 0, size: 0 });
    expect((services.secrets as IndexedSecretStore).stats()).toMatchObject({
      refusedUnlisted: 10_000,
      index: { listings: 1 },
    });
  });

  it('spends at most STS_VAULT_READS_PER_SECOND store reads per second on cold names that exist; the rest get 503 + Retry-After', async () => {
    const accounts: MixedRealityAccount[] = [];
    for (let i = 0; i < 120; i += 1) accounts.push(await newAccount()); // one at a time: a loaded machine stays under the admin's timeout
    // A vault timeout no loaded machine reaches: only the read budget may turn a lookup into a 503 here.
    const services = await startServices({ STS_VAULT_READS_PER_SECOND: '50', STS_VAULT_TIMEOUT_MS: '60000' });
    const readsBefore = server.stats.secretReads;
    const attempt = (id: string) =>
      services.credentials.verifyAccountKey(id, 'k').then(
        () => 'answered',
        (error: unknown) =>
          error instanceof DependencyUnavailableError ? `unavailable ${error.retryAfterSeconds}` : 'other',
      );

    const first = await Promise.all(accounts.map((a) => attempt(a.accountId)));
    expect(first.filter((r) => r === 'answered')).toHaveLength(50);
    expect(first.filter((r) => r === 'unavailable 1')).toHaveLength(70);
    expect(server.stats.secretReads - readsBefore).toBe(50);

    advance(1); // one second refills the budget
    const second = await Promise.all(accounts.map((a) => attempt(a.accountId)));
    expect(second.filter((r) => r === 'answered')).toHaveLength(100); // 50 from the cache, 50 read now
    expect(server.stats.secretReads - readsBefore).toBe(100);
  });

  it('never holds more than maxEntries, whatever the flood; least recently used go first', async () => {
    const maxEntries = 500;
    const cache = new CachedSecretStore(
      new KeyVaultSecretStore({ vaultUrl: server.vaultUrl, timeoutMs: 5_000, clock }),
      {
        maxAgeSeconds: MAX_AGE,
        negativeMaxAgeSeconds: NEGATIVE_AGE,
        maxEntries,
        maxStaleSeconds: MAX_STALE,
        vaultTimeoutMs: 5_000,
      },
      clock,
    );
    const names = Array.from({ length: 3_000 }, () => vaultLayout.mixedRealityAccount(randomUUID()));
    const heapBefore = process.memoryUsage().heapUsed;
    for (let batch = 0; batch < names.length / 100; batch += 1) {
      await Promise.all(names.slice(batch * 100, batch * 100 + 100).map((name) => cache.getSecret(name)));
      expect(cache.stats().size).toBeLessThanOrEqual(maxEntries);
    }
    expect(cache.stats()).toMatchObject({ storeReads: 3_000, evictions: 2_500, size: maxEntries });
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);

    await Promise.all(names.slice(-maxEntries).map((name) => cache.getSecret(name)));
    expect(cache.stats().storeReads).toBe(3_000); // the newest 500 are still cached
    await Promise.all(names.slice(0, 100).map((name) => cache.getSecret(name)));
    expect(cache.stats().storeReads).toBe(3_100); // the oldest were evicted
  });

  it('a credential created after the index was listed is served once the next listing lands', async () => {
    const services = await startServices();
    const index = (services.secrets as IndexedSecretStore).index;
    const accountId = randomUUID();
    expect((await services.credentials.verifyAccountKey(accountId, 'k')).ok).toBe(false);
    const account = await createMixedRealityAccount(admin, {
      accountDomain: 'westus.mixedreality.azure.com',
      accountId,
    });
    const reads = server.readsOf(secretOf(account));
    expect((await requestToken(accountId, account.keys[0])).status).toBe(401); // not listed yet: refused unread
    expect(server.readsOf(secretOf(account))).toBe(reads);
    advance(INDEX_REFRESH * 1.2 + 1); // past the longest jittered interval: the next lookup starts a listing
    await requestToken(accountId, account.keys[0]);
    await index.refreshNow(); // joins the listing that request started
    expect((await requestToken(accountId, account.keys[0])).status).toBe(200);
  });
});

describe('vault faults: warm credentials keep working, cold ones get 503 + Retry-After, never 500', () => {
  it.each([
    ['a full outage (connections reset)', 'reset'],
    ['a full outage (503)', 503],
    ['a vault that never answers', 'hang'],
  ] as const)('%s', async (_, mode) => {
    const warm = await Promise.all(Array.from({ length: 10 }, () => newAccount()));
    const cold = await newAccount(); // listed by the index, never read
    const services = await startServices();
    for (const account of warm) expect((await requestToken(account.accountId, account.keys[0])).status).toBe(200);

    server.faults.outage = mode;
    advance(MAX_AGE + 1); // every warm entry is now past its max age: only the stale window serves it
    const requestsAtOutage = server.stats.vaultRequests;

    const warmResponses = await Promise.all(
      Array.from({ length: 100 }, (_, i) => {
        const account = warm[i % warm.length] as MixedRealityAccount;
        return requestToken(account.accountId, account.keys[i % 2] as string);
      }),
    );
    expect(warmResponses.filter((r) => r.status === 200)).toHaveLength(100);

    for (let i = 0; i < 5; i += 1) {
      const response = await requestToken(cold.accountId, cold.keys[0]);
      expect(response.status).toBe(503);
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(response.body).toBe('');
      expect(response.headers.get('ms-cv')).toMatch(/\.0$/);
    }
    // One failed fetch per name in flight at most (a reset connection is retried once at once), then the
    // cache backs off instead of adding load.
    expect(server.stats.vaultRequests - requestsAtOutage).toBeLessThanOrEqual(
      (warm.length + 1) * (mode === 'reset' ? 2 : 1),
    );
    expect(cacheOf(services).stats().staleServes).toBeGreaterThanOrEqual(100);

    // Recovery is automatic once the vault answers and the Retry-After has passed.
    server.resetFaults();
    advance(Number((await requestToken(cold.accountId, cold.keys[0])).headers.get('retry-after') ?? 5));
    expect((await requestToken(cold.accountId, cold.keys[0])).status).toBe(200);
    // The operator hears of the outage once (not per request) and of its end once.
    expect(storeWarnings()).toEqual([
      expect.stringMatching(new RegExp(`^secret store: DependencyUnavailableError .+;${SERVING_STALE.source}`)),
      'secret store: answering again',
    ]);
  });

  it('a connection reset as a kept-alive socket is reused: retried once at once, the right key served', async () => {
    const [warm, account] = [await newAccount(), await newAccount()];
    await startServices();
    expect((await requestToken(warm.accountId, warm.keys[0])).status).toBe(200); // index, signing key, a kept-alive socket
    server.faults.resetNext = 1;
    const before = server.stats.vaultRequests;
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(200);
    expect(server.stats.vaultRequests - before).toBe(2);
  });

  it('a 429 storm: warm served, cold 503 with the vault’s Retry-After, one throttled call in all', async () => {
    const warm = await newAccount();
    const colds = await Promise.all(Array.from({ length: 5 }, () => newAccount()));
    const services = await startServices();
    expect((await requestToken(warm.accountId, warm.keys[0])).status).toBe(200);

    server.faults.throttleRetryAfterSeconds = 7;
    const throttledBefore = server.stats.throttled;
    for (const cold of colds) {
      const response = await requestToken(cold.accountId, cold.keys[0]);
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('7');
    }
    advance(MAX_AGE + 1);
    for (let i = 0; i < 50; i += 1) expect((await requestToken(warm.accountId, warm.keys[0])).status).toBe(200);
    // The first cold read, the warm entry's re-read and the index's due listing; everything else backed off.
    expect(server.stats.throttled - throttledBefore).toBeLessThanOrEqual(3);
    expect(cacheOf(services).stats().shed).toBeGreaterThan(0);

    server.resetFaults();
    advance(7);
    expect((await requestToken(colds[0]?.accountId as string, colds[0]?.keys[0] as string)).status).toBe(200);
    expect(storeWarnings()).toEqual([
      'secret store: DependencyUnavailableError ERR_STS_DEPENDENCY_UNAVAILABLE: Key Vault throttled the request (429);' +
        ' serving cached answers up to 600 s past their max age until it answers',
      'secret store: answering again',
    ]);
  });

  it('serves stale no longer than maxStaleSeconds past the max age', async () => {
    await startServices();
    const account = await newAccount();
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(200);
    server.faults.outage = 503;
    advance(MAX_AGE + MAX_STALE - 10);
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(200);
    advance(20);
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(503);
    // Told once, when the outage began; past the stale window nothing new is said (it is the same outage).
    expect(storeWarnings()).toEqual([
      'secret store: DependencyUnavailableError ERR_STS_DEPENDENCY_UNAVAILABLE: Key Vault answered 503 ServiceUnavailable;' +
        ' serving cached answers up to 600 s past their max age until it answers',
    ]);
  });

  it('a failing managed-identity endpoint: 503 with Retry-After, not 500, then recovery', async () => {
    // A user-assigned identity this process has no token for yet, so the identity endpoint must be asked.
    await startServices({ AZURE_CLIENT_ID: randomUUID() });
    const account = await newAccount();
    server.faults.identity = 500;
    const response = await requestToken(account.accountId, account.keys[0]);
    expect(response.status).toBe(503);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    server.resetFaults();
    advance(Number(response.headers.get('retry-after')));
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(200);
    // Nothing was listed yet, so every lookup answered 503: the operator is told so, and when it lists again.
    expect(warnings).toEqual([
      'secret name index: the first listing failed (DependencyUnavailableError ERR_STS_DEPENDENCY_UNAVAILABLE: ' +
        'The managed identity could not get a token for Key Vault (The managed identity endpoint answered 500: ' +
        'Injected identity endpoint failure.)); lookups answer 503 until it succeeds',
      expect.stringMatching(/^secret name index: listing again \(\d+ names\)$/),
    ]);
  });
});

describe('refusals stay refusals (401), never 500', () => {
  it('a disabled secret version, an expired secret, and a disabled credential', async () => {
    await startServices();
    const disabledVersion = await newAccount();
    server.setEnabled(secretOf(disabledVersion), false);
    const expired = await newAccount();
    server.setExpiry(secretOf(expired), new Date(Date.now() - 60_000));
    const disabledRecord = await newAccount();
    await setCredentialEnabled(admin, { kind: 'mixedRealityAccount', accountId: disabledRecord.accountId }, false);

    for (const account of [disabledVersion, expired, disabledRecord]) {
      const response = await requestToken(account.accountId, account.keys[0]);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Invalid token: The account id or account key is invalid.');
    }
  });

  it('a cached secret stops working at its own expiry, without a vault call', async () => {
    await startServices();
    const account = await newAccount();
    server.setExpiry(secretOf(account), new Date(nowMs + 120_000));
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(200);
    const reads = server.readsOf(secretOf(account));
    advance(121);
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(401);
    expect(server.readsOf(secretOf(account))).toBe(reads);
  });
});

describe('rotation is picked up within the max age, without a restart', () => {
  it('of an account key', async () => {
    await startServices();
    const account = await newAccount();
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(200);

    const { newKey } = await rotateCredentialKey(
      admin,
      { kind: 'mixedRealityAccount', accountId: account.accountId },
      1,
    );
    advance(MAX_AGE + 1);

    expect((await requestToken(account.accountId, newKey)).status).toBe(200);
    expect((await requestToken(account.accountId, account.keys[0])).status).toBe(401);
    expect((await requestToken(account.accountId, account.keys[1])).status).toBe(200); // key 2 served throughout
  });

  it('of the signing key: published within the max age, signing once every verifier can know it', async () => {
    const services = await startServices();
    const account = await newAccount();
    const first = decodeProtectedHeader(accessTokenOf(await requestToken(account.accountId, account.keys[0]))).kid;
    const kidsBefore = (await services.signingKeys.publicJwks()).map((k) => k.kid);
    expect(kidsBefore).toContain(first);

    await rotateSigningKey(admin, 'ES256');
    advance(MAX_AGE + 1);
    const kidsAfter = (await services.signingKeys.publicJwks()).map((k) => k.kid);
    const added = kidsAfter.filter((kid) => !kidsBefore.includes(kid));
    expect(added).toHaveLength(1);
    expect(kidsAfter).toContain(first); // old tokens keep verifying

    advance(MAX_AGE + JWKS_MAX_AGE_SECONDS);
    const next = decodeProtectedHeader(accessTokenOf(await requestToken(account.accountId, account.keys[0]))).kid;
    expect(next).toBe(added[0]);
  });
});
