import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { CachedSecretStore, type SecretCacheSettings } from '../../shared/secrets/cachedSecretStore.js';
import type { SecretStore, SecretVersion } from '../../shared/secrets/secretStore.js';

/**
 * The cache's bounds and failure rules, over an in-memory store whose answers the test controls (no
 * network; the same cache over the real SDK and the Key Vault test server is in secretCacheEndToEnd.test.ts).
 */

const SETTINGS: SecretCacheSettings = {
  maxAgeSeconds: 300,
  negativeMaxAgeSeconds: 30,
  maxEntries: 100,
  maxStaleSeconds: 600,
  vaultTimeoutMs: 200,
};

function version(name: string, value: string): SecretVersion {
  return { name, version: 'v1', value, enabled: true, createdOn: new Date(0) };
}

/** A store that answers from `values`, or waits for `release()` when `gate` is closed, or throws `failWith`. */
class ControlledStore implements SecretStore {
  readonly values = new Map<string, string>();
  reads = 0;
  active = 0;
  maxActive = 0;
  failWith: Error | undefined;
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;

  close(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open?.();
    this.gate = undefined;
  }

  async getSecret(name: string): Promise<SecretVersion | undefined> {
    this.reads += 1;
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.gate) await this.gate;
      if (this.failWith !== undefined) throw this.failWith;
      const value = this.values.get(name);
      return value === undefined ? undefined : version(name, value);
    } finally {
      this.active -= 1;
    }
  }

  getFreshSecret(name: string): Promise<SecretVersion | undefined> {
    return this.getSecret(name);
  }

  async getSecretVersions(name: string): Promise<readonly SecretVersion[]> {
    const current = await this.getSecret(name);
    return current ? [current] : [];
  }
}

function setup(settings: Partial<SecretCacheSettings> = {}) {
  let nowMs = 1_000_000;
  const inner = new ControlledStore();
  /** What the operator is told (the cache's `warn`). */
  const warnings: string[] = [];
  const cache = new CachedSecretStore(
    inner,
    { ...SETTINGS, ...settings },
    () => new Date(nowMs),
    (line) => warnings.push(line),
  );
  return { inner, cache, warnings, advance: (seconds: number) => (nowMs += seconds * 1000) };
}

/** Runs every promise callback already queued (the store reads are in-memory: no I/O, no timer in between). */
function drainPromiseCallbacks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// The slot wait is a timer: it runs on the fake clock, so no test waits for (or races) real time.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('CachedSecretStore', () => {
  it('keeps the recently used entry when the size bound evicts', async () => {
    const { inner, cache } = setup({ maxEntries: 3 });
    for (const name of ['a', 'b', 'c']) inner.values.set(name, name);
    await cache.getSecret('a');
    await cache.getSecret('b');
    await cache.getSecret('c');
    await cache.getSecret('a'); // a is now the most recently used
    await cache.getSecret('d'); // evicts b, the least recently used
    expect(inner.reads).toBe(4);

    await cache.getSecret('a');
    await cache.getSecret('c');
    expect(inner.reads).toBe(4);
    await cache.getSecret('b');
    expect(inner.reads).toBe(5);
    expect(cache.stats()).toMatchObject({ size: 3, evictions: 2 });
  });

  it('runs at most 32 store reads at once; more cold names queue, then beyond 1,024 queued it sheds with a 503', async () => {
    const { inner, cache } = setup({ maxEntries: 2_000, vaultTimeoutMs: 5_000 });
    inner.close();
    const lookups = Array.from({ length: 1_100 }, (_, i) =>
      cache.getSecret(`name-${i}`).then(
        () => 'ok',
        (e: unknown) => (e instanceof DependencyUnavailableError ? 'unavailable' : 'other'),
      ),
    );
    await drainPromiseCallbacks();
    expect(inner.active).toBe(32);
    inner.release();
    const outcomes = await Promise.all(lookups);
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(32 + 1_024);
    expect(outcomes.filter((o) => o === 'unavailable')).toHaveLength(1_100 - 32 - 1_024);
    expect(inner.maxActive).toBe(32);
  });

  it('does not let a lookup wait for a store slot longer than the vault timeout', async () => {
    const { inner, cache } = setup({ vaultTimeoutMs: 100 });
    inner.close();
    const busy = Array.from({ length: 32 }, (_, i) => cache.getSecret(`busy-${i}`));
    let outcome: unknown = 'pending';
    void cache.getSecret('queued').then(
      () => (outcome = 'served'),
      (e: unknown) => (outcome = e),
    );
    await vi.advanceTimersByTimeAsync(99);
    expect(outcome).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome).toBeInstanceOf(DependencyUnavailableError);
    expect(outcome).toMatchObject({ dependency: 'secret-store', retryAfterSeconds: 1 });
    expect(inner.reads).toBe(32); // the queued lookup never reached the store
    inner.release();
    await Promise.all(busy);
  });

  it('serves the last good value on any store error within the stale window, else rethrows the error', async () => {
    const { inner, cache, warnings, advance } = setup();
    inner.values.set('a', 'one');
    await cache.getSecret('a');
    const bug = new TypeError('store bug');
    inner.failWith = bug;
    advance(301);
    expect((await cache.getSecret('a'))?.value).toBe('one');
    expect(cache.stats().staleServes).toBe(1);
    await expect(cache.getSecret('b')).rejects.toBe(bug);
    // One line for the outage, however many lookups fail in it, and never the value it keeps serving.
    expect(warnings).toEqual([
      'secret store: TypeError: store bug; serving cached answers up to 600 s past their max age until it answers',
    ]);
  });

  it('backs off for the Retry-After of a DependencyUnavailableError: cold lookups get 503 without a store call', async () => {
    const { inner, cache, warnings, advance } = setup();
    inner.failWith = new DependencyUnavailableError('secret-store', 4, 'throttled');
    await expect(cache.getSecret('a')).rejects.toMatchObject({ retryAfterSeconds: 4 });
    advance(1);
    await expect(cache.getSecret('b')).rejects.toMatchObject({ retryAfterSeconds: 3 });
    expect(inner.reads).toBe(1);
    expect(warnings).toEqual([
      'secret store: DependencyUnavailableError ERR_STS_DEPENDENCY_UNAVAILABLE: throttled; serving cached answers up to 600 s past their max age until it answers',
    ]);

    inner.failWith = undefined;
    inner.values.set('b', 'two');
    advance(3);
    expect((await cache.getSecret('b'))?.value).toBe('two');
    // The outage's end is told once, and only once the store has answered.
    expect(warnings.slice(1)).toEqual(['secret store: answering again']);
  });

  it('does not retain version lists (the key ring caches them) but shares a concurrent fetch', async () => {
    const { inner, cache } = setup();
    inner.values.set('ring', 'k');
    await Promise.all([
      cache.getSecretVersions('ring'),
      cache.getSecretVersions('ring'),
      cache.getSecretVersions('ring'),
    ]);
    expect(inner.reads).toBe(1);
    await cache.getSecretVersions('ring');
    expect(inner.reads).toBe(2);
  });
});
