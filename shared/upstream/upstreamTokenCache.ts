import { SingleFlightCache, type Cached } from '../caching/singleFlightCache.js';
import { DependencyUnavailableError } from '../errors.js';
import { isKeyWideFailure, UpstreamError } from './upstreamErrors.js';
import { MIN_TOKEN_LEFT_SECONDS } from './upstreamLifetimes.js';
import type { UpstreamToken } from './upstreamToken.js';

/** Upstream HTTP requests one instance may send with one real key in any 60 s (docs/upstream.md#call-budget). */
export const CALLS_PER_KEY_PER_MINUTE = 20;

/**
 * Of those, what one credential of ours may take (15): the other 5 are left for the key's other credentials, so a
 * client spending its own credential's share cannot stop the key serving anyone else.
 */
export const CALLS_PER_CREDENTIAL_PER_MINUTE = 15;

/**
 * Fetches with one real key running at once: 4 while the key is healthy, 1 (a probe) after a key-wide failure,
 * so that a crowd asking for many different entries at once learns of an outage from one call, not twenty.
 */
const CONCURRENT_FETCHES_PER_KEY = { healthy: 4, failing: 1 } as const;

export interface UpstreamTokenCacheOptions {
  /** The clock every expiry decision uses (frozen in tests). */
  readonly clock: () => Date;
  /** Entries kept per credential and real key, least recently used evicted first. Default 256. */
  readonly maxEntriesPerCredential?: number;
  /** A token is refreshed when less than this share of its lifetime is left. Default 0.1. */
  readonly refreshMarginRatio?: number;
  /** ... or less than this many seconds, whichever is larger. Default 60. */
  readonly minRefreshMarginSeconds?: number;
  /** No token with less than this left is served. Default {@link MIN_TOKEN_LEFT_SECONDS} (30 s). */
  readonly minServeSeconds?: number;
  /** Cooldown after a failure when the upstream gave no `Retry-After`. Default 10 s. */
  readonly defaultRetryAfterSeconds?: number;
  /** Upper bound of the `Retry-After` passed on and of every cooldown. Default 60 s. */
  readonly maxRetryAfterSeconds?: number;
  /** Cooldown after the upstream refused the key itself (401, 403). Default 60 s. */
  readonly keyRefusedCooldownSeconds?: number;
  /** Upstream requests per real key in any 60 s window. Default {@link CALLS_PER_KEY_PER_MINUTE}. */
  readonly callsPerKeyPerMinute?: number;
  /** Of those, the most one credential may take. Default {@link CALLS_PER_CREDENTIAL_PER_MINUTE}. */
  readonly callsPerCredentialPerMinute?: number;
  /** At most one fresh (cache-bypassing) read of a real key's secret per this many seconds. Default 60. */
  readonly freshReadIntervalSeconds?: number;
}

/** A token as served to one caller. */
export interface ServedUpstreamToken {
  readonly token: string;
  readonly expiresAt: Date;
  /** `fetched`: this call (or one it joined) got it from the upstream; `cached`: reused; `fallback`: the last refresh failed and a still-valid token was served. */
  readonly servedFrom: 'fetched' | 'cached' | 'fallback';
}

/** Where a token lives in the cache. */
export interface UpstreamCacheSlot {
  /** The real key (the secret's name, lower case): its budget and cooldown are shared by all its entries. */
  readonly realKey: string;
  /** Our credential the entry serves: its entries are bounded and evicted apart from every other credential's. */
  readonly credential: string;
  /** Flow, endpoint and the normalised request fields the token depends on. */
  readonly entry: string;
}

/** What a fetch may spend: handed to it by the cache, checked before every HTTP request and fresh secret read. */
export interface UpstreamCallPermit {
  /** Takes one upstream request from the real key's budget; false when it is spent. */
  take(): boolean;
  /** True (and counted) when the secret may be read past its cache now, after an upstream 401. */
  mayReread(): boolean;
}

interface StoredToken {
  readonly token: string;
  readonly expiresAtMs: number;
  readonly refreshAtMs: number;
}

interface Entry {
  readonly token?: StoredToken | undefined;
  /** No upstream call for this entry before this time (a failure that concerned this request only). */
  readonly coolDownUntilMs?: number | undefined;
  /** The last refresh failed: a cached token served now is a fallback. */
  readonly failed?: boolean | undefined;
}

type Fetch = (permit: UpstreamCallPermit) => Promise<UpstreamToken>;

/** What one real key shares across all its entries, whichever credential or flow they serve. */
interface KeyState {
  /** The upstream requests of the last 60 s, oldest first: when, and for which of our credentials. */
  readonly calls: Array<{ readonly atMs: number; readonly credential: string }>;
  /** No upstream call with this key before this time (401/403/429/5xx, transport or configuration failure). */
  coolDownUntilMs?: number | undefined;
  lastFreshReadMs?: number | undefined;
  /** The last fetch failed key-wide: one fetch at a time until one succeeds. */
  failing: boolean;
  /** Fetches running now, and the ones waiting for a turn (FIFO). */
  running: number;
  readonly waiting: Array<() => void>;
}

const WINDOW_MS = 60_000;

/**
 * Caches tokens fetched from upstream STSs (docs/upstream.md#caching):
 *
 * - **Per real key**, one call budget (`callsPerKeyPerMinute` upstream requests in any 60 s, retries and the
 *   post-rotation retry included; one credential of ours at most `callsPerCredentialPerMinute` of them) and one
 *   cooldown, shared by every entry of the key: no set of clients can make this instance send more, whatever
 *   they vary. At most 4 fetches with a key run at once, 1 after a key-wide failure, and a fetch that waited
 *   for its turn checks the cooldown again before it calls. A fresh secret read after a 401 is allowed once per
 *   `freshReadIntervalSeconds` per key.
 * - **Per credential and real key**, a bounded LRU of entries: one credential's entries never evict another's.
 * - **Per entry**, one fetch at a time. A token is reused until its refresh time (10% of its lifetime, at least
 *   60 s and at most half of it, before expiry); after that it is still served at once while one refresh runs in the background,
 *   and only a caller with no usable token (less than `minServeSeconds` left) waits.
 *
 * Failures: a still-valid token keeps being served; otherwise the call rejects with
 * `DependencyUnavailableError('upstream', retryAfter)` (503 + `Retry-After` in the flow's shape). A
 * secret-store outage keeps its own `DependencyUnavailableError`. Errors that are neither (bugs) are rethrown
 * unchanged and leave no cooldown.
 *
 * Each credential's entries are one shared {@link SingleFlightCache} (the LRU bound, one fetch per entry, an
 * entry held while its token or its cooldown lasts); budgets, cooldowns, the per-key turns and refresh-ahead are
 * the policy here. The per-key states and the partitions are keyed by provisioned real keys and credentials only
 * (a request reaches them once its credential has been checked), so those two maps need no bound of their own.
 */
export class UpstreamTokenCache {
  private readonly partitions = new Map<string, SingleFlightCache<string, Entry>>();
  private readonly keys = new Map<string, KeyState>();
  private readonly clock: () => Date;
  private readonly maxEntriesPerCredential: number;
  private readonly refreshMarginRatio: number;
  private readonly minRefreshMarginMs: number;
  private readonly minServeMs: number;
  private readonly defaultRetryAfterSeconds: number;
  private readonly maxRetryAfterSeconds: number;
  private readonly keyRefusedCooldownSeconds: number;
  private readonly callsPerKeyPerMinute: number;
  private readonly callsPerCredentialPerMinute: number;
  private readonly freshReadIntervalMs: number;

  constructor(options: UpstreamTokenCacheOptions) {
    this.clock = options.clock;
    this.maxEntriesPerCredential = Math.max(1, options.maxEntriesPerCredential ?? 256);
    this.refreshMarginRatio = options.refreshMarginRatio ?? 0.1;
    this.minRefreshMarginMs = (options.minRefreshMarginSeconds ?? 60) * 1000;
    this.minServeMs = (options.minServeSeconds ?? MIN_TOKEN_LEFT_SECONDS) * 1000;
    this.defaultRetryAfterSeconds = options.defaultRetryAfterSeconds ?? 10;
    this.maxRetryAfterSeconds = Math.max(1, options.maxRetryAfterSeconds ?? 60);
    this.keyRefusedCooldownSeconds = options.keyRefusedCooldownSeconds ?? 60;
    this.callsPerKeyPerMinute = Math.max(1, options.callsPerKeyPerMinute ?? CALLS_PER_KEY_PER_MINUTE);
    this.callsPerCredentialPerMinute = Math.min(
      this.callsPerKeyPerMinute,
      Math.max(1, options.callsPerCredentialPerMinute ?? CALLS_PER_CREDENTIAL_PER_MINUTE),
    );
    this.freshReadIntervalMs = (options.freshReadIntervalSeconds ?? 60) * 1000;
  }

  /**
   * The token for `slot`: the cached one while it is before its refresh time; a still-usable one at once
   * (starting one background refresh when the key's budget and cooldown allow); otherwise the result of
   * `fetch`, which runs at most once at a time per entry however many callers wait for it.
   *
   * @example
   * const served = await cache.get({ realKey: 'upstream-cs-speech', credential: 'speech', entry: 'issueToken' },
   *   (permit) => fetchCognitiveToken({ client, endpoint, admit: () => permit.take() }, key, new Date()));
   */
  async get(slot: UpstreamCacheSlot, fetch: Fetch): Promise<ServedUpstreamToken> {
    const nowMs = this.clock().getTime();
    const entries = this.partition(slot);
    const entry = entries.peek(slot.entry)?.value;
    const cached = entry?.token;
    if (cached && nowMs < cached.refreshAtMs) return served(cached, 'cached');

    const blockedSeconds = this.blockedSeconds(slot, entry, nowMs);
    if (cached && this.stillValid(cached, nowMs)) {
      if (blockedSeconds === undefined && !entries.loading(slot.entry)) {
        // Refresh ahead: this caller is served now; the refresh's outcome is recorded in the cache.
        this.start(slot, entries, fetch).catch(() => {});
      }
      return served(cached, entry.failed ? 'fallback' : 'cached');
    }

    if (!entries.loading(slot.entry) && blockedSeconds !== undefined) {
      throw blockedError(blockedSeconds);
    }
    return this.start(slot, entries, fetch);
  }

  /** Resolves once no fetch is running (tests: a background refresh has been recorded). */
  async settled(): Promise<void> {
    await Promise.all([...this.partitions.values()].map((entries) => entries.settled()));
  }

  /** Upstream requests taken from `realKey`'s budget in the last 60 s. */
  callsInWindow(realKey: string): number {
    const state = this.keys.get(realKey.toLowerCase());
    if (!state) return 0;
    this.prune(state, this.clock().getTime());
    return state.calls.length;
  }

  /** Number of entries held (tokens and cooldowns), over every credential. */
  get size(): number {
    let total = 0;
    for (const entries of this.partitions.values()) total += entries.size;
    return total;
  }

  /** Forgets every token, cooldown and budget (tests, key revocation). */
  clear(): void {
    this.partitions.clear();
    this.keys.clear();
  }

  /**
   * Starts (or joins) the one fetch of the slot's entry. Its failure serves, to every caller that shared it, the
   * still-valid token held, as a fallback; without one, the failure.
   */
  private async start(
    slot: UpstreamCacheSlot,
    entries: SingleFlightCache<string, Entry>,
    fetch: Fetch,
  ): Promise<ServedUpstreamToken> {
    try {
      const fetched = await entries.refresh(slot.entry, () => this.refresh(slot, entries, fetch));
      if (!fetched.token) throw new Error('an upstream fetch succeeded without a token'); // fetchAndStore sets one
      return served(fetched.token, 'fetched');
    } catch (error) {
      const previous = entries.peek(slot.entry)?.value.token;
      if (previous && this.stillValid(previous, this.clock().getTime())) return served(previous, 'fallback');
      throw error;
    }
  }

  private async refresh(
    slot: UpstreamCacheSlot,
    entries: SingleFlightCache<string, Entry>,
    fetch: Fetch,
  ): Promise<Cached<Entry>> {
    const key = this.keyState(slot.realKey);
    await this.turn(key);
    try {
      // While this fetch waited for its turn, another may have failed for the whole key or spent its budget.
      const blocked = this.blockedSeconds(slot, undefined, this.clock().getTime());
      if (blocked !== undefined) throw blockedError(blocked);
      return await this.fetchAndStore(slot, key, entries, fetch);
    } finally {
      this.endTurn(key);
    }
  }

  /** Waits until fewer than the key's concurrency limit of fetches run, then counts this one in. */
  private async turn(key: KeyState): Promise<void> {
    while (key.running >= (key.failing ? CONCURRENT_FETCHES_PER_KEY.failing : CONCURRENT_FETCHES_PER_KEY.healthy)) {
      await new Promise<void>((resolve) => key.waiting.push(resolve));
    }
    key.running += 1;
  }

  private endTurn(key: KeyState): void {
    key.running -= 1;
    key.waiting.shift()?.();
  }

  /** Runs the fetch: the entry to hold on success; on failure, the cooldown recorded and the error to pass on. */
  private async fetchAndStore(
    slot: UpstreamCacheSlot,
    key: KeyState,
    entries: SingleFlightCache<string, Entry>,
    fetch: Fetch,
  ): Promise<Cached<Entry>> {
    const permit: UpstreamCallPermit = {
      take: () => {
        const nowMs = this.clock().getTime();
        if (this.budgetWaitSeconds(key, slot.credential, nowMs) !== undefined) return false;
        key.calls.push({ atMs: nowMs, credential: slot.credential });
        return true;
      },
      mayReread: () => {
        const nowMs = this.clock().getTime();
        if (key.lastFreshReadMs !== undefined && nowMs - key.lastFreshReadMs < this.freshReadIntervalMs) return false;
        key.lastFreshReadMs = nowMs;
        return true;
      },
    };
    try {
      const fetched = await fetch(permit);
      const fetchedAtMs = this.clock().getTime();
      const expiresAtMs = fetched.expiresAt.getTime();
      key.failing = false;
      return this.held({
        token: { token: fetched.token, expiresAtMs, refreshAtMs: this.refreshTime(fetchedAtMs, expiresAtMs) },
      });
    } catch (error) {
      const previous = entries.peek(slot.entry)?.value.token;
      const stored = (entry: Entry): void => entries.set(slot.entry, this.held(entry));
      const retryAfterSeconds = this.recordFailure(slot, key, previous, stored, error, this.clock().getTime());
      if (error instanceof UpstreamError) {
        const status = error.status === undefined ? '' : ` ${error.status}`;
        const why = `upstream token unavailable: ${error.failure}${status}`;
        throw new DependencyUnavailableError('upstream', retryAfterSeconds, why, { cause: error });
      }
      throw error;
    }
  }

  /** Sets the cooldown a failure earns (on the key or on the entry) and returns the `Retry-After` to pass on. */
  private recordFailure(
    slot: UpstreamCacheSlot,
    key: KeyState,
    previous: StoredToken | undefined,
    store: (entry: Entry) => void,
    error: unknown,
    nowMs: number,
  ): number {
    if (error instanceof UpstreamError && error.failure === 'budget') {
      // Our own limit, not the upstream's answer: nothing to cool down, retry once a call leaves the window.
      if (previous) store({ token: previous, failed: true });
      return this.budgetWaitSeconds(key, slot.credential, nowMs) ?? 1;
    }
    const known = error instanceof UpstreamError || error instanceof DependencyUnavailableError;
    if (!known) return this.defaultRetryAfterSeconds;
    let seconds = this.retryAfterOf(error);
    const keyRefused =
      error instanceof UpstreamError && error.failure === 'status' && (error.status === 401 || error.status === 403);
    if (keyRefused) seconds = Math.min(this.maxRetryAfterSeconds, Math.max(seconds, this.keyRefusedCooldownSeconds));
    const untilMs = nowMs + seconds * 1000;
    const keyWide = error instanceof DependencyUnavailableError || isKeyWideFailure(error);
    if (keyWide) {
      key.coolDownUntilMs = Math.max(key.coolDownUntilMs ?? 0, untilMs);
      key.failing = true;
      // The key's state says it all: no entry is created for a request that never got a token.
      if (previous) store({ token: previous, failed: true });
    } else {
      store({ token: previous, failed: true, coolDownUntilMs: untilMs });
    }
    return seconds;
  }

  /** Seconds until this entry may call the upstream, or undefined when it may now (key and entry cooldowns, budget). */
  private blockedSeconds(slot: UpstreamCacheSlot, entry: Entry | undefined, nowMs: number): number | undefined {
    const key = this.keys.get(slot.realKey);
    const untilMs = Math.max(key?.coolDownUntilMs ?? 0, entry?.coolDownUntilMs ?? 0);
    if (untilMs > nowMs) return Math.max(1, Math.ceil((untilMs - nowMs) / 1000));
    return key ? this.budgetWaitSeconds(key, slot.credential, nowMs) : undefined;
  }

  /**
   * Seconds until the key's budget has room for one more request of `credential` (the key's window and the
   * credential's share), or undefined when it has room now.
   */
  private budgetWaitSeconds(key: KeyState, credential: string, nowMs: number): number | undefined {
    this.prune(key, nowMs);
    const waitFor = (atMs: number): number => Math.max(1, Math.ceil((atMs + WINDOW_MS - nowMs) / 1000));
    if (key.calls.length >= this.callsPerKeyPerMinute) return waitFor(key.calls[0]?.atMs ?? nowMs);
    const own = key.calls.filter((call) => call.credential === credential);
    if (own.length >= this.callsPerCredentialPerMinute) return waitFor(own[0]?.atMs ?? nowMs);
    return undefined;
  }

  private prune(key: KeyState, nowMs: number): void {
    while (key.calls.length > 0 && (key.calls[0]?.atMs ?? 0) <= nowMs - WINDOW_MS) key.calls.shift();
  }

  private keyState(realKey: string): KeyState {
    let state = this.keys.get(realKey);
    if (!state) {
      state = { calls: [], failing: false, running: 0, waiting: [] };
      this.keys.set(realKey, state);
    }
    return state;
  }

  /**
   * Refresh when less than max(ratio × lifetime, minimum margin) is left, but never in the first half of the
   * lifetime: a one-minute token is reused for 30 s instead of being refreshed on every request.
   */
  private refreshTime(fetchedAtMs: number, expiresAtMs: number): number {
    const lifetimeMs = Math.max(0, expiresAtMs - fetchedAtMs);
    const marginMs = Math.min(lifetimeMs / 2, Math.max(lifetimeMs * this.refreshMarginRatio, this.minRefreshMarginMs));
    return expiresAtMs - marginMs;
  }

  private stillValid(token: StoredToken, nowMs: number): boolean {
    return token.expiresAtMs - nowMs >= this.minServeMs;
  }

  private retryAfterOf(error: UpstreamError | DependencyUnavailableError): number {
    const seconds = error.retryAfterSeconds ?? this.defaultRetryAfterSeconds;
    return Math.min(this.maxRetryAfterSeconds, Math.max(1, Math.ceil(seconds)));
  }

  /** The credential's entries (created on first use: one per configured credential and real key). */
  private partition(slot: UpstreamCacheSlot): SingleFlightCache<string, Entry> {
    const id = partitionId(slot);
    let entries = this.partitions.get(id);
    if (!entries) {
      entries = new SingleFlightCache({ maxEntries: this.maxEntriesPerCredential, now: () => this.clock().getTime() });
      this.partitions.set(id, entries);
    }
    return entries;
  }

  /**
   * An entry's deadlines: fresh until its token's refresh time; held while the token may still be served, its
   * refresh time has not come or its cooldown lasts (after all three it carries nothing, and is dropped).
   */
  private held(entry: Entry): Cached<Entry> {
    const token = entry.token;
    const freshUntilMs = token?.refreshAtMs ?? 0;
    const servableUntilMs = token ? token.expiresAtMs - this.minServeMs + 1 : 0;
    const staleUntilMs = Math.max(freshUntilMs, servableUntilMs, entry.coolDownUntilMs ?? 0);
    return { value: entry, freshUntilMs, staleUntilMs };
  }
}

function partitionId(slot: UpstreamCacheSlot): string {
  return `${slot.realKey}\n${slot.credential}`;
}

function blockedError(seconds: number): DependencyUnavailableError {
  return new DependencyUnavailableError(
    'upstream',
    seconds,
    'upstream token unavailable (cooling down or call budget spent)',
  );
}

function served(token: StoredToken, servedFrom: ServedUpstreamToken['servedFrom']): ServedUpstreamToken {
  return { token: token.token, expiresAt: new Date(token.expiresAtMs), servedFrom };
}
