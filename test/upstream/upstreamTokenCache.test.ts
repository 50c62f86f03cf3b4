import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { UpstreamError } from '../../shared/upstream/upstreamErrors.js';
import type { UpstreamToken } from '../../shared/upstream/upstreamToken.js';
import { UpstreamTokenCache } from '../../shared/upstream/upstreamTokenCache.js';

/** A frozen clock the test moves by hand. */
function frozenClock(start = Date.parse('2025-04-21T12:00:00Z')) {
  let now = start;
  return { now: () => new Date(now), advance: (seconds: number) => void (now += seconds * 1000) };
}

/** A fake upstream: counts calls, issues `token-N` living `lifetimeSeconds`, or fails as told. */
function fakeUpstream(clock: { now: () => Date }, lifetimeSeconds = 600) {
  let calls = 0;
  let failure: Error | undefined;
  return {
    get calls() {
      return calls;
    },
    failWith(error: Error | undefined) {
      failure = error;
    },
    fetch: async (): Promise<UpstreamToken> => {
      calls++;
      await new Promise((resolve) => setImmediate(resolve)); // in flight past this turn of the event loop
      if (failure !== undefined) throw failure;
      return { token: `token-${calls}`, expiresAt: new Date(clock.now().getTime() + lifetimeSeconds * 1000), attempts: 1 };
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

describe('upstream token cache: one fetch per key', () => {
  it('1,000 concurrent callers for one credential cost one upstream call and get the same token', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    const served = await Promise.all(Array.from({ length: 1_000 }, () => cache.get('speech', upstream.fetch)));
    expect(upstream.calls).toBe(1);
    expect(new Set(served.map((s) => s.token))).toEqual(new Set(['token-1']));
    expect(served.every((s) => s.servedFrom === 'fetched')).toBe(true);
    expect((await cache.get('speech', upstream.fetch)).servedFrom).toBe('cached');
    expect(upstream.calls).toBe(1);
  });

  it('different keys are fetched separately', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await Promise.all([cache.get('a', upstream.fetch), cache.get('b', upstream.fetch), cache.get('a', upstream.fetch)]);
    expect(upstream.calls).toBe(2);
  });
});

describe('upstream token cache: expiry-driven refresh', () => {
  it('reuses a 10-minute token for 9 minutes (margin max(10%, 30 s)), then makes exactly one more call', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock, 600);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await cache.get('speech', upstream.fetch);
    clock.advance(539);
    expect((await cache.get('speech', upstream.fetch)).token).toBe('token-1');
    expect(upstream.calls).toBe(1);
    clock.advance(2); // 541 s: inside the last 60 s
    const refreshed = await Promise.all(Array.from({ length: 100 }, () => cache.get('speech', upstream.fetch)));
    expect(upstream.calls).toBe(2);
    expect(new Set(refreshed.map((s) => s.token))).toEqual(new Set(['token-2']));
  });

  it('uses the 30 s floor for short tokens and never reuses a token shorter than that', async () => {
    const clock = frozenClock();
    const shortLived = fakeUpstream(clock, 100);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await cache.get('short', shortLived.fetch);
    clock.advance(69);
    await cache.get('short', shortLived.fetch);
    expect(shortLived.calls).toBe(1);
    clock.advance(2); // 71 s: less than 30 s left
    await cache.get('short', shortLived.fetch);
    expect(shortLived.calls).toBe(2);

    const tiny = fakeUpstream(clock, 20);
    await cache.get('tiny', tiny.fetch);
    await cache.get('tiny', tiny.fetch);
    expect(tiny.calls).toBe(2);
  });

  it('a 24-hour token is refreshed 2.4 hours before it expires', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock, 86_400);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await cache.get('mr', upstream.fetch);
    clock.advance(86_400 - 8_640 - 1);
    await cache.get('mr', upstream.fetch);
    expect(upstream.calls).toBe(1);
    clock.advance(2);
    await cache.get('mr', upstream.fetch);
    expect(upstream.calls).toBe(2);
  });
});

describe('upstream token cache: failures', () => {
  it('an outage with a warm token: 0 errors, and no upstream call during the cooldown', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock, 600);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await cache.get('speech', upstream.fetch);
    clock.advance(560); // in the refresh window, 40 s left
    upstream.failWith(new UpstreamError('status', 'upstream answered 503', { status: 503, attempts: 3 }));
    const served = await Promise.all(Array.from({ length: 500 }, () => cache.get('speech', upstream.fetch)));
    expect(served.every((s) => s.token === 'token-1' && s.servedFrom === 'fallback')).toBe(true);
    expect(upstream.calls).toBe(2);
    clock.advance(5); // still cooling down (default 10 s)
    expect((await cache.get('speech', upstream.fetch)).servedFrom).toBe('fallback');
    expect(upstream.calls).toBe(2);
    clock.advance(6); // cooldown over: one more try, still failing, still served
    expect((await cache.get('speech', upstream.fetch)).token).toBe('token-1');
    expect(upstream.calls).toBe(3);
  });

  it('a cold outage rejects with DependencyUnavailableError carrying the upstream Retry-After', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock);
    upstream.failWith(new UpstreamError('status', 'upstream answered 429', { status: 429, retryAfterSeconds: 17, attempts: 1 }));
    const cache = new UpstreamTokenCache({ clock: clock.now });
    const errors = await Promise.all(Array.from({ length: 50 }, () => rejectionOf(cache.get('speech', upstream.fetch))));
    expect(upstream.calls).toBe(1);
    for (const error of errors) {
      expect(error).toBeInstanceOf(DependencyUnavailableError);
      expect(error).toMatchObject({ dependency: 'upstream', retryAfterSeconds: 17 });
      expect((error as Error).cause).toBeInstanceOf(UpstreamError);
    }
    clock.advance(10); // during the cooldown the remaining time is passed on, without an upstream call
    expect(await rejectionOf(cache.get('speech', upstream.fetch))).toMatchObject({ retryAfterSeconds: 7 });
    expect(upstream.calls).toBe(1);
    clock.advance(7);
    upstream.failWith(undefined);
    expect((await cache.get('speech', upstream.fetch)).servedFrom).toBe('fetched');
    expect(upstream.calls).toBe(2);
  });

  it('without a Retry-After the default is used; huge ones are capped', async () => {
    const clock = frozenClock();
    const cache = new UpstreamTokenCache({ clock: clock.now, defaultRetryAfterSeconds: 4, maxRetryAfterSeconds: 60 });
    const down = fakeUpstream(clock);
    down.failWith(new UpstreamError('connection', 'upstream connection error (econnreset)', { attempts: 3 }));
    expect(await rejectionOf(cache.get('a', down.fetch))).toMatchObject({ retryAfterSeconds: 4 });
    down.failWith(new UpstreamError('status', 'upstream answered 503', { status: 503, retryAfterSeconds: 86_400 }));
    expect(await rejectionOf(cache.get('b', down.fetch))).toMatchObject({ retryAfterSeconds: 60 });
  });

  it('a secret-store outage keeps its own DependencyUnavailableError', async () => {
    const clock = frozenClock();
    const cache = new UpstreamTokenCache({ clock: clock.now });
    const vaultDown = new DependencyUnavailableError('secret-store', 3, 'vault timed out');
    const error = await rejectionOf(cache.get('a', () => Promise.reject(vaultDown)));
    expect(error).toBe(vaultDown);
  });

  it('an unexpected error (a bug) is rethrown unchanged and leaves no cooldown', async () => {
    const clock = frozenClock();
    const cache = new UpstreamTokenCache({ clock: clock.now });
    const bug = new TypeError('boom');
    expect(await rejectionOf(cache.get('a', () => Promise.reject(bug)))).toBe(bug);
    const upstream = fakeUpstream(clock);
    expect((await cache.get('a', upstream.fetch)).token).toBe('token-1');
  });

  it('a token with less than 5 s left is not served as a fallback', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock, 600);
    const cache = new UpstreamTokenCache({ clock: clock.now });
    await cache.get('a', upstream.fetch);
    clock.advance(597);
    upstream.failWith(new UpstreamError('status', 'upstream answered 500', { status: 500 }));
    expect(await rejectionOf(cache.get('a', upstream.fetch))).toBeInstanceOf(DependencyUnavailableError);
  });
});

describe('upstream token cache: bounded size', () => {
  it('evicts the least recently used key beyond maxEntries', async () => {
    const clock = frozenClock();
    const upstream = fakeUpstream(clock);
    const cache = new UpstreamTokenCache({ clock: clock.now, maxEntries: 3 });
    for (const key of ['a', 'b', 'c']) await cache.get(key, upstream.fetch);
    await cache.get('a', upstream.fetch); // a is now the most recent
    await cache.get('d', upstream.fetch); // evicts b
    expect(cache.size).toBe(3);
    expect(upstream.calls).toBe(4);
    await cache.get('a', upstream.fetch);
    await cache.get('c', upstream.fetch);
    expect(upstream.calls).toBe(4);
    await cache.get('b', upstream.fetch);
    expect(upstream.calls).toBe(5);
  });
});
