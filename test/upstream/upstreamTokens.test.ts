import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { UpstreamSource } from '../../shared/credentials/records.js';
import { DependencyUnavailableError } from '../../shared/errors.js';
import type { SecretStore, SecretVersion } from '../../shared/secrets/secretStore.js';
import { createUpstreamClient } from '../../shared/upstream/upstreamClient.js';
import {
  upstreamKeyTags,
  upstreamSecretReaderFor,
  type UpstreamCredentialKind,
} from '../../shared/upstream/upstreamSecret.js';
import { UpstreamTokenCache } from '../../shared/upstream/upstreamTokenCache.js';
import {
  createUpstreamTokens,
  remainingSeconds,
  type UpstreamFetchEvent,
  type UpstreamTokens,
} from '../../shared/upstream/upstreamTokens.js';
import { startUpstreamStub, type UpstreamOperation, type UpstreamStub } from '../support/upstreamStub.js';
import { loopbackHostPolicy } from './loopbackHostPolicy.js';
import { upstreamTestTls, type UpstreamTestTls } from './upstreamTestTls.js';

/**
 * Upstream mode end to end, below the HTTP layer: secret stores → key re-read → upstream client (undici,
 * HTTPS, retries) → the stub speaking the real Azure wire shapes → token cache, under one frozen clock.
 */

const accountId = '35d830cb-f062-4062-9792-d6316039df56';
const keys = {
  mixedReality: 'bXItYWNjb3VudC1rZXktb2xkLWZvci10ZXN0cy1vbmx5',
  mixedRealityRotated: 'bXItYWNjb3VudC1rZXktbmV3LWZvci10ZXN0cy1vbmx5',
  cognitive: 'aaaa1111bbbb2222cccc3333dddd4444',
  cognitiveRotated: 'eeee5555ffff6666aaaa7777bbbb8888',
  wrap: 'd3JhcC1wYXNzd29yZC1mb3ItdGVzdHMtb25seS0xMjM0',
} as const;
const targetResourceId =
  '/subscriptions/0000/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/client-face';
const scope = 'http://contoso.servicebus.windows.net/orders';

let nowMs = Date.parse('2025-04-21T12:00:00Z');
const clock = () => new Date(nowMs);
const advance = (seconds: number) => void (nowMs += seconds * 1000);

/** The kind whose tags `set-upstream` writes on a secret of this name (by its prefix). */
const kindByPrefix: ReadonlyArray<readonly [string, UpstreamCredentialKind]> = [
  ['upstream-mr-', 'mixedRealityAccount'],
  ['upstream-cs-', 'cognitiveResource'],
  ['upstream-wrap-', 'wrapIssuer'],
];

/** An in-memory store; `reads` counts getSecret calls. Secrets carry the CLI's tags unless named in `untagged`. */
class MemorySecretStore implements SecretStore {
  readonly values = new Map<string, string>();
  readonly untagged = new Set<string>();
  reads = 0;
  async getSecret(name: string): Promise<SecretVersion | undefined> {
    this.reads++;
    const value = this.values.get(name);
    const kind = kindByPrefix.find(([prefix]) => name.startsWith(prefix))?.[1];
    const tags = kind && !this.untagged.has(name) ? upstreamKeyTags(kind) : undefined;
    return value === undefined
      ? undefined
      : { name, version: 'v1', value, enabled: true, createdOn: new Date(0), tags };
  }
  getFreshSecret(name: string): Promise<SecretVersion | undefined> {
    return this.getSecret(name);
  }
  async getSecretVersions(name: string): Promise<readonly SecretVersion[]> {
    const current = await this.getSecret(name);
    return current ? [current] : [];
  }
}

/** The process's store as the upstream tokens see it: reads from `cached` (may be stale), fresh reads from `vault`. */
function cacheInFrontOf(cached: SecretStore, vault: SecretStore): SecretStore {
  return {
    getSecret: (name) => cached.getSecret(name),
    getFreshSecret: (name) => vault.getFreshSecret(name),
    getSecretVersions: (name) => cached.getSecretVersions(name),
  };
}

let tls: UpstreamTestTls;
let stub: UpstreamStub;
/** `cached` plays the process's secret cache (may be stale); `vault` is the store itself. */
let cached: MemorySecretStore;
let vault: MemorySecretStore;
let tokens: UpstreamTokens;
let cache: UpstreamTokenCache;
let events: UpstreamFetchEvent[];
/** Every wait the upstream client asked for (between attempts), and how many requests the stub had seen by then. */
let waits: Array<{ ms: number; sentBefore: number }>;
const logLines: string[] = [];

let source: Record<'mixedReality' | 'cognitive' | 'wrap', UpstreamSource>;

const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );

beforeAll(async () => {
  tls = await upstreamTestTls();
  stub = await startUpstreamStub({
    tls: tls.server,
    clock,
    credentials: {
      mixedReality: { accountId, accountKey: keys.mixedReality },
      cognitiveKey: keys.cognitive,
      wrap: { issuerName: 'owner', password: keys.wrap },
    },
  });
  source = {
    mixedReality: { endpoint: stub.url, secretName: 'upstream-mr-demo' },
    cognitive: { endpoint: stub.url, secretName: 'upstream-cs-speech' },
    wrap: { endpoint: `${stub.url}/WRAPv0.9`, secretName: 'upstream-wrap-contoso' },
  };
});

afterAll(async () => {
  await tokens.close();
  await stub.close();
  await tls.dispose();
});

beforeEach(async () => {
  await tokens?.close();
  stub.setFault(undefined);
  stub.resetRecords();
  stub.credentials.mixedReality.accountKey = keys.mixedReality;
  stub.credentials.cognitiveKey = keys.cognitive;
  cached = new MemorySecretStore();
  vault = new MemorySecretStore();
  for (const store of [cached, vault]) {
    store.values.set('upstream-mr-demo', `${accountId}:${keys.mixedReality}`);
    store.values.set('upstream-cs-speech', keys.cognitive);
    store.values.set('upstream-wrap-contoso', keys.wrap);
  }
  events = [];
  waits = [];
  cache = new UpstreamTokenCache({ clock });
  tokens = createUpstreamTokens({
    cache,
    hostPolicy: loopbackHostPolicy,
    client: createUpstreamClient({
      hostPolicy: loopbackHostPolicy,
      testTrustedCa: tls.clientCa,
      backoffBaseMs: 20,
      backoffMaxMs: 50,
      totalBudgetMs: 3_000,
      log: (line) => logLines.push(line),
      // Waits between attempts are recorded, not slept: the retry follows at once.
      sleep: async (ms) => void waits.push({ ms, sentBefore: stub.count() }),
    }),
    readSecret: upstreamSecretReaderFor(cacheInFrontOf(cached, vault)),
    clock,
    log: (line) => logLines.push(line),
    onFetch: (event) => events.push(event),
  });
});

afterEach(() => {
  expect(stub.internalErrors).toEqual([]);
});

const flows: ReadonlyArray<readonly [UpstreamOperation, () => Promise<{ token: string; expiresAt: Date }>]> = [
  ['mixedRealityToken', () => tokens.mixedRealityToken(source.mixedReality)],
  ['issueToken', () => tokens.cognitiveToken(source.cognitive)],
  [
    'issueLimitedAccessToken',
    () =>
      tokens.limitedAccessToken(source.cognitive, {
        targetResourceId,
        featureFlags: ['Face.Identification'],
        expiredTimeSeconds: 3_600,
      }),
  ],
  ['wrapToken', () => tokens.wrapToken(source.wrap, { issuerName: 'owner', scope })],
];

describe('1,000 concurrent clients cost one upstream call', () => {
  it.each(flows)('%s', async (operation, call) => {
    const served = await Promise.all(Array.from({ length: 1_000 }, call));
    expect(stub.count()).toBe(1);
    expect(stub.count(operation)).toBe(1);
    expect(new Set(served.map((s) => s.token))).toEqual(new Set([stub.issuedTokens[0]]));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      flow: operation,
      outcome: 'fetched',
      attempts: 1,
      keyReread: false,
      status: 200,
    });
  });
});

describe('expiry-driven refresh', () => {
  it('a Speech token is reused for 9 minutes, served on while exactly one more call refreshes it', async () => {
    const first = await tokens.cognitiveToken(source.cognitive);
    advance(539);
    expect((await tokens.cognitiveToken(source.cognitive)).token).toBe(first.token);
    expect(stub.count()).toBe(1);
    advance(2);
    const during = await Promise.all(Array.from({ length: 200 }, () => tokens.cognitiveToken(source.cognitive)));
    expect(new Set(during.map((s) => s.token))).toEqual(new Set([first.token]));
    await cache.settled();
    expect(stub.count()).toBe(2);
    const refreshed = await tokens.cognitiveToken(source.cognitive);
    expect(refreshed.token).toBe(stub.issuedTokens[1]);
    expect(refreshed.expiresAt).toEqual(new Date(nowMs + 600_000));
    expect(stub.count()).toBe(2);
  });

  it('WRAP: the served token reports its remaining lifetime', async () => {
    await tokens.wrapToken(source.wrap, { issuerName: 'owner', scope });
    advance(100);
    const served = await tokens.wrapToken(source.wrap, { issuerName: 'owner', scope });
    expect(remainingSeconds(served.expiresAt, clock())).toBe(10_799 - 100);
    expect(stub.count()).toBe(1);
  });

  it('limited access tokens share an entry per target (any case), flag set and lifetime step (never longer than asked)', async () => {
    const ask = (expiredTimeSeconds: number, featureFlags: string[], target = targetResourceId) =>
      tokens.limitedAccessToken(source.cognitive, { targetResourceId: target, featureFlags, expiredTimeSeconds });
    await Promise.all([
      ask(3_600, ['Face.Identification', 'Face.Verification']),
      ask(3_630, ['Face.Verification', 'Face.Identification']),
      ask(7_199, ['Face.Verification', 'Face.Identification', 'Face.Verification'], targetResourceId.toUpperCase()),
    ]);
    expect(stub.count()).toBe(1);
    expect(stub.requests[0]?.path).toBe('/sts/v1.0/issueLimitedAccessToken?expiredTime=3600');
    await Promise.all([ask(1_800, ['Face.Identification']), ask(3_599, ['Face.Identification'])]);
    expect(stub.count()).toBe(2);
    expect(stub.requests[1]?.path).toBe('/sts/v1.0/issueLimitedAccessToken?expiredTime=1800');
  });
});

describe('upstream outages', () => {
  it('with a warm token: 0 errors, and the failed refresh is not repeated during the cooldown', async () => {
    const warm = await tokens.cognitiveToken(source.cognitive);
    advance(560);
    stub.setFault({ kind: 'status', status: 500 });
    const results = await Promise.allSettled(
      Array.from({ length: 300 }, () => tokens.cognitiveToken(source.cognitive)),
    );
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(0);
    expect(results.every((r) => r.status === 'fulfilled' && r.value.token === warm.token)).toBe(true);
    await cache.settled();
    expect(stub.count()).toBe(1 + 3); // the warm fetch, then one background refresh of 3 attempts
    advance(5);
    await tokens.cognitiveToken(source.cognitive);
    expect(stub.count()).toBe(4);
    expect(events.at(-1)).toMatchObject({ outcome: 'failed', failure: 'status', status: 500, attempts: 3 });
  });

  it('cold: DependencyUnavailableError with the upstream Retry-After, after one upstream call', async () => {
    stub.setFault({ kind: 'status', status: 503, retryAfter: '30' });
    const errors = await Promise.all(
      Array.from({ length: 100 }, () => rejectionOf(tokens.cognitiveToken(source.cognitive))),
    );
    expect(stub.count()).toBe(1);
    for (const error of errors) {
      expect(error).toBeInstanceOf(DependencyUnavailableError);
      expect(error).toMatchObject({ dependency: 'upstream', retryAfterSeconds: 30 });
    }
  });

  it('a 429 with Retry-After: 1 is retried after at least a second', async () => {
    stub.failNext({ kind: 'status', status: 429, retryAfter: '1' });
    const served = await tokens.mixedRealityToken(source.mixedReality);
    expect(waits).toEqual([{ ms: 1_000, sentBefore: 1 }]);
    expect(served.token).toBe(stub.issuedTokens[0]);
    expect(stub.count()).toBe(2);
    expect(events[0]).toMatchObject({ outcome: 'fetched', attempts: 2 });
  });

  it('a connection reset is retried', async () => {
    stub.failNext({ kind: 'reset' });
    const before = logLines.length;
    const served = await tokens.wrapToken(source.wrap, { issuerName: 'owner', scope });
    expect(served.token).toBe(stub.issuedTokens[0]);
    expect(stub.count()).toBe(2);
    expect(logLines.slice(before).join('\n')).toMatch(/attempt 1 failed: upstream connection error/);
  });

  it('a 4xx other than 401/429 is neither retried nor a reason to re-read the key', async () => {
    const error = await rejectionOf(
      tokens.limitedAccessToken(source.cognitive, {
        targetResourceId: 'not-an-arm-id',
        featureFlags: ['Face.Identification'],
        expiredTimeSeconds: 3_600,
      }),
    );
    expect(error).toMatchObject({ dependency: 'upstream' });
    expect(stub.count()).toBe(1);
    expect(vault.reads).toBe(0);
  });

  it('a garbled token is never passed on', async () => {
    stub.failNext({ kind: 'wrongToken' });
    const error = await rejectionOf(tokens.cognitiveToken(source.cognitive));
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect(events[0]).toMatchObject({ outcome: 'failed', failure: 'protocol' });
  });
});

describe('an upstream 401 (the real key was rotated)', () => {
  it('re-reads the key from the vault once, bypassing the cache, and succeeds with the new key', async () => {
    stub.credentials.cognitiveKey = keys.cognitiveRotated;
    vault.values.set('upstream-cs-speech', keys.cognitiveRotated); // the cache still holds the old key
    const served = await tokens.cognitiveToken(source.cognitive);
    expect(served.token).toBe(stub.issuedTokens[0]);
    expect(stub.count()).toBe(2);
    expect(stub.requests.map((r) => r.headers['ocp-apim-subscription-key'])).toEqual([
      keys.cognitive,
      keys.cognitiveRotated,
    ]);
    expect(cached.reads).toBe(1);
    expect(vault.reads).toBe(1);
    expect(events).toEqual([expect.objectContaining({ outcome: 'fetched', keyReread: true, attempts: 2 })]);
  });

  it('works for Mixed Reality account credentials too', async () => {
    stub.credentials.mixedReality.accountKey = keys.mixedRealityRotated;
    vault.values.set('upstream-mr-demo', `${accountId}:${keys.mixedRealityRotated}`);
    await tokens.mixedRealityToken(source.mixedReality);
    expect(stub.count()).toBe(2);
    expect(vault.reads).toBe(1);
  });

  it('when the vault has no new key either: one re-read, no second call, then 503', async () => {
    stub.credentials.cognitiveKey = keys.cognitiveRotated;
    const error = await rejectionOf(tokens.cognitiveToken(source.cognitive));
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect(error).toMatchObject({ dependency: 'upstream' });
    expect(stub.count()).toBe(1);
    expect(vault.reads).toBe(1);
    await rejectionOf(tokens.cognitiveToken(source.cognitive)); // cooling down: neither the upstream nor the vault is asked
    expect(stub.count()).toBe(1);
    expect(vault.reads).toBe(1);
  });

  it('a missing upstream secret is a 503 without any upstream call', async () => {
    const error = await rejectionOf(tokens.cognitiveToken({ endpoint: stub.url, secretName: 'upstream-cs-absent' }));
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect(stub.count()).toBe(0);
    expect(events[0]).toMatchObject({ outcome: 'failed', failure: 'configuration' });
  });
});

describe('upstream secrets', () => {
  it('a malformed Mixed Reality secret is a 503 without an upstream call, and is never quoted', async () => {
    const malformed = 'missing-colon-c2VjcmV0LXZhbHVlLW5ldmVyLWxvZ2dlZA';
    cached.values.set('upstream-mr-demo', malformed);
    const before = logLines.length;
    const error = await rejectionOf(tokens.mixedRealityToken(source.mixedReality));
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect(String((error as Error).message)).not.toContain(malformed);
    expect(stub.count()).toBe(0);
    expect(events[0]).toMatchObject({ outcome: 'failed', failure: 'configuration', attempts: 0 });
    expect(logLines.slice(before).join('\n')).not.toContain(malformed.slice(0, 16));
  });
});

describe('log hygiene', () => {
  it('no upstream key or token appears in any log line captured by this file', async () => {
    const before = logLines.length;
    stub.failNext({ kind: 'status', status: 500 });
    stub.failNext({ kind: 'reset' });
    await tokens.wrapToken(source.wrap, { issuerName: 'owner', scope });
    stub.credentials.cognitiveKey = keys.cognitiveRotated;
    vault.values.set('upstream-cs-speech', keys.cognitiveRotated);
    await tokens.cognitiveToken(source.cognitive);
    expect(logLines.length - before).toBeGreaterThanOrEqual(4);
    const secrets = [...Object.values(keys), ...stub.issuedTokens];
    for (const line of logLines) {
      for (const secret of secrets) {
        expect(line).not.toContain(secret);
        expect(line).not.toContain(secret.slice(0, 16));
      }
    }
  });
});

describe('only a CLI-made upstream key of the right kind is ever sent', () => {
  it('a secret with the right name but without the CLI tags is never read into a request', async () => {
    cached.untagged.add('upstream-cs-speech');
    const error = await rejectionOf(tokens.cognitiveToken(source.cognitive));
    expect(error).toMatchObject({ dependency: 'upstream' });
    expect(stub.count()).toBe(0);
    expect(events[0]).toMatchObject({ outcome: 'failed', failure: 'configuration', attempts: 0 });
  });

  it.each([
    ['another team secret', 'payments-api-key'],
    ['our signing key', 'sts-signing-key'],
    ['a credential record', 'cs-resource-speech'],
    ["another kind's upstream key (a WRAP password for a Cognitive record)", 'upstream-wrap-contoso'],
    ['the bare prefix', 'upstream-cs-'],
  ])('%s named as a Cognitive key is refused before the store is read', async (_what, secretName) => {
    cached.values.set(secretName, keys.cognitive);
    const readsBefore = cached.reads;
    const error = await rejectionOf(tokens.cognitiveToken({ endpoint: stub.url, secretName }));
    expect(error).toMatchObject({ dependency: 'upstream' });
    expect(cached.reads).toBe(readsBefore);
    expect(stub.count()).toBe(0);
  });
});

describe('hosts: the production policy never reaches a stand-in', () => {
  it('without the test policy, a loopback endpoint is refused before the key is read or anything is sent', async () => {
    const production = createUpstreamTokens({
      client: createUpstreamClient({ testTrustedCa: tls.clientCa }),
      readSecret: upstreamSecretReaderFor(cached),
      clock,
      onFetch: (event) => events.push(event),
    });
    try {
      for (const call of [
        () => production.cognitiveToken(source.cognitive),
        () => production.mixedRealityToken(source.mixedReality),
        () => production.wrapToken(source.wrap, { issuerName: 'owner', scope }),
      ]) {
        expect(await rejectionOf(call())).toMatchObject({ dependency: 'upstream' });
      }
      expect(stub.count()).toBe(0);
      expect(cached.reads).toBe(0);
      expect(events.map((e) => e.failure)).toEqual(['configuration', 'configuration', 'configuration']);
    } finally {
      await production.close();
    }
  });
});

describe("lifetimes: the token's own expiry, capped at the documented lifetime, never less than 30 s left", () => {
  it('a JWT expiring in year 9999 is cached for the documented 10 minutes only', async () => {
    stub.failNext({ kind: 'lifetime', ownSeconds: 253_402_300_799 - Math.floor(nowMs / 1000) });
    const served = await tokens.cognitiveToken(source.cognitive);
    expect(served.expiresAt).toEqual(new Date(nowMs + 600_000));
    advance(541);
    await tokens.cognitiveToken(source.cognitive);
    await cache.settled();
    expect(stub.count()).toBe(2);
  });

  it('a Mixed Reality token claiming a year is kept 24 h at most', async () => {
    stub.failNext({ kind: 'lifetime', ownSeconds: 365 * 86_400 });
    expect((await tokens.mixedRealityToken(source.mixedReality)).expiresAt).toEqual(new Date(nowMs + 86_400_000));
  });

  it('an expired SWT announced with expires_in=999999999 is neither served nor cached', async () => {
    stub.failNext({ kind: 'lifetime', ownSeconds: -3_600, envelopeSeconds: 999_999_999 });
    expect(await rejectionOf(tokens.wrapToken(source.wrap, { issuerName: 'owner', scope }))).toMatchObject({
      dependency: 'upstream',
    });
    expect(events[0]).toMatchObject({ outcome: 'failed', failure: 'protocol' });
  });

  it('a WRAP token announcing more than its ExpiresOn is served for what its ExpiresOn leaves, at most 3 h', async () => {
    stub.failNext({ kind: 'lifetime', ownSeconds: 900, envelopeSeconds: 999_999_999 });
    const served = await tokens.wrapToken(source.wrap, { issuerName: 'owner', scope });
    expect(remainingSeconds(served.expiresAt, clock())).toBe(900);
  });

  it('a freshly fetched token with 1 s left is never served', async () => {
    stub.failNext({ kind: 'lifetime', ownSeconds: 1 });
    expect(await rejectionOf(tokens.cognitiveToken(source.cognitive))).toMatchObject({ dependency: 'upstream' });
    expect(events[0]).toMatchObject({ outcome: 'failed', failure: 'protocol' });
  });
});
