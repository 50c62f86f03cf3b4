import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AuthorityKeys } from '../../shared/entra/authorityKeys.js';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { startOpenIdIssuer, type OpenIdIssuer } from '../support/openIdIssuer.js';

/**
 * The authority key cache against a loopback HTTPS issuer, on a clock the tests move (no sleeps): max age,
 * cooldown, one fetch in flight, refetch on an unknown kid at most once per cooldown, held keys serving
 * through an outage, and 503 only when a key cannot be had.
 */

let issuer: OpenIdIssuer;
let nowMs: number;
const clock = () => new Date(nowMs);
const MAX_AGE_MS = 600_000;
const COOLDOWN_MS = 30_000;

beforeAll(async () => {
  issuer = await startOpenIdIssuer();
});
afterAll(() => issuer.close());
beforeEach(() => {
  nowMs = Date.parse('2026-03-01T09:30:00Z');
  issuer.outage = false;
  issuer.discoveryOverride = {};
  issuer.resetCounters();
});

const newCache = () =>
  new AuthorityKeys({
    authority: issuer.authority,
    clock,
    maxAgeMs: MAX_AGE_MS,
    cooldownMs: COOLDOWN_MS,
    timeoutMs: 5_000,
  });

async function unavailable(work: Promise<unknown>): Promise<DependencyUnavailableError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DependencyUnavailableError);
  return error as DependencyUnavailableError;
}

describe('AuthorityKeys', () => {
  it('100 concurrent cold lookups make one discovery and one JWKS request', async () => {
    const cache = newCache();
    const found = await Promise.all(Array.from({ length: 100 }, () => cache.keyFor(issuer.currentKid)));
    expect(found.every((key) => key?.kid === issuer.currentKid && key.kty === 'RSA')).toBe(true);
    expect(issuer.requests).toEqual({ discovery: 1, jwks: 1 });
  });

  it('serves from the cache within the max age and refetches after it', async () => {
    const cache = newCache();
    await cache.keyFor(issuer.currentKid);
    nowMs += MAX_AGE_MS - 1;
    await cache.keyFor(issuer.currentKid);
    expect(issuer.requests.jwks).toBe(1);
    nowMs += 1;
    await cache.keyFor(issuer.currentKid);
    expect(issuer.requests.jwks).toBe(2);
  });

  it('a new key is picked up on its first token, once the cooldown since the last fetch has passed', async () => {
    const cache = newCache();
    await cache.keyFor(issuer.currentKid);
    const rolled = await issuer.addKey('ES256');
    expect(await cache.keyFor(rolled)).toBeUndefined(); // within the cooldown: not fetched again
    expect(issuer.requests.jwks).toBe(1);
    nowMs += COOLDOWN_MS;
    expect(await cache.keyFor(rolled)).toMatchObject({ kid: rolled, kty: 'EC', crv: 'P-256' });
    expect(issuer.requests.jwks).toBe(2);
  });

  it('a flood of random kids makes at most one fetch per cooldown, and known kids keep working', async () => {
    const cache = newCache();
    await cache.keyFor(issuer.currentKid);
    let unknown = 0;
    // Ten minutes of floods: 1,000 random kids every 3 seconds.
    for (let step = 0; step < 200; step += 1) {
      const answers = await Promise.all(Array.from({ length: 1_000 }, (_, i) => cache.keyFor(`forged-${step}-${i}`)));
      unknown += answers.filter((a) => a === undefined).length;
      expect(await cache.keyFor(issuer.currentKid)).toBeDefined();
      nowMs += 3_000;
    }
    expect(unknown).toBe(200_000);
    // 600 s / 30 s cooldown = 20 refetches at most, plus the first fetch.
    expect(issuer.requests.jwks).toBeLessThanOrEqual(21);
    expect(issuer.requests.discovery).toBe(issuer.requests.jwks);
  });

  it('while the authority is down, held keys keep serving past their max age; unknown kids get 503 + Retry-After', async () => {
    const cache = newCache();
    await cache.keyFor(issuer.currentKid);
    issuer.outage = 503;
    nowMs += MAX_AGE_MS + 1;
    expect(await cache.keyFor(issuer.currentKid)).toBeDefined();
    expect(issuer.requests.discovery).toBe(2);

    nowMs += 10_000;
    const error = await unavailable(cache.keyFor('not-held'));
    expect(error.dependency).toBe('entra-authority');
    expect(error.retryAfterSeconds).toBe(20); // the rest of the cooldown
    expect(issuer.requests.discovery).toBe(2); // the cooldown holds after a failure too

    issuer.outage = false;
    nowMs += 20_000;
    expect(await cache.keyFor('not-held')).toBeUndefined(); // reachable again: a definite "no such key"
    expect(issuer.requests.discovery).toBe(3);
  });

  it('a cold start with the authority unreachable is a 503, retried after the cooldown, not on every request', async () => {
    const cache = newCache();
    issuer.outage = 'reset';
    await unavailable(cache.keyFor(issuer.currentKid));
    await unavailable(cache.keyFor(issuer.currentKid));
    expect(issuer.requests.discovery).toBe(1);
    issuer.outage = false;
    nowMs += COOLDOWN_MS;
    expect(await cache.keyFor(issuer.currentKid)).toBeDefined();
  });

  it('refuses a discovery document naming another issuer, or a JWKS not served over https', async () => {
    issuer.discoveryOverride = { issuer: `${issuer.authority}/` };
    await unavailable(newCache().keyFor(issuer.currentKid));
    expect(issuer.requests.jwks).toBe(0);

    issuer.discoveryOverride = { jwks_uri: issuer.authority.replace('https:', 'http:') };
    await unavailable(newCache().keyFor(issuer.currentKid));
    expect(issuer.requests.jwks).toBe(0);
  });

  it('never fetches an authority that is not https', async () => {
    const cache = new AuthorityKeys({
      authority: issuer.authority.replace('https:', 'http:'),
      clock,
      cooldownMs: COOLDOWN_MS,
    });
    await unavailable(cache.keyFor(issuer.currentKid));
    expect(issuer.requests.discovery).toBe(0);
  });
});
