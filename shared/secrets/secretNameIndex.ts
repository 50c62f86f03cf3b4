import { DependencyUnavailableError } from '../errors.js';
import { describeError } from '../logging/redact.js';
import { DEFAULT_RETRY_AFTER_SECONDS } from './keyVaultErrors.js';
import type { ListableSecretStore, SecretListing } from './secretStore.js';

/** The index settings (`config.secretCache.indexRefreshSeconds`). */
export interface SecretNameIndexSettings {
  /** Mean time between two listings; each interval is drawn from ±20 % of it, so instances spread out. */
  readonly refreshSeconds: number;
}

/** What the last listing said about one secret (its current version's attributes, no value). */
export interface IndexedSecret {
  readonly enabled: boolean;
  readonly updatedOnMs: number;
  readonly notBeforeMs: number | undefined;
  readonly expiresOnMs: number | undefined;
}

export interface SecretNameIndexStats {
  /** Names held now (the secrets in the vault, as of the last listing). */
  readonly size: number;
  /** Listings completed (the first one included). */
  readonly listings: number;
  /** List calls made (one per page). */
  readonly pages: number;
  readonly listingFailures: number;
  /** Names reported as changed to the listeners (each makes the next lookup of that name read it again). */
  readonly changesReported: number;
}

/** Spread of each refresh interval around its mean: ±20 %. */
const JITTER_FRACTION = 0.2;
/**
 * Key Vault's `updated` has one-second resolution, so two changes within the same second look like one. A
 * name updated this close to the start of a listing is reported as changed once more at the next listing,
 * so a value read in between is read again (clock skew beyond this is covered by the cache's max age).
 */
const SETTLE_MS = 5_000;

interface Waiter {
  readonly resolve: (entry: IndexedSecret | undefined) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The names of the secrets that exist, with their enabled flag, validity window and `updated` time: one
 * listing of the vault (list secrets, 25 names per call, no values), so that a lookup of a name the vault
 * does not hold is answered from memory and costs **no vault read** (docs/key-vault.md#index).
 *
 * - The first lookup starts the listing; every lookup waits for it (one listing, however many wait), but a
 *   name is answered as soon as the page holding it has arrived. A failed first listing answers 503 with the
 *   vault's `Retry-After` until it is retried.
 * - A lookup after `refreshSeconds` (±20 %) starts a listing in the background and is answered from the
 *   current index: no request waits for a refresh. A failed refresh keeps the current index and is retried
 *   after the vault's `Retry-After`; the outage is reported once to `warn`.
 * - Each listing is compared with the one before: a name whose `updated`, enabled flag or validity changed,
 *   or that is gone, is reported to the change listeners (the cache forgets it, so its next lookup reads the
 *   new version). That is how changes made outside the admin CLI (portal, `az keyvault secret set`) arrive.
 * - Memory: one small entry per secret in the vault; made-up names leave nothing behind.
 *
 * @example
 * const index = new SecretNameIndex(vault, { refreshSeconds: 60 });
 * await index.lookup('mr-account-…'); // undefined: not in the vault, no read spent
 */
export class SecretNameIndex {
  /**
   * The last listing, replaced whole by the next: a mirror of the vault's names (one entry per secret that
   * exists), not a per-name cache of loaded values, so not a SingleFlightCache; `listing` is its one load in
   * flight, and `waiters` only the callers of the first listing, each answered when its page or the listing ends.
   */
  private known: Map<string, IndexedSecret> | undefined;
  /** The first listing's names so far, while it runs. */
  private partial: Map<string, IndexedSecret> | undefined;
  private readonly waiters = new Map<string, Waiter[]>();
  private listing: Promise<void> | undefined;
  private nextRefreshAtMs = 0;
  /** After a failed first listing: no new one before this time. */
  private retryAtMs = 0;
  private retryAfterSeconds = DEFAULT_RETRY_AFTER_SECONDS;
  private lastListingStartMs = Number.NEGATIVE_INFINITY;
  /** Names found gone by a read since the last listing: reported as changed when the next listing lands. */
  private readonly forgotten = new Set<string>();
  private failing = false;
  private readonly listeners: Array<(names: readonly string[]) => void> = [];
  private readonly counters = { listings: 0, pages: 0, listingFailures: 0, changesReported: 0 };

  constructor(
    private readonly store: ListableSecretStore,
    private readonly settings: SecretNameIndexSettings,
    private readonly clock: () => Date = () => new Date(),
    private readonly warn: (line: string) => void = (line) => console.warn(line),
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * What the vault holds under `name` (case-insensitive), or undefined when it holds no such secret. Waits only
   * on a cold instance, for the first listing; rejects with `DependencyUnavailableError` when that failed.
   */
  lookup(name: string): Promise<IndexedSecret | undefined> {
    const key = name.toLowerCase();
    const nowMs = this.clock().getTime();
    if (this.known) {
      if (nowMs >= this.nextRefreshAtMs && !this.listing) this.startListing().catch(() => undefined);
      return Promise.resolve(this.known.get(key));
    }
    const early = this.partial?.get(key);
    if (early) return Promise.resolve(early);
    if (!this.listing) {
      if (nowMs < this.retryAtMs) {
        const seconds = Math.max(1, Math.ceil((this.retryAtMs - nowMs) / 1000));
        const error = new DependencyUnavailableError(
          'secret-store',
          seconds,
          'The secret name index is not loaded yet',
        );
        return Promise.reject(error);
      }
      this.startListing().catch(() => undefined);
    }
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(key);
      if (list) list.push({ resolve, reject });
      else this.waiters.set(key, [{ resolve, reject }]);
    });
  }

  /**
   * A read found `name` gone or unusable although the index listed it (changed since the listing): it is
   * refused without a read until the next listing says otherwise.
   */
  forget(name: string): void {
    const key = name.toLowerCase();
    if (this.known?.delete(key)) this.forgotten.add(key);
  }

  /** Calls `listener` with the names (lower case) that changed whenever a listing lands. */
  onChange(listener: (names: readonly string[]) => void): void {
    this.listeners.push(listener);
  }

  /** Lists now (or joins the listing under way) and resolves when it has landed; rejects when it failed. */
  refreshNow(): Promise<void> {
    return this.listing ?? this.startListing();
  }

  /** True once the first listing has landed. */
  get loaded(): boolean {
    return this.known !== undefined;
  }

  stats(): SecretNameIndexStats {
    return { ...this.counters, size: this.known?.size ?? this.partial?.size ?? 0 };
  }

  private startListing(): Promise<void> {
    const cold = this.known === undefined;
    const startedMs = this.clock().getTime();
    const fresh = new Map<string, IndexedSecret>();
    if (cold) this.partial = fresh;
    const run = this.store
      .listSecrets((page) => {
        this.counters.pages += 1;
        for (const listed of page) {
          const key = listed.name.toLowerCase();
          const entry = toIndexed(listed);
          fresh.set(key, entry);
          if (cold) this.settleWaiters(key, (waiter) => waiter.resolve(entry));
        }
      })
      .then(
        () => this.install(fresh, startedMs),
        (error: unknown) => this.onListingFailed(error, cold),
      )
      .finally(() => {
        this.listing = undefined;
      });
    this.listing = run;
    return run;
  }

  private install(fresh: Map<string, IndexedSecret>, startedMs: number): void {
    const previous = this.known;
    const changed = new Set<string>(this.forgotten);
    this.forgotten.clear();
    if (previous) {
      for (const [name, before] of previous) {
        const after = fresh.get(name);
        if (!after || !sameListing(before, after)) changed.add(name);
      }
      for (const [name, entry] of fresh) {
        if (entry.updatedOnMs >= this.lastListingStartMs - SETTLE_MS) changed.add(name);
      }
    }
    this.known = fresh;
    this.partial = undefined;
    this.lastListingStartMs = startedMs;
    this.nextRefreshAtMs = this.clock().getTime() + this.jitteredIntervalMs();
    this.counters.listings += 1;
    if (this.failing) this.warn(`secret name index: listing again (${fresh.size} names)`);
    this.failing = false;
    for (const [key, list] of [...this.waiters]) {
      this.waiters.delete(key);
      for (const waiter of list) waiter.resolve(fresh.get(key));
    }
    if (changed.size > 0) {
      this.counters.changesReported += changed.size;
      const names = [...changed];
      for (const listener of this.listeners) listener(names);
    }
  }

  private onListingFailed(error: unknown, cold: boolean): never {
    this.counters.listingFailures += 1;
    const known = error instanceof DependencyUnavailableError;
    const retryAfter = known ? error.retryAfterSeconds : DEFAULT_RETRY_AFTER_SECONDS;
    const nowMs = this.clock().getTime();
    if (!this.failing) {
      this.warn(
        cold
          ? `secret name index: the first listing failed (${describeError(error)}); ` +
              'lookups answer 503 until it succeeds'
          : `secret name index: a refresh failed (${describeError(error)}); ` +
              'answering from the last listing until one succeeds',
      );
    }
    this.failing = true;
    this.retryAfterSeconds = retryAfter;
    const unavailable =
      error instanceof DependencyUnavailableError
        ? error
        : new DependencyUnavailableError('secret-store', retryAfter, 'The secret name index could not be loaded', {
            cause: error,
          });
    if (cold) {
      this.partial = undefined;
      this.retryAtMs = nowMs + this.retryAfterSeconds * 1000;
      for (const [key, list] of [...this.waiters]) {
        this.waiters.delete(key);
        for (const waiter of list) waiter.reject(unavailable);
      }
    } else {
      this.nextRefreshAtMs = nowMs + this.retryAfterSeconds * 1000;
    }
    throw unavailable;
  }

  private settleWaiters(key: string, settle: (waiter: Waiter) => void): void {
    const list = this.waiters.get(key);
    if (!list) return;
    this.waiters.delete(key);
    for (const waiter of list) settle(waiter);
  }

  private jitteredIntervalMs(): number {
    const spread = 1 - JITTER_FRACTION + 2 * JITTER_FRACTION * this.random();
    return Math.round(this.settings.refreshSeconds * 1000 * spread);
  }
}

/** True when the listing allows using the secret at `nowMs`: enabled and inside its validity window. */
export function listedAsUsable(entry: IndexedSecret, nowMs: number): boolean {
  if (!entry.enabled) return false;
  if (entry.notBeforeMs !== undefined && entry.notBeforeMs > nowMs) return false;
  if (entry.expiresOnMs !== undefined && entry.expiresOnMs <= nowMs) return false;
  return true;
}

function toIndexed(listed: SecretListing): IndexedSecret {
  return {
    enabled: listed.enabled,
    updatedOnMs: listed.updatedOn?.getTime() ?? 0,
    notBeforeMs: listed.notBefore?.getTime(),
    expiresOnMs: listed.expiresOn?.getTime(),
  };
}

function sameListing(a: IndexedSecret, b: IndexedSecret): boolean {
  return (
    a.enabled === b.enabled &&
    a.updatedOnMs === b.updatedOnMs &&
    a.notBeforeMs === b.notBeforeMs &&
    a.expiresOnMs === b.expiresOnMs
  );
}
