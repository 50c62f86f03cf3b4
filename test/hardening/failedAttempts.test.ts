import { randomUUID } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { CredentialDirectory } from '../../shared/credentials/credentialDirectory.js';
import { StsError } from '../../shared/errors.js';
import { CachedSecretStore } from '../../shared/secrets/cachedSecretStore.js';
import { FailedAttemptLimiter, ipKey } from '../../shared/security/failedAttemptLimiter.js';
import { createServices } from '../../shared/services.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';
import {
  countedServices,
  countingStore,
  expectFlowErrorShape,
  flowRequest,
  invokeInProcess,
  sendHttp,
  TOKEN_FLOWS,
  type TokenFlow,
} from './hardeningSupport.js';

/**
 * Brute-force protection (issue #8 §3): failed attempts are limited per client IP and per credential, per
 * instance; a blocked caller gets 429 + Retry-After in the flow's own error shape before any key lookup; a
 * flood of unknown credentials keeps every counter and cache bounded.
 */

const START = new Date('2026-03-01T09:30:00.000Z');
let nowMs = START.getTime();
const clock = (): Date => new Date(nowMs);

let credentials: TestCredentials;
beforeAll(async () => {
  credentials = await createTestCredentials({ clock: () => START });
});
afterAll(async () => {
  await credentials.remove();
});

describe('FailedAttemptLimiter', () => {
  const limits = { perClientIp: 3, perCredential: 5, windowSeconds: 60, maxTrackedKeys: 1_000 };

  it('refuses an IP once it reached its limit, until the window ends, with the remaining seconds', () => {
    let t = 0;
    const limiter = new FailedAttemptLimiter(limits, () => new Date(t));
    for (let i = 0; i < 3; i += 1) {
      expect(() => limiter.admit('203.0.113.7', undefined)).not.toThrow();
      limiter.recordFailure('203.0.113.7', undefined);
    }
    t = 20_500;
    const refusal = catchError(() => limiter.admit('203.0.113.7', undefined));
    expect(refusal).toMatchObject({ status: 429, code: 'ERR_STS_RATE_LIMITED', retryAfterSeconds: 40, reason: 'rate_limited' });
    expect(() => limiter.admit('203.0.113.8', undefined)).not.toThrow(); // another client is not affected
    t = 60_000;
    expect(() => limiter.admit('203.0.113.7', undefined)).not.toThrow();
  });

  it('refuses a credential from every IP once it reached its limit, ids compared case-insensitively', () => {
    const limiter = new FailedAttemptLimiter(limits, () => new Date(0));
    for (let i = 0; i < 5; i += 1) limiter.recordFailure(`198.51.100.${i}`, 'Contoso/Owner');
    const refusal = catchError(() => limiter.admit('192.0.2.99', 'contoso/owner'));
    expect(refusal).toMatchObject({ status: 429, credentialId: 'contoso/owner' });
    expect(() => limiter.admit('192.0.2.99', 'contoso/other')).not.toThrow();
  });

  it('counts IPv6 clients per /64 and IPv4-mapped addresses as IPv4', () => {
    expect(ipKey('2001:db8:1:2:aaaa::1')).toBe(ipKey('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(ipKey('2001:db8:1:2::1')).not.toBe(ipKey('2001:db8:1:3::1'));
    expect(ipKey('::ffff:192.0.2.1')).toBe(ipKey('192.0.2.1'));
    expect(ipKey('2001:DB8:0:0:1::1')).toBe(ipKey('2001:db8::1:0:0:1'));
    expect(ipKey('not an ip'.repeat(100))?.length).toBeLessThanOrEqual(80);
    const limiter = new FailedAttemptLimiter(limits, () => new Date(0));
    for (let i = 0; i < 3; i += 1) limiter.recordFailure(`2001:db8:1:2::${i + 1}`, undefined);
    expect(limiter.clientIpRetryAfter('2001:db8:1:2::ffff')).toBe(60);
  });

  it('keeps at most maxTrackedKeys counters, however many ids and IPs fail, and long ids stay short', () => {
    const limiter = new FailedAttemptLimiter({ ...limits, maxTrackedKeys: 500 }, () => new Date(0));
    for (let i = 0; i < 50_000; i += 1) limiter.recordFailure(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `x`.repeat(1_000) + i);
    expect(limiter.trackedKeys).toBe(500);
    expect(limiter.evictions).toBe(100_000 - 500);
  });
});

describe('over HTTP: 429 + Retry-After in each flow’s shape once an IP failed too often', () => {
  const PER_IP = 4;
  let host: TestHost;
  let reads: () => number;
  beforeAll(async () => {
    const { services, store } = await countedServices(credentials, clock, { STS_FAILED_ATTEMPTS_PER_WINDOW: String(PER_IP) });
    reads = () => store.reads;
    host = await startTestHost({ services });
  });
  afterAll(async () => {
    await host.close();
  });

  it.each(TOKEN_FLOWS)('%s: the attempt after the limit is refused before any lookup, even with the right key', async (flow) => {
    nowMs += 3_600_000; // a fresh window for this flow
    for (let i = 0; i < PER_IP; i += 1) {
      const answer = await sendHttp(host.url, flowRequest(flow, credentials, `wrong-${i}-${randomUUID()}`));
      expect(answer.status).toBe(401);
    }
    const readsBefore = reads();
    const blocked = await sendHttp(host.url, flowRequest(flow, credentials, `wrong-${randomUUID()}`));
    expectFlowErrorShape(flow, blocked, 429);
    expect(Number(blocked.headers.get('retry-after'))).toBe(60);
    const evenValid = await sendHttp(host.url, flowRequest(flow, credentials));
    expectFlowErrorShape(flow, evenValid, 429);
    expect(reads()).toBe(readsBefore); // a blocked caller costs no vault read

    nowMs += 60_000;
    expect((await sendHttp(host.url, flowRequest(flow, credentials))).status).toBe(200);
  });

  it('does not count successes, 400s or requests for public documents', async () => {
    nowMs += 3_600_000;
    for (let i = 0; i < PER_IP * 3; i += 1) {
      expect((await sendHttp(host.url, flowRequest('issueToken', credentials))).status).toBe(200);
      expect((await sendHttp(host.url, { method: 'GET', path: '/accounts/not-a-guid/token', headers: {} })).status).toBe(400);
      expect((await sendHttp(host.url, { method: 'GET', path: '/.well-known/jwks.json', headers: {} })).status).toBe(200);
    }
    expect((await sendHttp(host.url, flowRequest('mixedReality', credentials))).status).toBe(200);
  });
});

describe('per credential: an account or WRAP issuer under attack from many IPs', () => {
  it.each([
    ['mixedReality', (c: TestCredentials) => c.mixedReality.account.accountId],
    ['wrap', () => 'contoso/owner'],
  ] as const)('%s: refused from every IP after the credential limit; other credentials and the Cognitive flows are unaffected', async (flow, idOf) => {
    nowMs += 3_600_000;
    const { services, store } = await countedServices(credentials, clock, {
      STS_FAILED_ATTEMPTS_PER_WINDOW: '1000',
      STS_FAILED_ATTEMPTS_PER_CREDENTIAL: '10',
    });
    for (let i = 0; i < 10; i += 1) {
      const answer = await invokeInProcess(flow, flowRequest(flow, credentials, `guess-${i}`), { services, clientIp: `198.51.100.${i}` });
      expect(answer.status).toBe(401);
    }
    const readsBefore = store.reads;
    const blocked = await invokeInProcess(flow, flowRequest(flow, credentials), { services, clientIp: '192.0.2.200' });
    expectFlowErrorShape(flow as TokenFlow, blocked, 429);
    expect(store.reads).toBe(readsBefore);
    expect(services.failedAttempts.credentialRetryAfter(idOf(credentials))).toBe(60);
    // The limiter has no id for a Cognitive key, so issueToken from the same IPs is untouched.
    expect((await invokeInProcess('issueToken', flowRequest('issueToken', credentials), { services, clientIp: '198.51.100.1' })).status).toBe(200);
  });
});

describe('a flood of unknown credentials cannot exhaust memory or the vault', () => {
  const FLOOD = 50_000;

  it(`${FLOOD.toLocaleString('en')} distinct unknown account ids from one IP: at most the IP limit reaches the vault`, async () => {
    nowMs += 3_600_000;
    const { services, store } = await countedServices(credentials, clock);
    const statuses = new Map<number, number>();
    for (let i = 0; i < FLOOD; i += 1) {
      const accountId = randomUUID();
      const answer = await invokeInProcess(
        'mixedReality',
        { method: 'GET', path: `/accounts/${accountId}/token`, headers: { authorization: `Bearer ${accountId}:k${i}` }, params: { accountId } },
        { services, clientIp: '203.0.113.66' },
      );
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    }
    const limit = services.config.limits.failedAttemptsPerWindow;
    expect(Object.fromEntries(statuses)).toEqual({ 401: limit, 429: FLOOD - limit });
    expect(store.reads).toBe(limit);
    expect(services.failedAttempts.trackedKeys).toBeLessThanOrEqual(limit + 1);
  }, 120_000);

  it(`${FLOOD.toLocaleString('en')} distinct unknown ids from ${FLOOD.toLocaleString('en')} IPs: limiter and secret cache stay within their bounds`, async () => {
    nowMs += 3_600_000;
    const BOUND = 1_000;
    const config = loadConfig({
      STS_ISSUER: 'https://sts.test.example/',
      STS_LEDGER_MODE: 'off',
      STS_LOCAL_STORE_PATH: credentials.storePath,
      STS_FAILED_ATTEMPTS_TRACKED_KEYS: String(BOUND),
      STS_SECRET_CACHE_MAX_ENTRIES: String(BOUND),
    });
    const base = await createServices(config, clock);
    const vault = countingStore(base.secrets);
    // The Key Vault configuration: the cache in front of the store, with its negative cache and LRU bound.
    const cache = new CachedSecretStore(vault, config.secretCache, clock);
    const services = { ...base, secrets: cache, credentials: new CredentialDirectory(cache) };

    const heapBefore = settledHeapUsed();
    let refused = 0;
    for (let i = 0; i < FLOOD; i += 1) {
      // 100 requests per simulated second: within the per-instance vault read budget (STS_VAULT_READS_PER_SECOND).
      if (i % 100 === 99) nowMs += 1_000;
      const accountId = randomUUID();
      const answer = await invokeInProcess(
        'mixedReality',
        { method: 'GET', path: `/accounts/${accountId}/token`, headers: { authorization: `Bearer ${accountId}:k${i}` }, params: { accountId } },
        { services, clientIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
      );
      if (answer.status === 401) refused += 1;
    }
    expect(refused).toBe(FLOOD);
    expect(services.failedAttempts.trackedKeys).toBeLessThanOrEqual(BOUND);
    expect(cache.stats().size).toBeLessThanOrEqual(BOUND);
    expect(cache.stats().evictions).toBeGreaterThanOrEqual(FLOOD - BOUND);
    // Each id is read once (no retry storm), and memory does not grow with the flood: 50,000 unbounded
    // counters and cache entries would hold well over 20 MB.
    expect(vault.reads).toBe(FLOOD);
    expect(settledHeapUsed() - heapBefore).toBeLessThan(16 * 1024 * 1024);
  }, 120_000);
});

function catchError(action: () => void): StsError {
  try {
    action();
  } catch (error) {
    if (error instanceof StsError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

/** Heap in use after full collections (the collector is exposed for this measurement only). */
function settledHeapUsed(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
