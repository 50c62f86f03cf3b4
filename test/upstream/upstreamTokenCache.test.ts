import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { UpstreamError } from '../../shared/upstream/upstreamErrors.js';
import type { UpstreamToken } from '../../shared/upstream/upstreamToken.js';
import {
  CALLS_PER_CREDENTIAL_PER_MINUTE,
  CALLS_PER_KEY_PER_MINUTE,
  UpstreamTokenCache,
  type UpstreamCacheSlot,
  type UpstreamCallPermit,
} from '../../shared/upstream/upstreamTokenCache.js';

/** A frozen clock the test moves by hand. */
function frozenClock(start = Date.parse('2025-04-21T12:00:00Z')) {
  let now = start;
  return { now: () => new Date(now), advance: (seconds: number) => void (now += seconds * 1000) };
}

/** A cache slot: entry `entry` of credential `credential`, sent with real key `realKey`. */
const slot = (entry: string, realKey = 'upstream-cs-speech', credential = 'cs/speech'): UpstreamCacheSlot => ({
  realKey,
  credential,
  entry,
});

/**
 * A fake upstream: counts HTTP requests (each takes a permit, as the client does), issues `token-N` living
 * `lifetimeSeconds`, fails as told, or hangs until released.
 */
function fakeUpstream(clock: { now: () => Date }, lifetimeSeconds = 600) {
  let calls = 0;
  let refused = 0;
  let failure: Error | undefined;
  let hang: Promise<void> | undefined;
  let release = (): void => {};
  return {
    get calls() {
      return calls;
    },
    get refused() {
      return refused;
    },
    failWith(error: Error | undefined) {
      failure = error;
    },
    hang() {
      hang = new Promise((resolve) => (release = resolve));
    },
    release() {
      hang = undefined;
      release();
    },
    fetch: async (permit: UpstreamCallPermit): Promise<UpstreamToken> => {
      if (!permit.take()) {
        refused++;
        throw new UpstreamError('budget', 'call budget of this real key is spent');
      }
      calls++;
      const number = calls;
      await new Promise((resolve) => setImmediate(resolve)); // in flight past this turn of the event loop
      if (hang) await hang;
      if (failure !== undefined) throw failure;
      return {
        token: `token-${number}`,
        expiresAt: new Date(clock.now().getTime() + lifetimeSeconds * 1000),
        attempts: 1,
      };
    },
  };
}

const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );

describe('upstream token cache: one fetch per entry', () => {
  it('1,000 concurrent callers for one credential cost one upstream call and get the same token', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    const served = await Promise.all(
      Array.from({ length: 1_000 }, () => cache.get(slot('issueToken'), upstream.fetch)),
    );
    expect(upstream.calls).toBe(1);
    expect(new Set(served.map((s) => s.token))).toEqual(new Set(['token-1']));
    expect(served.every((s) => s.servedFrom === 'fetched')).toBe(true);
    expect((await cache.get(slot('issueToken'), upstream.fetch)).servedFrom).toBe('cached');
    expect(upstream.calls).toBe(1);
  });

  it('different entries are fetched separately', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await Promise.all([
      cache.get(slot('a'), upstream.fetch),
      cache.get(slot('b'), upstream.fetch),
      cache.get(slot('a'), upstream.fetch),
    ]);
    expect(upstream.calls).toBe(2);
  });
});

describe('upstream token cache: refresh ahead in the background', () => {
  it('a 10-minute token is reused for 9 minutes; then served at once while one refresh runs', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock, 600);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await cache.get(slot('t'), upstream.fetch);
    clock.advance(539);
    expect((await cache.get(slot('t'), upstream.fetch)).token).toBe('token-1');
    expect(upstream.calls).toBe(1);
    clock.advance(2); // past the refresh time (60 s before expiry)
    const served = await Promise.all(Array.from({ length: 100 }, () => cache.get(slot('t'), upstream.fetch)));
    expect(served.every((s) => s.token === 'token-1' && s.servedFrom === 'cached')).toBe(true);
    await cache.settled();
    expect(upstream.calls).toBe(2);
    expect((await cache.get(slot('t'), upstream.fetch)).token).toBe('token-2');
    expect(upstream.calls).toBe(2);
  });

  it('a hung upstream never delays a caller holding a valid token; only callers with none left wait', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock, 86_400);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await cache.get(slot('mr'), upstream.fetch);
    upstream.hang();
    clock.advance(86_400 - 7_200); // 2 h from expiry: due for refresh
    let resolved = 0;
    const waiting = Array.from({ length: 1_250 }, () =>
      cache.get(slot('mr'), upstream.fetch).then((s) => (resolved++, s)),
    );
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(resolved).toBe(1_250); // all answered while the one refresh hangs
    expect((await Promise.all(waiting)).every((s) => s.token === 'token-1')).toBe(true);
    expect(upstream.calls).toBe(2);

    clock.advance(7_200 - 29); // less than 30 s left: no longer usable, so callers now wait for the refresh
    let late = 0;
    const blocked = cache.get(slot('mr'), upstream.fetch).then((s) => (late++, s));
    await new Promise((resolve) => setImmediate(resolve));
    expect(late).toBe(0);
    upstream.release();
    expect((await blocked).token).toBe('token-2');
    expect(upstream.calls).toBe(2);
  });

  it('a one-minute token is reused for 30 s, and none is served with less than 30 s left', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock, 60);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await cache.get(slot('lat'), upstream.fetch);
    clock.advance(29);
    await cache.get(slot('lat'), upstream.fetch);
    expect(upstream.calls).toBe(1);
    clock.advance(2); // 29 s left: refetched, and the caller waits for it
    expect((await cache.get(slot('lat'), upstream.fetch)).token).toBe('token-2');
    expect(upstream.calls).toBe(2);
  });

  it('a 24-hour token is refreshed 2.4 hours before it expires', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock, 86_400);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await cache.get(slot('mr'), upstream.fetch);
    clock.advance(86_400 - 8_640 - 1);
    await cache.get(slot('mr'), upstream.fetch);
    await cache.settled();
    expect(upstream.calls).toBe(1);
    clock.advance(2);
    await cache.get(slot('mr'), upstream.fetch);
    await cache.settled();
    expect(upstream.calls).toBe(2);
  });
});

describe('upstream token cache: calls per real key', () => {
  it(`any number of entries cost at most ${CALLS_PER_KEY_PER_MINUTE} calls per key in any minute, ${CALLS_PER_CREDENTIAL_PER_MINUTE} for one credential`, async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock, 3_600);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    const crowd = (credential: string, count: number, prefix = credential) =>
      Promise.allSettled(
        Array.from({ length: count }, (_, i) =>
          cache.get(slot(`${prefix}-${i}`, 'upstream-cs-face', credential), upstream.fetch),
        ),
      );

    // One credential's crowd takes its share and no more.
    const results = await crowd('cs/attacker', 1_000);
    expect(upstream.calls).toBe(CALLS_PER_CREDENTIAL_PER_MINUTE);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(CALLS_PER_CREDENTIAL_PER_MINUTE);
    const refusal = results.find((r) => r.status === 'rejected');
    expect(refusal?.status === 'rejected' && refusal.reason).toMatchObject({
      dependency: 'upstream',
      retryAfterSeconds: 60,
    });

    // Another credential of the same key is still served, up to what the key has left.
    expect((await crowd('cs/honest', 3)).every((r) => r.status === 'fulfilled')).toBe(true);
    await crowd('cs/third', 100);
    expect(upstream.calls).toBe(CALLS_PER_KEY_PER_MINUTE);
    expect(cache.callsInWindow('upstream-cs-face')).toBe(CALLS_PER_KEY_PER_MINUTE);

    // Another real key has its own budget.
    await cache.get(slot('issueToken', 'upstream-cs-other', 'cs/other'), upstream.fetch);
    expect(upstream.calls).toBe(CALLS_PER_KEY_PER_MINUTE + 1);

    // Cached entries keep being served; new ones wait for the window to move.
    expect((await cache.get(slot('cs/attacker-0', 'upstream-cs-face', 'cs/attacker'), upstream.fetch)).servedFrom).toBe(
      'cached',
    );
    clock.advance(30);
    await crowd('cs/attacker', 100, 'later');
    expect(upstream.calls).toBe(CALLS_PER_KEY_PER_MINUTE + 1);
    clock.advance(31);
    await crowd('cs/attacker', 100, 'later');
    expect(upstream.calls).toBe(CALLS_PER_KEY_PER_MINUTE + 1 + CALLS_PER_CREDENTIAL_PER_MINUTE);
  });

  it('a 503 cools down every entry of the key: no call for another entry until it has passed', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    upstream.failWith(new UpstreamError('status', 'upstream answered 503', { status: 503, retryAfterSeconds: 20 }));
    expect(await rejectionOf(cache.get(slot('a'), upstream.fetch))).toMatchObject({ retryAfterSeconds: 20 });
    for (let i = 0; i < 500; i++) {
      expect(
        await rejectionOf(cache.get(slot(`target-${i}`, 'upstream-cs-speech', `cs/client-${i % 7}`), upstream.fetch)),
      ).toMatchObject({
        dependency: 'upstream',
        retryAfterSeconds: 20,
      });
    }
    expect(upstream.calls).toBe(1);
    clock.advance(20);
    upstream.failWith(undefined);
    expect((await cache.get(slot('b'), upstream.fetch)).servedFrom).toBe('fetched');
    expect(upstream.calls).toBe(2);
  });

  it('a 401 cools the key down for a minute, and the key store is read afresh at most once a minute', async () => {
    const clock = frozenClock();
    const cache = new UpstreamTokenCache({ clock: clock.now });
    let freshReads = 0;
    let calls = 0;
    const refused = (permit: UpstreamCallPermit): Promise<UpstreamToken> => {
      if (permit.take()) calls++;
      if (permit.mayReread()) freshReads++;
      return Promise.reject(new UpstreamError('status', 'upstream answered 401', { status: 401 }));
    };
    for (let second = 0; second < 120; second++) {
      for (let i = 0; i < 10; i++) await rejectionOf(cache.get(slot(`t-${second}-${i}`), refused));
      clock.advance(1);
    }
    expect(calls).toBe(2);
    expect(freshReads).toBe(2);
  });

  it("a 400 for one entry cools down that entry only: one client's bad target cannot stop the key serving others", async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    upstream.failWith(new UpstreamError('status', 'upstream answered 400', { status: 400 }));
    await rejectionOf(cache.get(slot('bad'), upstream.fetch));
    await rejectionOf(cache.get(slot('bad'), upstream.fetch));
    expect(upstream.calls).toBe(1);
    upstream.failWith(undefined);
    expect((await cache.get(slot('good'), upstream.fetch)).servedFrom).toBe('fetched');
    expect(upstream.calls).toBe(2);
  });

  it("one credential's entries never evict another credential's", async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock, 3_600);
    const cache = new UpstreamTokenCache({
      clock: clock.now,
      maxEntriesPerCredential: 3,
      callsPerKeyPerMinute: 1_000,
      callsPerCredentialPerMinute: 1_000,
    });
    await cache.get(slot('issueToken', 'upstream-cs-speech', 'cs/speech'), upstream.fetch);
    for (let i = 0; i < 50; i++)
      await cache.get(slot(`target-${i}`, 'upstream-cs-speech', 'cs/face-isv'), upstream.fetch);
    expect(upstream.calls).toBe(51);
    expect((await cache.get(slot('issueToken', 'upstream-cs-speech', 'cs/speech'), upstream.fetch)).token).toBe(
      'token-1',
    );
    expect(upstream.calls).toBe(51);
    expect(cache.size).toBe(4);
    // Within one credential: least recently used first.
    await cache.get(slot('target-49', 'upstream-cs-speech', 'cs/face-isv'), upstream.fetch);
    expect(upstream.calls).toBe(51);
    await cache.get(slot('target-46', 'upstream-cs-speech', 'cs/face-isv'), upstream.fetch);
    expect(upstream.calls).toBe(52);
  });
});

describe('upstream token cache: failures', () => {
  it('an outage with a warm token: 0 errors, and no upstream call during the cooldown', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock, 600);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await cache.get(slot('speech'), upstream.fetch);
    clock.advance(560); // in the refresh window, 40 s left
    upstream.failWith(new UpstreamError('status', 'upstream answered 503', { status: 503, attempts: 3 }));
    const served = await Promise.all(Array.from({ length: 500 }, () => cache.get(slot('speech'), upstream.fetch)));
    expect(served.every((s) => s.token === 'token-1')).toBe(true);
    await cache.settled();
    expect(upstream.calls).toBe(2);
    clock.advance(5); // still cooling down (default 10 s)
    expect((await cache.get(slot('speech'), upstream.fetch)).servedFrom).toBe('fallback');
    expect(upstream.calls).toBe(2);
    clock.advance(5); // cooldown over, 30 s left: one more try in the background, the token still served
    expect((await cache.get(slot('speech'), upstream.fetch)).token).toBe('token-1');
    await cache.settled();
    expect(upstream.calls).toBe(3);
  });

  it('a cold outage rejects with DependencyUnavailableError carrying the upstream Retry-After', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock);
    upstream.failWith(
      new UpstreamError('status', 'upstream answered 429', { status: 429, retryAfterSeconds: 17, attempts: 1 }),
    );
    const cache = new UpstreamTokenCache({ clock: clock.now });
    const errors = await Promise.all(
      Array.from({ length: 50 }, () => rejectionOf(cache.get(slot('speech'), upstream.fetch))),
    );
    expect(upstream.calls).toBe(1);
    for (const error of errors) {
      expect(error).toBeInstanceOf(DependencyUnavailableError);
      expect(error).toMatchObject({ dependency: 'upstream', retryAfterSeconds: 17 });
      expect((error as Error).cause).toBeInstanceOf(UpstreamError);
    }
    clock.advance(10); // during the cooldown the remaining time is passed on, without an upstream call
    expect(await rejectionOf(cache.get(slot('speech'), upstream.fetch))).toMatchObject({ retryAfterSeconds: 7 });
    expect(upstream.calls).toBe(1);
    clock.advance(7);
    upstream.failWith(undefined);
    expect((await cache.get(slot('speech'), upstream.fetch)).servedFrom).toBe('fetched');
    expect(upstream.calls).toBe(2);
  });

  it('without a Retry-After the default is used; huge ones are capped', async () => {
    const clock = frozenClock();
    const cache = new UpstreamTokenCache({ clock: clock.now, defaultRetryAfterSeconds: 4, maxRetryAfterSeconds: 60 });
    const down = fakeUpstream(clock);
    down.failWith(new UpstreamError('connection', 'upstream connection error (econnreset)', { attempts: 3 }));
    expect(await rejectionOf(cache.get(slot('a', 'k1'), down.fetch))).toMatchObject({ retryAfterSeconds: 4 });
    down.failWith(new UpstreamError('status', 'upstream answered 503', { status: 503, retryAfterSeconds: 86_400 }));
    expect(await rejectionOf(cache.get(slot('b', 'k2'), down.fetch))).toMatchObject({ retryAfterSeconds: 60 });
  });

  it('a secret-store outage keeps its own DependencyUnavailableError', async () => {
    const clock = frozenClock();
    const cache = new UpstreamTokenCache({ clock: clock.now });
    const vaultDown = new DependencyUnavailableError('secret-store', 3, 'vault timed out');
    const error = await rejectionOf(cache.get(slot('a'), () => Promise.reject(vaultDown)));
    expect(error).toBe(vaultDown);
  });

  it('an unexpected error (a bug) is rethrown unchanged and leaves no cooldown', async () => {
    const clock = frozenClock();
    const cache = new UpstreamTokenCache({ clock: clock.now });
    const bug = new TypeError('boom');
    expect(await rejectionOf(cache.get(slot('a'), () => Promise.reject(bug)))).toBe(bug);
    const upstream = fakeUpstream(clock);
    expect((await cache.get(slot('a'), upstream.fetch)).token).toBe('token-1');
  });

  it('a token with less than 30 s left is not served as a fallback', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock, 600);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await cache.get(slot('a'), upstream.fetch);
    clock.advance(571);
    upstream.failWith(new UpstreamError('status', 'upstream answered 500', { status: 500 }));
    expect(await rejectionOf(cache.get(slot('a'), upstream.fetch))).toBeInstanceOf(DependencyUnavailableError);
  });
});
