import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CognitiveResource, MixedRealityAccount, WrapIssuer } from '../../shared/credentials/records.js';
import { CALLS_PER_CREDENTIAL_PER_MINUTE, CALLS_PER_KEY_PER_MINUTE } from '../../shared/upstream/upstreamTokenCache.js';
import { startStsPair, type ObservedResponse, type StsPair } from './upstreamStsPair.js';

/**
 * Crowds against upstream mode over HTTP (docs/upstream.md#call-budget): our STS in front of the loopback HTTPS
 * stand-in for Azure, clients varying everything a client can vary (LAT targets, lifetimes and flag order, WRAP
 * scopes and their query strings), against a healthy, failing, refusing and hung upstream. Every assertion
 * counts requests that reached the stand-in (or secret reads), never times. One frozen clock, moved by hand.
 */

let pair: StsPair;

beforeAll(async () => {
  pair = await startStsPair();
}, 60_000);
afterAll(async () => {
  await pair?.close();
});
beforeEach(() => {
  pair.ours.upstreamCache.clear();
  pair.azure.setFault(undefined);
  pair.azure.resetCalls();
  vi.restoreAllMocks();
});

const target = (n: number | string) =>
  `/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/crowd/providers/Microsoft.CognitiveServices/accounts/client-${n}`;

const lat = (
  resource: CognitiveResource,
  targetId: string,
  expiredTime = 3_600,
  featureFlags = ['Face.Identification'],
) =>
  pair.send(
    'POST',
    `/sts/v1.0/issueLimitedAccessToken?expiredTime=${expiredTime}`,
    { 'ocp-apim-subscription-key': resource.keys[0], 'content-type': 'application/json' },
    JSON.stringify({ targetAzureResourceId: targetId, featureFlags }),
  );
const issueToken = (resource: CognitiveResource) =>
  pair.send(
    'POST',
    '/sts/v1.0/issueToken',
    { 'ocp-apim-subscription-key': resource.keys[0], 'content-type': 'application/x-www-form-urlencoded' },
    '',
  );
const wrap = (issuer: WrapIssuer, scope: string) =>
  pair.send(
    'POST',
    '/WRAPv0.9/',
    { 'content-type': 'application/x-www-form-urlencoded' },
    new URLSearchParams({ wrap_name: issuer.name, wrap_password: issuer.keys[0], wrap_scope: scope }).toString(),
  );
const mixedReality = (account: MixedRealityAccount) =>
  pair.send('GET', `/accounts/${account.accountId}/token?api-version=2019-02-28-preview`, {
    authorization: `Bearer ${account.accountId}:${account.keys[0]}`,
  });

const statuses = (answers: readonly ObservedResponse[]) => {
  const counts: Record<number, number> = {};
  for (const answer of answers) counts[answer.status] = (counts[answer.status] ?? 0) + 1;
  return counts;
};

describe('a healthy upstream: calls are bounded by the real key, not by what clients vary', () => {
  it(`1,001 LAT requests with distinct targets cost ${CALLS_PER_CREDENTIAL_PER_MINUTE} calls (one credential's share of the key); the rest wait (503), and another credential's cached token is untouched`, async () => {
    const speech = await issueToken(pair.ours.upstream.speech);
    expect(speech.status).toBe(200);
    const answers = await Promise.all(Array.from({ length: 1_001 }, (_, i) => lat(pair.ours.upstream.face, target(i))));
    expect(pair.azure.calls('issueLimitedAccessToken')).toBe(CALLS_PER_CREDENTIAL_PER_MINUTE);
    expect(statuses(answers)).toEqual({
      200: CALLS_PER_CREDENTIAL_PER_MINUTE,
      503: 1_001 - CALLS_PER_CREDENTIAL_PER_MINUTE,
    });
    const refused = answers.find((answer) => answer.status === 503);
    expect(Number(refused?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused?.body ?? '{}')).toEqual({
      error: { code: '503', message: 'The token service is temporarily unavailable. Retry later.' },
    });

    // The Speech token of another credential was neither evicted nor refetched.
    expect(await issueToken(pair.ours.upstream.speech)).toMatchObject({ status: 200, body: speech.body });
    expect(pair.azure.calls('issueToken')).toBe(1);

    // Targets already fetched keep being served; the budget frees up as the minute passes.
    const served = answers.map((answer, i) => ({ answer, i })).filter(({ answer }) => answer.status === 200);
    for (const { answer, i } of served.slice(0, 5))
      expect(await lat(pair.ours.upstream.face, target(i))).toMatchObject({ status: 200, body: answer.body });
    pair.advance(60);
    expect((await lat(pair.ours.upstream.face, target('after-a-minute'))).status).toBe(200);
    expect(pair.azure.calls('issueLimitedAccessToken')).toBe(CALLS_PER_CREDENTIAL_PER_MINUTE + 1);
  }, 120_000);

  it('LAT: one target asked with any lifetime, flag order or letter case costs one call per lifetime step', async () => {
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        lat(pair.ours.upstream.face, i % 2 ? target('same') : target('same').toUpperCase(), 3_600 + (i % 120), [
          'Face.Identification',
          'face.identification',
        ]),
      ),
    );
    expect(statuses(answers)).toEqual({ 200: 300 });
    expect(pair.azure.calls('issueLimitedAccessToken')).toBe(1);
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => lat(pair.ours.upstream.face, target('same'), 60 + i * 288)),
    );
    // 300 lifetimes from 60 to 86,172 s fall on 8 steps, one of them (3,600) already cached.
    expect(pair.azure.calls('issueLimitedAccessToken')).toBe(8);
  }, 60_000);

  it('WRAP: 300 scopes varying the query string or the path below the granted prefix cost one call', async () => {
    const scopes = Array.from({ length: 300 }, (_, i) =>
      i % 3 === 0
        ? `http://contoso.servicebus.windows.net/orders?n=${i}`
        : i % 3 === 1
          ? `http://contoso.servicebus.windows.net/orders/messages/${i}`
          : `https://contoso.servicebus.windows.net/ORDERS/${i}?timeout=60`,
    );
    const answers = await Promise.all(scopes.map((scope) => wrap(pair.ours.upstream.owner, scope)));
    expect(statuses(answers)).toEqual({ 200: 300 });
    expect(pair.azure.calls('wrapToken')).toBe(1);
    expect(new Set(answers.map((answer) => new URLSearchParams(answer.body).get('wrap_access_token'))).size).toBe(1);
  }, 60_000);
});

describe('a failing or refusing upstream: the budget and the cooldown hold for the whole key', () => {
  // Most calls: 500 = 4 fetches already running × 3 attempts, then one probe of 3 attempts after the 10 s cooldown;
  // 403 = the 4 running fetches, then a minute's cooldown; a 1 s Retry-After is honoured, so the budget is the bound.
  it.each([
    ['500', { kind: 'status', status: 500 }, 15],
    ['429 with Retry-After: 1', { kind: 'status', status: 429, retryAfter: '1' }, CALLS_PER_KEY_PER_MINUTE],
    ['503 with Retry-After: 0', { kind: 'status', status: 503, retryAfter: '0' }, CALLS_PER_KEY_PER_MINUTE],
    ['403', { kind: 'status', status: 403 }, 4],
  ] as const)(
    '%s for 20 s while a crowd varies targets: a bounded number of calls, never the crowd',
    async (_label, fault, most) => {
      pair.azure.setFault(fault);
      const rowsBefore = pair.ours.ledgerRows.length;
      let answered = 0;
      for (let second = 0; second < 20; second++) {
        const answers = await Promise.all(
          Array.from({ length: 50 }, (_, i) => lat(pair.ours.upstream.face, target(`${second}-${i}`))),
        );
        answered += answers.filter((answer) => answer.status === 503).length;
        pair.advance(1);
      }
      expect(answered).toBe(1_000);
      // At most one fetch per cooldown (at least 1 s, 10 s without Retry-After), each of at most 3 attempts, and
      // never more than the key's budget.
      const calls = pair.azure.calls('issueLimitedAccessToken');
      expect(calls).toBeGreaterThanOrEqual(1);
      expect(calls).toBeLessThanOrEqual(most);
      const upstreamRows = pair.ours.ledgerRows.slice(rowsBefore).filter((row) => row.outcome === 'upstream');
      expect(upstreamRows.length).toBeLessThanOrEqual(calls);
    },
    120_000,
  );

  it("401 for 20 s: the fetches already running (at most 4) and one fresh read of the key store; other clients' first lookups are unaffected", async () => {
    pair.azure.setFault({ kind: 'status', status: 401 });
    const freshReads = vi.spyOn(pair.ours.cached, 'getFreshSecret');
    for (let second = 0; second < 20; second++) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) => lat(pair.ours.upstream.face, target(`401-${second}-${i}`))),
      );
      expect(answers.every((answer) => answer.status === 503)).toBe(true);
      pair.advance(1);
    }
    expect(pair.azure.calls('issueLimitedAccessToken')).toBeGreaterThanOrEqual(1);
    expect(pair.azure.calls('issueLimitedAccessToken')).toBeLessThanOrEqual(4);
    expect(freshReads.mock.calls.map(([name]) => name)).toEqual(['upstream-cs-face']);

    // Meanwhile another client's first lookups (a local credential, the record read through the same store) all work.
    const others = await Promise.all(Array.from({ length: 60 }, () => issueToken(pair.ours.local.speech)));
    expect(statuses(others)).toEqual({ 200: 60 });
  }, 120_000);

  it(`any mix of faults and crowds, minute after minute: never more than ${CALLS_PER_KEY_PER_MINUTE} calls per real key per minute`, async () => {
    const faults = [
      undefined,
      { kind: 'status', status: 500 },
      { kind: 'status', status: 401 },
      { kind: 'status', status: 429, retryAfter: '1' },
      undefined,
    ] as const;
    for (const [minute, fault] of faults.entries()) {
      pair.azure.setFault(fault);
      const before = pair.azure.calls('issueLimitedAccessToken') + pair.azure.calls('issueToken');
      for (let second = 0; second < 60; second += 5) {
        await Promise.all([
          ...Array.from({ length: 40 }, (_, i) =>
            lat(pair.ours.upstream.face, target(`mix-${minute}-${second}-${i}`), 60 + ((i * 997) % 86_340)),
          ),
          ...Array.from({ length: 10 }, () => lat(pair.ours.upstream.face, target('popular'))),
        ]);
        pair.advance(5);
      }
      // The Speech key is another real key: its budget is its own.
      expect(pair.azure.calls('issueLimitedAccessToken') + pair.azure.calls('issueToken') - before).toBeLessThanOrEqual(
        CALLS_PER_KEY_PER_MINUTE,
      );
    }
  }, 180_000);
});

describe('a hung upstream never delays a client holding a valid cached token', () => {
  it('a Mixed Reality token 2 h from expiry: 1,250 clients are answered from the cache while the one refresh hangs', async () => {
    const account = pair.ours.upstream.mixedReality;
    const warm = await mixedReality(account);
    expect(warm.status).toBe(200);
    const issuedUpstream = () =>
      pair.azure.ledgerRows.filter((row) => row.outcome === 'issued' && row.flow === 'mixedRealityToken').length;
    const issuedBefore = issuedUpstream();
    pair.azure.setFault({ kind: 'slow', ms: 600_000 }); // answers only after the test is over
    pair.advance(86_400 - 7_200);
    const answers = await Promise.all(Array.from({ length: 1_250 }, () => mixedReality(account)));
    expect(statuses(answers)).toEqual({ 200: 1_250 });
    expect(new Set(answers.map((answer) => answer.body))).toEqual(new Set([warm.body]));
    // Exactly one refresh reached the upstream, and it has not answered: every client above was served without it.
    expect(pair.azure.calls('mixedRealityToken')).toBe(2);
    expect(issuedUpstream()).toBe(issuedBefore);
  }, 60_000);
});
