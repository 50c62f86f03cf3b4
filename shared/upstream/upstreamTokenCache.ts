import { DependencyUnavailableError } from '../errors.js';
import { UpstreamError } from './upstreamErrors.js';
import type { UpstreamToken } from './upstreamToken.js';

export interface UpstreamTokenCacheOptions {
  /** The clock every expiry decision uses (frozen in tests). */
  readonly clock: () => Date;
  /** Keys kept, least recently used evicted first. Default 1,000. */
  readonly maxEntries?: number;
  /** A token is refreshed when less than this share of its lifetime is left. Default 0.1. */
  readonly refreshMarginRatio?: number;
  /** ... or less than this many seconds, whichever is larger. Default 30. */
  readonly minRefreshMarginSeconds?: number;
  /** After a failed refresh, a cached token is still served while it has at least this long left. Default 5 s. */
  readonly minServeSeconds?: number;
  /** `Retry-After` when the upstream gave none. Default 10 s. */
  readonly defaultRetryAfterSeconds?: number;
  /** Upper bound of the `Retry-After` passed on, and of the cooldown after a failure. Default 60 s. */
  readonly maxRetryAfterSeconds?: number;
}

/** A token as served to one caller. */
export interface ServedUpstreamToken {
  readonly token: string;
  readonly expiresAt: Date;
  /** `fetched`: this call (or one it joined) got it from the upstream; `cached`: reused; `fallback`: the refresh failed and a still-valid token was served. */
  readonly servedFrom: 'fetched' | 'cached' | 'fallback';
}

interface StoredToken {
  readonly token: string;
  readonly expiresAtMs: number;
  readonly refreshAtMs: number;
}

interface Entry {
  token?: StoredToken | undefined;
  /** No upstream call for this key before this time (set after a failure). */
  coolDownUntilMs?: number | undefined;
}

/**
 * Caches tokens fetched from upstream STSs (docs/upstream.md), keyed by upstream credential + request shape:
 * one in-flight fetch per key, reuse until the refresh margin (10% of the lifetime, at least 30 s: a
 * 10-minute Speech token is reused for 9, as the Speech docs advise), bounded size (LRU).
 *
 * Failures: while a cached token is still valid it keeps being served (and no upstream call is made
 * during the cooldown that follows a failure); otherwise the call rejects with
 * `DependencyUnavailableError('upstream', retryAfter)` (503 + `Retry-After` in the flow's shape), where
 * `retryAfter` is the upstream's `Retry-After` when it sent one. A secret-store outage keeps its own
 * `DependencyUnavailableError`. Errors that are neither (bugs) are rethrown unchanged.
 */
export class UpstreamTokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<ServedUpstreamToken>>();
  private readonly clock: () => Date;
  private readonly maxEntries: number;
  private readonly refreshMarginRatio: number;
  private readonly minRefreshMarginMs: number;
  private readonly minServeMs: number;
  private readonly defaultRetryAfterSeconds: number;
  private readonly maxRetryAfterSeconds: number;

  constructor(options: UpstreamTokenCacheOptions) {
    this.clock = options.clock;
    this.maxEntries = Math.max(1, options.maxEntries ?? 1_000);
    this.refreshMarginRatio = options.refreshMarginRatio ?? 0.1;
    this.minRefreshMarginMs = (options.minRefreshMarginSeconds ?? 30) * 1000;
    this.minServeMs = (options.minServeSeconds ?? 5) * 1000;
    this.defaultRetryAfterSeconds = options.defaultRetryAfterSeconds ?? 10;
    this.maxRetryAfterSeconds = Math.max(1, options.maxRetryAfterSeconds ?? 60);
  }

  /**
   * The token for `key`: the cached one while it is before its refresh time; otherwise the result of
   * `fetch`, which runs at most once at a time per key however many callers wait for it.
   *
   * @example
   * const served = await cache.get(`issueToken\n${endpoint}\n${secretName}`, () => fetchCognitiveToken(...));
   */
  async get(key: string, fetch: () => Promise<UpstreamToken>): Promise<ServedUpstreamToken> {
    const nowMs = this.clock().getTime();
    const entry = this.touch(key);
    const cached = entry?.token;
    if (cached && nowMs < cached.refreshAtMs) return served(cached, 'cached');

    const coolDownUntilMs = entry?.coolDownUntilMs;
    if (coolDownUntilMs !== undefined && nowMs < coolDownUntilMs) {
      if (cached && this.stillValid(cached, nowMs)) return served(cached, 'fallback');
      throw new DependencyUnavailableError(
        'upstream',
        Math.max(1, Math.ceil((coolDownUntilMs - nowMs) / 1000)),
        'upstream token unavailable (cooling down after a failed fetch)',
      );
    }

    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.refresh(key, fetch).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  /** Number of keys held (tokens and failure cooldowns). */
  get size(): number {
    return this.entries.size;
  }

  /** Forgets every token and cooldown (tests, key revocation). */
  clear(): void {
    this.entries.clear();
  }

  private async refresh(key: string, fetch: () => Promise<UpstreamToken>): Promise<ServedUpstreamToken> {
    try {
      const fetched = await fetch();
      const fetchedAtMs = this.clock().getTime();
      const stored: StoredToken = {
        token: fetched.token,
        expiresAtMs: fetched.expiresAt.getTime(),
        refreshAtMs: this.refreshTime(fetchedAtMs, fetched.expiresAt.getTime()),
      };
      this.store(key, { token: stored });
      return served(stored, 'fetched');
    } catch (error) {
      const nowMs = this.clock().getTime();
      const retryAfterSeconds = this.retryAfterOf(error);
      const previous = this.entries.get(key)?.token;
      const known = error instanceof UpstreamError || error instanceof DependencyUnavailableError;
      if (known) this.store(key, { token: previous, coolDownUntilMs: nowMs + retryAfterSeconds * 1000 });
      if (previous && this.stillValid(previous, nowMs)) return served(previous, 'fallback');
      if (error instanceof UpstreamError) {
        const status = error.status === undefined ? '' : ` ${error.status}`;
        throw new DependencyUnavailableError('upstream', retryAfterSeconds, `upstream token unavailable: ${error.failure}${status}`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  /** Refresh when less than max(ratio × lifetime, minimum margin) is left; never before the fetch itself. */
  private refreshTime(fetchedAtMs: number, expiresAtMs: number): number {
    const lifetimeMs = Math.max(0, expiresAtMs - fetchedAtMs);
    const marginMs = Math.max(lifetimeMs * this.refreshMarginRatio, this.minRefreshMarginMs);
    return Math.max(fetchedAtMs, expiresAtMs - marginMs);
  }

  private stillValid(token: StoredToken, nowMs: number): boolean {
    return token.expiresAtMs - nowMs >= this.minServeMs;
  }

  private retryAfterOf(error: unknown): number {
    const hinted =
      error instanceof DependencyUnavailableError
        ? error.retryAfterSeconds
        : error instanceof UpstreamError
          ? error.retryAfterSeconds
          : undefined;
    const seconds = hinted ?? this.defaultRetryAfterSeconds;
    return Math.min(this.maxRetryAfterSeconds, Math.max(1, Math.ceil(seconds)));
  }

  /** Looks `key` up and marks it most recently used. */
  private touch(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  private store(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }
}

function served(token: StoredToken, servedFrom: ServedUpstreamToken['servedFrom']): ServedUpstreamToken {
  return { token: token.token, expiresAt: new Date(token.expiresAtMs), servedFrom };
}
