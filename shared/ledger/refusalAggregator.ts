import type { LedgerEntry } from './ledger.js';
import { OVERFLOW_REFUSAL_ADDRESS, type RefusalAggregate } from './ledgerRows.js';

/**
 * Refusals that prove the credential they name exists (its record was found): these keep a row each, under the
 * credential, because "is someone guessing X's key" is asked per credential. Their volume is bounded by the
 * per-credential failed-attempt limit (docs/failed-attempts.md), whatever the number of addresses.
 */
const PROVEN_CREDENTIAL_REASONS: ReadonlySet<string> = new Set([
  'wrong_key',
  'credential_disabled',
  'principal_not_allowed',
  'scope_not_allowed',
]);

/**
 * True for a refusal that is aggregated per client address rather than written as a row of its own: every
 * refusal that does not prove its credential exists (an unknown or made-up id, missing or malformed
 * credentials, a 429). An attacker can invent those without end, so each must not cost a transaction.
 */
export function isAggregatedRefusal(entry: LedgerEntry): boolean {
  if (entry.outcome !== 'refused') return false;
  return !(entry.credentialId && entry.reason !== undefined && PROVEN_CREDENTIAL_REASONS.has(entry.reason));
}

export interface RefusalAggregatorOptions {
  /** How long one aggregation window lasts (one row per address per window). */
  readonly windowMs: number;
  /** Most addresses tracked in one window; refusals from further ones go into one overflow row. */
  readonly maxAddresses: number;
  /**
   * The group an address is counted in, when not the address itself (the stored network of a truncated
   * address); undefined for an address that has none (it is counted on its own).
   */
  readonly groupOf?: ((address: string) => string | undefined) | undefined;
  /** Receives the aggregates of a window when it ends (or on {@link RefusalAggregator.flush}). */
  readonly emit: (aggregates: RefusalAggregate[]) => void;
}

/** Distinct credential ids are counted exactly up to this many per address and window, then reported as this. */
const MAX_DISTINCT_TRACKED = 100;
/** The address of the row standing for every address beyond `maxAddresses` in a window. */
export const OVERFLOW_ADDRESS = OVERFLOW_REFUSAL_ADDRESS;

interface OpenAggregate {
  readonly first: LedgerEntry;
  count: number;
  lastTime: Date;
  readonly credentials: Set<string>;
}

/**
 * Folds refusals into one aggregate per client address per window, in memory (at most `maxAddresses` + 1 of
 * them), and hands the window's aggregates to `emit` when it ends: the first refusal of a window starts its timer.
 * Memory and rows are bounded whatever a crowd sends; a process that dies loses its open window's counts
 * (refusals are recorded best-effort, docs/ledger.md#refusals).
 *
 * @example
 * const aggregator = new RefusalAggregator({ windowMs: 60_000, maxAddresses: 2_000, emit: (rows) => write(rows) });
 * aggregator.add(refusalEntry);
 */
export class RefusalAggregator {
  /** Counts of the open window, emitted and replaced whole when it ends: not a cache (nothing loaded, no LRU). */
  private window = new Map<string, OpenAggregate>();
  private timer: NodeJS.Timeout | undefined;
  private folded = 0;

  constructor(private readonly options: RefusalAggregatorOptions) {}

  /** Refusals folded into an aggregate so far. */
  get refusalsFolded(): number {
    return this.folded;
  }

  add(entry: LedgerEntry): void {
    this.folded += 1;
    let address = entry.clientIp === undefined ? '' : (this.options.groupOf?.(entry.clientIp) ?? entry.clientIp);
    let open = this.window.get(address);
    if (!open && this.window.size >= this.options.maxAddresses) {
      address = OVERFLOW_ADDRESS;
      open = this.window.get(address);
      entry = { ...entry, clientIp: OVERFLOW_ADDRESS };
    }
    if (!open) {
      open = { first: entry, count: 0, lastTime: entry.time, credentials: new Set() };
      this.window.set(address, open);
    }
    open.count += 1;
    if (entry.time.getTime() > open.lastTime.getTime()) open.lastTime = entry.time;
    if (entry.credentialId && open.credentials.size < MAX_DISTINCT_TRACKED) open.credentials.add(entry.credentialId);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.options.windowMs);
      this.timer.unref();
    }
  }

  /** Ends the current window now and emits its aggregates (graceful shutdown, tests). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.window.size === 0) return;
    const ended = this.window;
    this.window = new Map();
    this.options.emit(
      [...ended.values()].map((open) => ({
        first: open.first,
        count: open.count,
        lastTime: open.lastTime,
        distinctCredentials: open.credentials.size,
      })),
    );
  }
}
