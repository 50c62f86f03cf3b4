import { DependencyUnavailableError } from '../errors.js';
import { describeError } from '../logging/redact.js';
import type { Ledger, LedgerEntry } from './ledger.js';
import { batchKeyOf, LEDGER_SHARDS, toLedgerRow, type LedgerRow } from './ledgerRows.js';
import type { AddressForm } from './ledgerAddress.js';
import type { LedgerTable } from './ledgerTable.js';

/** A table transaction holds at most 100 entities, all of one partition. */
export const MAX_TRANSACTION_ROWS = 100;

export interface TableLedgerOptions {
  /** `required`: `record` rejects unless the row committed; `best-effort`: `record` resolves anyway and warns. */
  readonly mode: 'required' | 'best-effort';
  /** Opens the table on first use (lazily, so the SDK loads only when a row is written). */
  readonly openTable: () => Promise<LedgerTable>;
  /** Longest wait for more rows before a batch is sent. Default 5 ms. */
  readonly maxBatchWaitMs?: number;
  /** Rows accepted but not yet committed or failed; beyond this `record` fails (required) or drops (best-effort). Default 10 000. */
  readonly maxQueuedRows?: number;
  /** Transactions in flight at once; further batches keep filling while they wait. Default 16. */
  readonly maxConcurrentTransactions?: number;
  /** Time budget of one table operation (open, create, transaction). Default 2 000 ms. */
  readonly operationTimeoutMs?: number;
  /** `Retry-After` of the 503 when a row cannot be committed. Default 5 s. */
  readonly retryAfterSeconds?: number;
  /** Where warnings go (never with a key or token in them). Default `console.warn`. */
  readonly warn?: (message: string) => void;
  /** At most one warning per this interval; the rest are counted into the next one. Default 60 000 ms. */
  readonly warningIntervalMs?: number;
  /** What rows keep of the client address (`STS_LEDGER_CLIENT_ADDRESS`); default the full address. */
  readonly addressForm?: AddressForm;
}

/** Counters for tests, the benchmark and health checks. */
export interface TableLedgerStats {
  /** Transactions that committed. */
  readonly transactions: number;
  /** Transactions sent, including failed ones and retries. */
  readonly transactionAttempts: number;
  readonly rowsCommitted: number;
  /** Rows whose batch failed twice (their callers got a 503 in `required` mode). */
  readonly rowsFailed: number;
  /** Rows refused at the door (queue full or ledger closed). */
  readonly rowsRejected: number;
  readonly largestBatch: number;
}

interface PendingRow {
  readonly entry: LedgerEntry;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

interface Batch {
  readonly key: string;
  readonly rows: PendingRow[];
  timer: NodeJS.Timeout | undefined;
  ready: boolean;
}

/**
 * The issuance ledger on Azure Table Storage, with group commit: concurrent `record` calls for the same
 * partition are sent as one entity-group transaction (up to 100 rows, after at most `maxBatchWaitMs`, or
 * sooner when full), and every caller's promise settles only when the transaction holding ITS row has
 * committed (or has failed twice). A failed batch is retried once with the same rows; rows are upserted under
 * deterministic keys, so a retry after an ambiguous timeout never duplicates a row. Nothing is acknowledged
 * before it is committed, so an acknowledged row is never lost.
 *
 * @example
 * const ledger = new TableLedger({ mode: 'required', openTable: () => openLedgerTable(config.ledger, credential) });
 * await ledger.record({ time, flow: 'issueToken', outcome: 'issued', status: 200, requestId, credentialId });
 * await ledger.close();
 */
export class TableLedger implements Ledger {
  private readonly mode: 'required' | 'best-effort';
  private readonly maxBatchWaitMs: number;
  private readonly maxQueuedRows: number;
  private readonly maxConcurrentTransactions: number;
  private readonly operationTimeoutMs: number;
  private readonly retryAfterSeconds: number;
  private readonly warnSink: (message: string) => void;
  private readonly warningIntervalMs: number;
  private readonly openTableOnce: () => Promise<LedgerTable>;
  private readonly addressForm: AddressForm | undefined;

  private readonly open = new Map<string, Batch>();
  private readonly ready: Batch[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private queued = 0;
  private closed = false;
  private nextShard = Math.floor(Math.random() * LEDGER_SHARDS);
  private tableExists: Promise<void> | undefined;
  private lastWarningAt = Number.NEGATIVE_INFINITY;
  private suppressedWarnings = 0;
  private counters = { transactions: 0, transactionAttempts: 0, rowsCommitted: 0, rowsFailed: 0, rowsRejected: 0, largestBatch: 0 };

  constructor(options: TableLedgerOptions) {
    this.mode = options.mode;
    this.maxBatchWaitMs = options.maxBatchWaitMs ?? 5;
    this.maxQueuedRows = options.maxQueuedRows ?? 10_000;
    this.maxConcurrentTransactions = options.maxConcurrentTransactions ?? 16;
    this.operationTimeoutMs = options.operationTimeoutMs ?? 2_000;
    this.retryAfterSeconds = options.retryAfterSeconds ?? 5;
    this.warnSink = options.warn ?? ((message) => console.warn(message));
    this.warningIntervalMs = options.warningIntervalMs ?? 60_000;
    this.addressForm = options.addressForm;
    let table: Promise<LedgerTable> | undefined;
    this.openTableOnce = () => {
      table ??= options.openTable().catch((error: unknown) => {
        table = undefined; // a failed open (bad settings, identity not ready) is retried by the next batch
        throw error;
      });
      return table;
    };
  }

  /** True while every transaction slot is taken or batches wait for one (retention removal pauses then). */
  isSaturated(): boolean {
    return this.inFlight.size >= this.maxConcurrentTransactions || this.ready.length > 0;
  }

  /** Snapshot of the counters. */
  get stats(): TableLedgerStats {
    return { ...this.counters };
  }

  /**
   * Records `entry`: resolves once its row is committed. In `required` mode rejects with
   * {@link DependencyUnavailableError} (`ledger`) when it cannot be (the caller must not issue); in
   * `best-effort` mode resolves anyway and warns.
   */
  record(entry: LedgerEntry): Promise<void> {
    if (this.closed) return this.turnAway('the ledger is closed');
    if (this.queued >= this.maxQueuedRows) return this.turnAway(`the ledger queue is full (${this.maxQueuedRows} rows waiting)`);
    if (Number.isNaN(entry.time.getTime())) return this.turnAway('the entry has no valid time');
    return new Promise<void>((resolve, reject) => {
      const key = batchKeyOf(entry);
      let batch = this.open.get(key);
      if (!batch) {
        batch = { key, rows: [], timer: undefined, ready: false };
        this.open.set(key, batch);
      }
      batch.rows.push({ entry, resolve, reject });
      this.queued += 1;
      if (batch.rows.length >= MAX_TRANSACTION_ROWS) {
        this.open.delete(key); // full: the next row for this key starts a new batch
        this.markReady(batch);
      } else if (batch.rows.length === 1) {
        const waiting = batch;
        batch.timer = setTimeout(() => this.markReady(waiting), this.maxBatchWaitMs);
      }
    });
  }

  /** Sends every waiting row now and resolves when all of them have settled; later `record` calls are turned away. */
  async close(): Promise<void> {
    this.closed = true;
    for (const batch of [...this.open.values()]) this.markReady(batch);
    this.open.clear();
    // Bounded: every in-flight transaction ends within two operation timeouts.
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
  }

  private markReady(batch: Batch): void {
    clearTimeout(batch.timer);
    if (batch.ready) return;
    batch.ready = true;
    this.ready.push(batch);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight.size < this.maxConcurrentTransactions) {
      const batch = this.ready.shift();
      if (!batch) return;
      // Sealed from here: rows for the same key arriving now go to a new batch.
      if (this.open.get(batch.key) === batch) this.open.delete(batch.key);
      const running = this.commit(batch).finally(() => {
        this.inFlight.delete(running);
        this.pump();
      });
      this.inFlight.add(running);
    }
  }

  private async commit(batch: Batch): Promise<void> {
    const shard = this.nextShard;
    this.nextShard = (this.nextShard + 1) % LEDGER_SHARDS;
    let entities: LedgerRow[];
    try {
      // The address key of keyed-hash, read (and cached) before any row is made: no key, no row.
      await this.addressForm?.prepare();
      // One row per key: a caller that records the same entry twice shares the first row's fate.
      const rows = new Map<string, LedgerRow>();
      for (const pending of batch.rows) {
        const row = toLedgerRow(pending.entry, shard, this.addressForm?.store);
        if (!rows.has(row.rowKey)) rows.set(row.rowKey, row);
      }
      entities = [...rows.values()];
    } catch (error) {
      this.counters.rowsFailed += batch.rows.length;
      this.settle(batch, error);
      return;
    }

    let lastError: unknown;
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      try {
        this.counters.transactionAttempts += 1;
        await this.withTimeout(async (signal) => {
          const table = await this.openTableOnce();
          await this.ensureTable(table, signal);
          await table.submitTransaction(entities, signal);
        });
        this.counters.transactions += 1;
        this.counters.rowsCommitted += entities.length;
        this.counters.largestBatch = Math.max(this.counters.largestBatch, entities.length);
        this.settle(batch, undefined);
        return;
      } catch (error) {
        lastError = error;
        if (isTableNotFound(error)) this.tableExists = undefined;
      }
    }
    this.counters.rowsFailed += batch.rows.length;
    this.settle(batch, lastError);
  }

  private settle(batch: Batch, error: unknown): void {
    this.queued -= batch.rows.length;
    if (error === undefined) {
      for (const pending of batch.rows) pending.resolve();
      return;
    }
    const reason = `${batch.rows.length} ledger row(s) not committed: ${describeError(error)}`;
    this.warn(reason);
    if (this.mode === 'best-effort') {
      for (const pending of batch.rows) pending.resolve();
      return;
    }
    const failure = new DependencyUnavailableError('ledger', this.retryAfterSeconds, reason, { cause: error });
    for (const pending of batch.rows) pending.reject(failure);
  }

  private turnAway(why: string): Promise<void> {
    this.counters.rowsRejected += 1;
    this.warn(`ledger row not recorded: ${why}`);
    if (this.mode === 'best-effort') return Promise.resolve();
    return Promise.reject(new DependencyUnavailableError('ledger', this.retryAfterSeconds, why));
  }

  /** The table is created once per process (locally; in Azure it exists from Bicep and this is a no-op 409). */
  private ensureTable(table: LedgerTable, signal: AbortSignal): Promise<void> {
    this.tableExists ??= table.ensureExists(signal).catch((error: unknown) => {
      this.tableExists = undefined;
      throw error;
    });
    return this.tableExists;
  }

  /** Runs `operation` with an abort signal, and stops waiting for it at the deadline even if it ignores the signal. */
  private async withTimeout(operation: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new Error(`ledger operation timed out after ${this.operationTimeoutMs} ms`);
        controller.abort(error);
        reject(error);
      }, this.operationTimeoutMs);
    });
    try {
      await Promise.race([operation(controller.signal), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private warn(message: string): void {
    const now = Date.now();
    if (now - this.lastWarningAt < this.warningIntervalMs) {
      this.suppressedWarnings += 1;
      return;
    }
    const suppressed = this.suppressedWarnings;
    this.lastWarningAt = now;
    this.suppressedWarnings = 0;
    this.warnSink(`ledger (${this.mode}): ${message}${suppressed > 0 ? ` (+${suppressed} similar since the last warning)` : ''}`);
  }
}

function isTableNotFound(error: unknown): boolean {
  const details = error as { statusCode?: unknown; code?: unknown };
  return details.statusCode === 404 || details.code === 'TableNotFound';
}
