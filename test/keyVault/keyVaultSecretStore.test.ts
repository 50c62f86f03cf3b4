import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { expectedVaultScope, KeyVaultSecretStore } from '../../shared/secrets/keyVaultSecretStore.js';
import {
  startKeyVaultTestServer,
  VAULT_RESOURCE,
  type KeyVaultTestServer,
} from '../../tooling/doubles/keyVaultTestServer.js';

/**
 * The Key Vault store through the real `@azure/keyvault-secrets` and the app's App Service managed-identity
 * credential (what `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` select), against the Key Vault test server over HTTPS trusted through NODE_EXTRA_CA_CERTS.
 */

/**
 * The store's bound on one call. Generous, so that a loaded machine never turns a slow success into a failure:
 * no assertion here measures time, and only the two "never answers" cases wait for the bound to pass.
 */
const TIMEOUT_MS = 5_000;
let server: KeyVaultTestServer;
let store: KeyVaultSecretStore;

beforeAll(async () => {
  server = await startKeyVaultTestServer({ pageSize: 2 });
  // What App Service sets for a function app with a managed identity.
  process.env.IDENTITY_ENDPOINT = server.identityEndpoint;
  process.env.IDENTITY_HEADER = server.identityHeader;
  store = new KeyVaultSecretStore({ vaultUrl: server.vaultUrl, timeoutMs: TIMEOUT_MS });
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.resetFaults();
});

/** A store with its own user-assigned identity: no token shared with another test (credentials are per client id). */
function isolatedStore(clientId = randomUUID()): KeyVaultSecretStore {
  return new KeyVaultSecretStore({ vaultUrl: server.vaultUrl, timeoutMs: TIMEOUT_MS, clientId });
}

async function failure(promise: Promise<unknown>): Promise<DependencyUnavailableError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DependencyUnavailableError);
  return error as DependencyUnavailableError;
}

/**
 * What a client that retries sees: the store read again, at most three times. A read started while the SDK's
 * hung token request is still open joins that request and fails with it; the next read asks for a new token.
 */
async function servedAfterRetries(target: KeyVaultSecretStore, name: string) {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      return await target.getSecret(name);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

describe('TLS', () => {
  /** Status of a plain `fetch` of the vault from a new Node process with `env`, or the TLS error code. */
  async function fetchFromNewProcess(env: NodeJS.ProcessEnv): Promise<string> {
    const script = `fetch(${JSON.stringify(`${server.vaultUrl}/secrets?api-version=7.6`)}).then((r) => console.log(r.status), (e) => console.log(e.cause?.code ?? e.message))`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { env, timeout: 30_000 });
    return stdout.trim();
  }

  it('the vault certificate is trusted only through NODE_EXTRA_CA_CERTS, as a user would trust a private CA', async () => {
    expect(process.env.NODE_EXTRA_CA_CERTS).toBeTruthy();
    expect(await fetchFromNewProcess({ ...process.env })).toBe('401'); // the challenge: TLS was accepted
    const untrusted = { ...process.env };
    delete untrusted.NODE_EXTRA_CA_CERTS;
    expect(await fetchFromNewProcess(untrusted)).toMatch(/CERT|SELF_SIGNED|ISSUER/);
  });
});

describe('reads', () => {
  it('authenticates with the managed identity after the 401 challenge, once per client', async () => {
    const name = `first-${randomUUID()}`;
    server.seed(name, 'v1');
    const fresh = isolatedStore();
    const before = server.stats;

    expect((await fresh.getSecret(name))?.value).toBe('v1');
    expect((await fresh.getSecret(name))?.value).toBe('v1');

    const after = server.stats;
    expect(after.challenges - before.challenges).toBe(1);
    expect(after.tokensIssued - before.tokensIssued).toBe(1);
    expect(after.apiVersions.length).toBeGreaterThan(0);
  });

  it('asks for the vault token at the first call, before the vault has answered its challenge', async () => {
    // The vault never answers, so no challenge ever arrives: the one token request is the early one, which the
    // SDK would join once challenged. Nothing here is timed; the call ends through the store's bound.
    const early = new KeyVaultSecretStore({ vaultUrl: server.vaultUrl, timeoutMs: 1_000, clientId: randomUUID() });
    const before = server.stats;
    server.faults.outage = 'hang';
    await failure(early.getSecret('never-answered'));
    const after = server.stats;
    expect(after.challenges - before.challenges).toBe(0);
    expect(after.identityRequests - before.identityRequests).toBe(1);
    expect(after.tokensIssued - before.tokensIssued).toBe(1);
  });

  it('guesses the challenge scope from the vault host, the public cloud for any other host', () => {
    expect(expectedVaultScope('https://contoso-sts.vault.azure.net/')).toBe('https://vault.azure.net/.default');
    expect(expectedVaultScope('https://contoso-sts.vault.azure.cn')).toBe('https://vault.azure.cn/.default');
    expect(expectedVaultScope('https://c.vault.usgovcloudapi.net')).toBe('https://vault.usgovcloudapi.net/.default');
    expect(expectedVaultScope(server.vaultUrl)).toBe(`${VAULT_RESOURCE}/.default`);
  });

  it('sends the user-assigned client id to the identity endpoint', async () => {
    const clientId = randomUUID();
    const name = `uami-${randomUUID()}`;
    server.seed(name, 'x');
    expect((await isolatedStore(clientId).getSecret(name))?.value).toBe('x');
    expect(server.stats.identityClientIds).toContain(clientId);
  });

  it('returns the latest version with its attributes', async () => {
    const name = `latest-${randomUUID()}`;
    server.seed(name, 'old');
    const version = server.seed(name, 'new', { contentType: 'application/json', tags: { kind: 'test' } });
    const secret = await store.getSecret(name);
    expect(secret).toMatchObject({
      name,
      version,
      value: 'new',
      enabled: true,
      contentType: 'application/json',
      tags: { kind: 'test' },
    });
  });

  it('treats an unknown name (404 SecretNotFound) as absent', async () => {
    expect(await store.getSecret(`missing-${randomUUID()}`)).toBeUndefined();
  });

  it('treats a disabled latest version (403 SecretDisabled) as absent, even with an older enabled one', async () => {
    const name = `disabled-${randomUUID()}`;
    server.seed(name, 'older');
    server.seed(name, 'newer', { enabled: false });
    expect(await store.getSecret(name)).toBeUndefined();
    expect(server.readsOf(name)).toBe(1);
  });

  it('treats an expired or not-yet-valid version as absent (the vault still returns it)', async () => {
    const expired = `expired-${randomUUID()}`;
    server.seed(expired, 'x', { expiresOn: new Date(Date.now() - 60_000) });
    const early = `early-${randomUUID()}`;
    server.seed(early, 'x', { notBefore: new Date(Date.now() + 3_600_000) });
    expect(await store.getSecret(expired)).toBeUndefined();
    expect(await store.getSecret(early)).toBeUndefined();
    expect(server.readsOf(expired)).toBe(1);
  });

  it('spends no vault call on a name that cannot exist in a vault', async () => {
    const before = server.stats.vaultRequests;
    expect(await store.getSecret('mr-account-../../secrets')).toBeUndefined();
    expect(await store.getSecret('x'.repeat(128))).toBeUndefined();
    expect(server.stats.vaultRequests).toBe(before);
  });

  it('lists versions across pages, newest first, with values of enabled ones only', async () => {
    const name = `ring-${randomUUID()}`;
    const v1 = server.seed(name, 'k1');
    const v2 = server.seed(name, 'k2', { enabled: false });
    const v3 = server.seed(name, 'k3');
    const v4 = server.seed(name, 'k4');
    const v5 = server.seed(name, 'k5');
    const listCalls = server.stats.listCalls;

    const versions = await store.getSecretVersions(name);

    expect(versions.map((v) => [v.version, v.value, v.enabled])).toEqual([
      [v5, 'k5', true],
      [v4, 'k4', true],
      [v3, 'k3', true],
      [v2, '', false],
      [v1, 'k1', true],
    ]);
    expect(server.stats.listCalls - listCalls).toBe(3); // pages of 2, followed through nextLink
    expect(await store.getSecretVersions(`none-${randomUUID()}`)).toEqual([]);
  });
});

describe('writes (admin)', () => {
  it('sets, disables a version and lists names', async () => {
    const name = `written-${randomUUID()}`;
    const first = await store.setSecret(name, 'a', { contentType: 'text/plain', tags: { kind: 'k' } });
    const second = await store.setSecret(name, 'b');
    expect(first).toMatchObject({ name, value: 'a', enabled: true, contentType: 'text/plain', tags: { kind: 'k' } });

    await store.updateSecretVersion(name, second.version, { enabled: false });
    expect(server.versionsOf(name).map((v) => [v.value, v.enabled])).toEqual([
      ['a', true],
      ['b', false],
    ]);
    expect(await store.getSecret(name)).toBeUndefined();
    expect(await store.listSecretNames()).toContain(name);
  });

  it('refuses a write to an unknown version with a clear error', async () => {
    await expect(store.updateSecretVersion(`nope-${randomUUID()}`, 'ffff', { enabled: false })).rejects.toThrow(
      /Key Vault update failed: not found/,
    );
  });
});

describe('faults become DependencyUnavailableError (503 + Retry-After), never a raw SDK error', () => {
  const name = `faulty-${randomUUID()}`;
  beforeAll(() => {
    server.seed(name, 'v');
  });

  it('429 carries the vault Retry-After, and the SDK does not sit out the delay (no retry)', async () => {
    server.faults.throttleRetryAfterSeconds = 17;
    const before = { throttled: server.stats.throttled, reads: server.readsOf(name) };
    const error = await failure(store.getSecret(name));
    expect(error.retryAfterSeconds).toBe(17);
    expect(error.dependency).toBe('secret-store');
    // One throttled read and no second one: the SDK's retry policy (which would wait 17 s first) is off.
    expect(server.stats.throttled - before.throttled).toBe(1);
    expect(server.readsOf(name) - before.reads).toBe(1);
  });

  it.each([500, 502, 503])('%i', async (status) => {
    server.faults.errorRate = 1;
    server.faults.errorStatus = status;
    const error = await failure(store.getSecret(name));
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });

  it('a reset connection', async () => {
    server.faults.outage = 'reset';
    await failure(store.getSecret(name));
  });

  // A hanging vault never answers: the call can only end through the store's own time bound.
  it('a vault that never answers, within the timeout', async () => {
    server.faults.outage = 'hang';
    const error = await failure(store.getSecret(name));
    expect(error.message).toMatch(/did not answer in time/);
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });

  it('recovers by itself once the vault answers again', async () => {
    server.faults.outage = 503;
    await failure(store.getSecret(name));
    server.resetFaults();
    expect((await store.getSecret(name))?.value).toBe('v');
  });

  it.each(['reset', 500, 'hang'] as const)('a failing managed-identity endpoint (%s), then recovery', async (mode) => {
    const fresh = isolatedStore();
    server.faults.identity = mode;
    const error = await failure(fresh.getSecret(name));
    expect(error.message).toMatch(/identity|token|did not answer/i);
    server.resetFaults();
    expect((await servedAfterRetries(fresh, name))?.value).toBe('v');
  });

  it('a vault that rejects the identity (401 after the challenge) is unavailable, not a crash', async () => {
    // An identity of this test's own, so that no other test's token is revoked with it.
    const clientId = randomUUID();
    const revoked = isolatedStore(clientId);
    expect((await revoked.getSecret(name))?.value).toBe('v');
    server.revokeTokens(clientId); // the token the SDK cached is now unknown to the vault: every call is challenged again
    const error = await failure(revoked.getSecret(name));
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect((await store.getSecret(name))?.value).toBe('v'); // other identities are unaffected
  });
});
