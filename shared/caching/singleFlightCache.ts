/**
 * The one cache every cache of the STS is built on: a bounded map of values with two deadlines each, and at
 * most one load per key in flight.
 *
 * - **Single flight**: callers that ask for a key while its load runs share that load (one request to the
 *   vault, the identity endpoint or the authority, however many requests arrive at once).
 * - **Bounded**: at most `maxEntries` values; the least recently used goes first, so nothing a client sends
 *   (random names, random `kid`s) can grow it without bound.
 * - **Stale on error**: a value is fresh until `freshUntilMs` (served without a load), then usable until
 *   `staleUntilMs`: a failed load serves it instead of failing, and the next call tries again.
 *
 * The loader decides both deadlines (a token knows its expiry, a key set its max age); a loaded value already
 * past `staleUntilMs` is handed to the callers that shared the load but not held (a read shared, never kept).
 * The clock is injected, so tests drive it by hand. Policy on top (read budgets, cooldowns, backoff, negative
 * answers, refresh-ahead in the background, counters) stays with the caller: {@link SingleFlightCache.peek},
 * {@link SingleFlightCache.loading}, {@link SingleFlightCache.refresh} and the `onEvict` hook give it what it
 * needs. Every cache of loaded values in `shared/` is one of these (docs/layout.md).
 *
 * Why our own and not `lru-cache` (whose `fetchMethod` does much the same): ~100 lines with no dependency
 * on the cold path, a clock we inject rather than `performance.now`, deadlines set per value by the loader
 * instead of one TTL, and a failed load's own error thrown to the caller (never swallowed into `undefined`).
 *
 * @example
 * const tokens = new SingleFlightCache<string, string>({ maxEntries: 16 });
 * const token = await tokens.get(resource, async () => {
 *   const t = await fetchToken(resource);
 *   return { value: t.token, freshUntilMs: t.expiresAt - 300_000, staleUntilMs: t.expiresAt };
 * });
 */

/** A value and how long it may be served: without a load until `freshUntilMs`, after a failed load until `staleUntilMs`. */
export interface Cached<V> {
  readonly value: V;
  /** Milliseconds since the epoch. */
  readonly freshUntilMs: number;
  /** Milliseconds since the epoch; at least `freshUntilMs`. */
  readonly staleUntilMs: number;
}

export interface SingleFlightCacheOptions<K = unknown, V = unknown> {
  /** Most values held at once; the least recently used is dropped to make room. */
  readonly maxEntries: number;
  /** Milliseconds since the epoch (tests inject a clock). */
  readonly now?: () => number;
  /** Called for each value the bound drops to make room (not for expiry or `delete`): a caller's counter. */
  readonly onEvict?: (key: K, dropped: Cached<V>) => void;
}

export type Loader<V> = () => Promise<Cached<V>>;

export class SingleFlightCache<K, V> {
  private readonly entries = new Map<K, Cached<V>>();
  private readonly inFlight = new Map<K, Promise<V>>();
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly onEvict: ((key: K, dropped: Cached<V>) => void) | undefined;

  constructor(options: SingleFlightCacheOptions<K, V>) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, not ${options.maxEntries}`);
    }
    this.maxEntries = options.maxEntries;
    this.now = options.now ?? Date.now;
    this.onEvict = options.onEvict;
  }

  /** How many values are held. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The value for `key`: the held one while fresh; otherwise a load (shared with concurrent callers), and if
   * that load fails, the held one while still usable, else the load's error.
   */
  async get(key: K, load: Loader<V>): Promise<V> {
    const held = this.peek(key);
    if (held && this.now() < held.freshUntilMs) return held.value;
    try {
      return await this.refresh(key, load);
    } catch (error) {
      const still = this.entries.get(key);
      if (still && this.now() < still.staleUntilMs) return still.value;
      throw error;
    }
  }

  /**
   * Loads `key` now, or joins the load already running; the value is held once it succeeds (unless already
   * past its `staleUntilMs`).
   */
  refresh(key: K, load: Loader<V>): Promise<V> {
    const running = this.inFlight.get(key);
    if (running) return running;
    const started = Promise.resolve()
      .then(load)
      .then((loaded) => {
        this.store(key, loaded);
        return loaded.value;
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, started);
    return started;
  }

  /** What is held for `key`, fresh or not (marks it recently used); undefined once past `staleUntilMs`. */
  peek(key: K): Cached<V> | undefined {
    const held = this.entries.get(key);
    if (!held) return undefined;
    if (this.now() >= held.staleUntilMs) {
      this.entries.delete(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, held);
    return held;
  }

  /** Whether a load of `key` is running. */
  loading(key: K): boolean {
    return this.inFlight.has(key);
  }

  /** Holds `value` for `key` as if a load had returned it. */
  set(key: K, value: Cached<V>): void {
    this.store(key, value);
  }

  /** Forgets `key` (a load in flight still completes and stores its value). */
  delete(key: K): void {
    this.entries.delete(key);
  }

  /** Resolves once no load is running (a background refresh has been stored or has failed). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
  }

  private store(key: K, value: Cached<V>): void {
    this.entries.delete(key);
    if (this.now() >= value.staleUntilMs) return;
    this.entries.set(key, value);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.entries().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value[0]);
      this.onEvict?.(oldest.value[0], oldest.value[1]);
    }
  }
}
