import { DependencyUnavailableError, type DependencyCondition } from '../errors.js';
import { SingleFlightCache, type Cached } from '../caching/singleFlightCache.js';
import { describeError } from '../logging/redact.js';
import { isUsable, type SecretStore, type SecretVersion } from './secretStore.js';

/** The cache settings (`config.secretCache`). */
export interface SecretCacheSettings {
  /** How long a found secret is served without asking the store again. */
  readonly maxAgeSeconds: number;
  /** How long "absent" is remembered (shorter, so a new credential appears quickly). */
  readonly negativeMaxAgeSeconds: number;
  /** Entries kept (found and absent together); the least recently used go first. */
  readonly maxEntries: number;
  /** How long past its max age an entry may still be served while the store is failing. */
  readonly maxStaleSeconds: number;
  /** Longest wait for a free store slot before answering "unavailable". */
  readonly vaultTimeoutMs: number;
  /**
   * Store reads this process may start per second (a token bucket holding one second's worth); beyond it
   * cold lookups get a 503 with `Retry-After: 1` instead of spending the vault's shared budget. Unlimited
   * when absent.
   */
  readonly vaultReadsPerSecond?: number;
  /**
   * Of that budget, the reads one client address is sure of per second (reads attributed by the `requester`
   * of `getSecret`, which the credential directory of a request passes). Past it, the address may only use the budget while more than a quarter of it is
   * left, so one address flooding unknown names cannot spend the reads other clients need. Unattributed
   * reads (background refreshes, no address) only count against the instance budget.
   */
  readonly vaultReadsPerClientPerSecond?: number;
}

export interface SecretCacheStats {
  /** Answers from a fresh entry (found or absent). */
  readonly hits: number;
  /** Lookups that needed the store (or waited for a fetch already under way). */
  readonly misses: number;
  /** Calls made to the wrapped store: the vault transactions this process spent. */
  readonly storeReads: number;
  /** Lookups that joined a fetch already in flight instead of starting one. */
  readonly coalesced: number;
  /** Answers from an expired entry because the store failed. */
  readonly staleServes: number;
  /** Background refreshes started ahead of expiry. */
  readonly refreshes: number;
  readonly storeFailures: number;
  /** Lookups answered "unavailable" without a store call (backing off, or too busy). */
  readonly shed: number;
  readonly evictions: number;
  /** Entries held now (never more than `maxEntries`). */
  readonly size: number;
}

/** Share of the max age after which a hit also refreshes the entry in the background. */
const REFRESH_AHEAD_FRACTION = 0.8;
/** Store calls in flight at once; a burst of cold names queues behind these. */
const MAX_CONCURRENT_READS = 32;
/** Lookups allowed to queue for a store slot; beyond that the cache sheds load with a 503. */
const MAX_QUEUED_READS = 1_024;
/** Share of the instance read budget that a client past its own share can never spend. */
const SHARED_RESERVE_FRACTION = 0.25;
/** Client read budgets kept at most; the least recently used go first (a dropped budget starts full again). */
const MAX_CLIENT_BUDGETS = 10_000;

/** What is held per name: the store's answer, and when a hit should also refresh it in the background. */
interface Held {
  readonly value: unknown;
  readonly absent: boolean;
  readonly refreshAfterMs: number;
}

type Counters = { -readonly [K in Exclude<keyof SecretCacheStats, 'size'>]: number };

/**
 * A per-process cache in front of any {@link SecretStore} (Key Vault allows 4,000 secret transactions per
 * 10 s per vault, shared by every instance), in the manner of jose's `createRemoteJWKSet`:
 *
 * - a found secret is served for `maxAgeSeconds`, refreshed in the background once 80 % of that has passed,
 *   so a warm credential costs no store call on the request path;
 * - exactly one fetch per name is in flight; concurrent lookups share it;
 * - "absent" is remembered for `negativeMaxAgeSeconds`;
 * - found and absent entries share one LRU bound (`maxEntries`), so a flood of unknown names cannot grow
 *   memory; at most 32 store calls run at once and at most 1,024 wait, each no longer than `vaultTimeoutMs`;
 * - when the store fails, the last good answer is served up to `maxStaleSeconds` past its max age; a
 *   `DependencyUnavailableError` makes the whole cache back off for its `retryAfterSeconds` (Key Vault's
 *   `Retry-After`), answering cold lookups at once with a 503 instead of adding load;
 * - a cached secret that reaches its own `expiresOn` stops being served at that moment;
 * - an outage is reported to `warn` once, when the first store call fails, and its end once, when a store
 *   call succeeds again: never per request, never with a value.
 *
 * The holding, the LRU bound, the one fetch per name and the stale deadline are the shared
 * {@link SingleFlightCache}; what is here is the policy on top: refresh-ahead, negative answers, read budgets,
 * store slots, backoff and the counters.
 *
 * @example
 * const secrets = new CachedSecretStore(new KeyVaultSecretStore({ vaultUrl, timeoutMs: 3_000 }), config.secretCache);
 * await secrets.getSecret('mr-account-…'); // one vault read, then none until the entry ages
 */
export class CachedSecretStore implements SecretStore {
  private readonly entries: SingleFlightCache<string, Held>;
  private readonly waiting: Array<{ grant: () => void }> = [];
  private active = 0;
  private backoffUntilMs = 0;
  private backoffReason = '';
  /** The condition of the failure that started the backoff (a throttled vault stays "throttled" while we wait). */
  private backoffCondition: DependencyCondition | undefined;
  /** The last store call failed: the outage has been reported, and its end will be. */
  private storeFailing = false;
  private readonly counters: Counters = {
    hits: 0,
    misses: 0,
    storeReads: 0,
    coalesced: 0,
    staleServes: 0,
    refreshes: 0,
    storeFailures: 0,
    shed: 0,
    evictions: 0,
  };

  constructor(
    private readonly inner: SecretStore,
    private readonly settings: SecretCacheSettings,
    private readonly clock: () => Date = () => new Date(),
    private readonly warn: (line: string) => void = (line) => console.warn(line),
  ) {
    this.entries = new SingleFlightCache({
      maxEntries: settings.maxEntries,
      now: () => this.clock().getTime(),
      onEvict: () => (this.counters.evictions += 1),
    });
  }

  getSecret(name: string, requester?: string): Promise<SecretVersion | undefined> {
    return this.lookup<SecretVersion | undefined>(
      `secret:${name}`,
      () => this.inner.getSecret(name),
      (value) => value === undefined,
      (value, now) => (value && isUsable(value, now) ? value : undefined),
      requester,
    );
  }

  /**
   * Drops the cached entry and asks the wrapped store's own fresh read; the answer is cached as usual, so
   * after a rotation only the first caller pays the re-read. Never served stale: when the store fails, so
   * does this. A fetch of `name` already under way is joined (it too is answered by the store).
   */
  getFreshSecret(name: string): Promise<SecretVersion | undefined> {
    const key = `secret:${name}`;
    this.entries.delete(key);
    this.counters.misses += 1;
    return this.fetch<SecretVersion | undefined>(
      key,
      () => this.inner.getFreshSecret(name),
      (value) => value === undefined,
    ).then((value) => (value && isUsable(value, this.clock()) ? value : undefined));
  }

  /**
   * Passed through, not retained: its one reader (the signing key ring) keeps the versions for the max age
   * itself, with its own stale-on-error, and a second layer would only delay a rotation twice. Concurrent
   * calls still share one fetch, and the backoff and concurrency bound apply.
   */
  getSecretVersions(name: string): Promise<readonly SecretVersion[]> {
    return this.fetch(
      `versions:${name}`,
      () => this.inner.getSecretVersions(name),
      () => false,
      { retain: false },
    );
  }

  /**
   * Drops what is held for `name` (the secret name index saw it change): the next lookup reads it again. A
   * fetch already under way is left to finish.
   */
  forget(name: string): void {
    this.entries.delete(`secret:${name}`);
  }

  /** Counters since start, for tests and the benchmark. */
  stats(): SecretCacheStats {
    return { ...this.counters, size: this.entries.size };
  }

  private async lookup<T>(
    key: string,
    load: () => Promise<T>,
    isAbsent: (value: T) => boolean,
    present: (value: T, now: Date) => T,
    requester?: string,
  ): Promise<T> {
    const now = this.clock();
    const nowMs = now.getTime();
    const held = this.entries.peek(key);
    if (held && nowMs < held.freshUntilMs) {
      this.counters.hits += 1;
      const { value, absent, refreshAfterMs } = held.value;
      if (!absent && nowMs >= refreshAfterMs && !this.entries.loading(key) && nowMs >= this.backoffUntilMs) {
        this.counters.refreshes += 1;
        // Failures are counted; the entry keeps serving. Unattributed: a warm hit spends no client's share.
        this.fetch(key, load, isAbsent).catch(() => undefined);
      }
      return present(value as T, now);
    }

    this.counters.misses += 1;
    try {
      const value = await this.fetch(key, load, isAbsent, { requester });
      return present(value, this.clock());
    } catch (error) {
      // Stale on error: what is held now (peek drops it once past its stale deadline), else what was held.
      const fallback = this.entries.peek(key) ?? held;
      if (fallback && this.clock().getTime() < fallback.staleUntilMs) {
        this.counters.staleServes += 1;
        return present(fallback.value.value as T, this.clock());
      }
      throw error;
    }
  }

  /** One fetch per key in flight; the result (found or absent) is held before the promise settles. */
  private fetch<T>(
    key: string,
    load: () => Promise<T>,
    isAbsent: (value: T) => boolean,
    { retain = true, requester }: { retain?: boolean; requester?: string | undefined } = {},
  ): Promise<T> {
    const read = async (): Promise<Cached<Held>> => {
      await this.acquireSlot(requester);
      try {
        this.counters.storeReads += 1;
        const value = await load();
        if (this.storeFailing) this.warn('secret store: answering again');
        this.storeFailing = false;
        return this.toHold(value, isAbsent(value), retain);
      } catch (error) {
        this.counters.storeFailures += 1;
        if (!this.storeFailing) {
          this.warn(
            `secret store: ${describeError(error)}; serving cached answers up to ${this.settings.maxStaleSeconds} s past their max age until it answers`,
          );
        }
        this.storeFailing = true;
        if (error instanceof DependencyUnavailableError) {
          this.backoffUntilMs = Math.max(this.backoffUntilMs, this.clock().getTime() + error.retryAfterSeconds * 1000);
          this.backoffReason = error.message;
          this.backoffCondition = error.condition;
        }
        throw error;
      } finally {
        this.releaseSlot();
      }
    };
    if (this.entries.loading(key)) {
      this.counters.coalesced += 1;
    } else {
      const nowMs = this.clock().getTime();
      if (nowMs < this.backoffUntilMs) {
        this.counters.shed += 1;
        return Promise.reject(
          new DependencyUnavailableError(
            'secret-store',
            Math.ceil((this.backoffUntilMs - nowMs) / 1000),
            `Backing off: ${this.backoffReason}`,
            { condition: this.backoffCondition },
          ),
        );
      }
    }
    return this.entries.refresh(key, read).then((held) => held.value as T);
  }

  /** The deadlines of a store answer; one not retained is already past them, so it is shared but never held. */
  private toHold(value: unknown, absent: boolean, retain: boolean): Cached<Held> {
    if (!retain) return { value: { value, absent, refreshAfterMs: 0 }, freshUntilMs: 0, staleUntilMs: 0 };
    const nowMs = this.clock().getTime();
    const maxAgeMs = (absent ? this.settings.negativeMaxAgeSeconds : this.settings.maxAgeSeconds) * 1000;
    return {
      value: {
        value,
        absent,
        refreshAfterMs: absent ? Number.POSITIVE_INFINITY : nowMs + maxAgeMs * REFRESH_AHEAD_FRACTION,
      },
      freshUntilMs: nowMs + maxAgeMs,
      staleUntilMs: nowMs + maxAgeMs + this.settings.maxStaleSeconds * 1000,
    };
  }

  private readonly instanceBudget: ReadBudget = { tokens: Number.NaN, atMs: 0 };
  /** Per-address buckets, bounded by the same LRU as every cache (values made here, never loaded). */
  private readonly clientBudgets = new SingleFlightCache<string, ReadBudget>({ maxEntries: MAX_CLIENT_BUDGETS });

  /**
   * Takes one read from the instance's per-second budget, or returns false when it is spent. An attributed
   * read first uses its client's share; a client past its share may still read while more than a quarter of
   * the instance budget is left, so a lone busy client is not slowed down, yet one flooding address can
   * never take the last quarter, which stays for clients within their share. Both refill continuously.
   */
  private takeReadToken(client: string | undefined): boolean {
    const perSecond = this.settings.vaultReadsPerSecond;
    if (perSecond === undefined) return true;
    const nowMs = this.clock().getTime();
    if (refill(this.instanceBudget, perSecond, nowMs) < 1) return false;
    const perClient = this.settings.vaultReadsPerClientPerSecond;
    if (client !== undefined && perClient !== undefined) {
      const share = this.clientBudget(client);
      if (refill(share, perClient, nowMs) >= 1) share.tokens -= 1;
      else if (this.instanceBudget.tokens < perSecond * SHARED_RESERVE_FRACTION + 1) return false;
    }
    this.instanceBudget.tokens -= 1;
    return true;
  }

  private clientBudget(client: string): ReadBudget {
    const held = this.clientBudgets.peek(client); // marks it recently used
    if (held) return held.value;
    const budget: ReadBudget = { tokens: Number.NaN, atMs: 0 };
    this.clientBudgets.set(client, { value: budget, freshUntilMs: Infinity, staleUntilMs: Infinity });
    return budget;
  }

  private acquireSlot(requester: string | undefined): Promise<void> {
    if (!this.takeReadToken(requester)) {
      this.counters.shed += 1;
      return Promise.reject(
        new DependencyUnavailableError(
          'secret-store',
          1,
          'The secret-store read budget of this instance or client is spent',
          { condition: 'budget' },
        ),
      );
    }
    if (this.active < MAX_CONCURRENT_READS) {
      this.active += 1;
      return Promise.resolve();
    }
    if (this.waiting.length >= MAX_QUEUED_READS) {
      this.counters.shed += 1;
      return Promise.reject(new DependencyUnavailableError('secret-store', 1, 'Too many secret-store reads queued'));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        this.counters.shed += 1;
        reject(new DependencyUnavailableError('secret-store', 1, 'No secret-store slot became free in time'));
      }, this.settings.vaultTimeoutMs);
      this.waiting.push(waiter);
    });
  }

  private releaseSlot(): void {
    const next = this.waiting.shift();
    if (next)
      next.grant(); // the slot passes straight to the next waiter
    else this.active -= 1;
  }
}

/** A token bucket holding one second's worth of reads. */
interface ReadBudget {
  tokens: number;
  atMs: number;
}

/** Refills `budget` for the time since it was last used and returns the tokens it now holds. */
function refill(budget: ReadBudget, perSecond: number, nowMs: number): number {
  const elapsedMs = Math.max(0, nowMs - budget.atMs);
  budget.tokens = Number.isNaN(budget.tokens)
    ? perSecond
    : Math.min(perSecond, budget.tokens + (elapsedMs * perSecond) / 1000);
  budget.atMs = nowMs;
  return budget.tokens;
}
