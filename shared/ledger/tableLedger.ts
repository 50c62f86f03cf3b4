import { DependencyUnavailableError } from '../errors.js';
import { describeError } from '../logging/redact.js';
import type { Ledger, LedgerEntry } from './ledger.js';
import {
  abandonedRowOf,
  batchKeyOf,
  LEDGER_SHARDS,
  REFUSALS_SUBJECT,
  hourBucketOf,
  toLedgerRow,
  toRefusalAggregateRow,
  type LedgerRow,
  type RefusalAggregate,
} from './ledgerRows.js';
import type { AddressForm } from './ledgerAddress.js';
import type { LedgerTable, LedgerWrite } from './ledgerTable.js';
import { isAggregatedRefusal, RefusalAggregator } from './refusalAggregator.js';

/** A table transaction holds at most 100 entities, all of one partition. */
export const MAX_TRANSACTION_ROWS = 100;

/** Rows of one batch the table may refuse one by one before the batch fails as a whole (a systemic refusal). */
const MAX_ROWS_REFUSED = 3;

/** Default of {@link TableLedgerOptions.deadlineMs} (also `STS_LEDGER_DEADLINE_MS`). */
export const DEFAULT_LEDGER_DEADLINE_MS = 4_000;

export interface TableLedgerOptions {
  /** `required`: `record` rejects unless the row committed; `best-effort`: `record` resolves anyway and warns. */
  readonly mode: 'required' | 'best-effort';
  /** Opens the table on first use (lazily, so the SDK loads only when a row is written). */
  readonly openTable: () => Promise<LedgerTable>;
  /**
   * Longest wait for more rows before a batch may be sent, from its first row. Default 5 ms. Under load the wait
   * that matters is the group commit's: a batch is not sent while its key has a transaction in flight
   * (`maxTransactionsPerKey`), and keeps taking rows (up to 100) until it is.
   */
  readonly maxBatchWaitMs?: number;
  /**
   * Rows accepted but not yet committed or failed. When full, waiting refusal rows are dropped to make room for
   * an issuance; with none left to drop `record` of an issuance fails (required) or drops (best-effort).
   * Default 10 000.
   */
  readonly maxQueuedRows?: number;
  /** Issuance transactions in flight at once; further batches keep filling while they wait. Default 16. */
  readonly maxConcurrentTransactions?: number;
  /**
   * Transactions in flight at once for one batch key (one credential, outcome and hour): rows that arrive while
   * they are in flight join the key's next batch, which is sent when one of them ends (group commit), so batches
   * grow with the load and the table's latency instead of each 5 ms window paying a transaction. Default 1.
   */
  readonly maxTransactionsPerKey?: number;
  /**
   * A transaction in flight longer than this no longer holds its key's next batch back (one stuck connection must
   * not stall a credential's issuance until the deadline). Default 1 000 ms: a loaded table may take hundreds of
   * ms over a full transaction, and sending more transactions then would only shrink them.
   */
  readonly stalledTransactionMs?: number;
  /**
   * Transactions of background rows (refusals, upstream fetches, abandoned marks) in flight at once, on top of
   * the issuance ones: they never take a slot an issuance could use. Default 2.
   */
  readonly maxBackgroundTransactions?: number;
  /** Time budget of one table operation (open, create, transaction). Default 2 000 ms. */
  readonly operationTimeoutMs?: number;
  /**
   * The signal that keeps a table operation's time budget: `AbortSignal.timeout` unless given (tests give one
   * on their fake clock, which `AbortSignal.timeout` does not follow).
   */
  readonly timeoutSignal?: (timeoutMs: number) => AbortSignal;
  /**
   * How long an issuance row may take, from the moment it reaches the ledger, until its caller is answered:
   * committed in time, or (required) a 503, whatever is queued ahead of it. Default 4 000 ms.
   */
  readonly deadlineMs?: number;
  /** `Retry-After` of the 503 when a row cannot be committed. Default 5 s. */
  readonly retryAfterSeconds?: number;
  /** Where warnings go (never with a key or token in them). Default `console.warn`. */
  readonly warn?: (message: string) => void;
  /** At most one warning per this interval; the rest are counted into the next one. Default 60 000 ms. */
  readonly warningIntervalMs?: number;
  /** One aggregated refusal row per client address per this window. Default 60 000 ms. */
  readonly refusalWindowMs?: number;
  /**
   * Client addresses aggregated per window; further ones share one overflow row. Default 2 000: a window's rows
   * then take at most a fifth of the queue, and a crowd at most 21 transactions a window.
   */
  readonly maxRefusalAddresses?: number;
  /** Wait before an `abandoned` mark that failed to commit is sent again. Default 1 000 ms. */
  readonly markRetryMs?: number;
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
  /** Rows whose batch failed (their callers got a 503 in `required` mode); timed-out rows included. */
  readonly rowsFailed: number;
  /** Rows refused at the door (queue full or ledger closed). */
  readonly rowsRejected: number;
  readonly largestBatch: number;
  /** Issuance rows whose deadline passed before they committed (their callers were answered without waiting on). */
  readonly rowsTimedOut: number;
  /** Of those, rows that had been sent, so may have committed: each gets an `abandoned` mark. */
  readonly rowsAbandoned: number;
  /** `abandoned` marks committed. */
  readonly marksCommitted: number;
  /** `abandoned` marks not written because `maxQueuedRows` marks were already waiting (audit flags those rows late). */
  readonly marksGivenUp: number;
  /** Background rows (refusals first) dropped because the queue was full. */
  readonly backgroundDropped: number;
  /** Refusals folded into aggregated rows instead of a row each. */
  readonly refusalsAggregated: number;
}

type RowClass = 'issuance' | 'background';

/** An entry (with its `AnswerBy` when issued), an aggregate of refusals, or a finished row (an `abandoned` mark). */
type RowSource =
  | { readonly entry: LedgerEntry; readonly answerBy: Date | undefined }
  | { readonly aggregate: RefusalAggregate }
  | { readonly row: LedgerRow };

function rowOf(
  source: RowSource,
  shard: number,
  storeAddress: ((address: string) => string | undefined) | undefined,
): LedgerRow {
  if ('entry' in source) return toLedgerRow(source.entry, shard, storeAddress, source.answerBy);
  if ('aggregate' in source) return toRefusalAggregateRow(source.aggregate, shard, storeAddress);
  return source.row; // a mark: the row as it was sent, its address already in stored form
}

interface PendingRow {
  /** What the row is made from, once its batch's shard is chosen (data, not a closure: no garbage per row). */
  readonly source: RowSource;
  /** Refusal rows may be dropped to make room; issuance rows and marks never are. */
  readonly droppable: boolean;
  /** An `abandoned` mark: retried until it commits (or the ledger closes). */
  readonly mark: boolean;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  settled: boolean;
}

interface Batch {
  readonly key: string;
  readonly rowClass: RowClass;
  readonly write: LedgerWrite;
  /** Set for marks: the shard of the row they replace. */
  readonly shard: number | undefined;
  readonly rows: PendingRow[];
  /** Issuance batches: when their callers must have an answer (epoch ms), from the first row's arrival. */
  readonly deadlineAt: number;
  /** The same instant as a Date, shared by the batch's rows (`AnswerBy`). */
  readonly answerBy: Date;
  timer: NodeJS.Timeout | undefined;
  deadlineTimer: NodeJS.Timeout | undefined;
  state: 'filling' | 'ready' | 'sending' | 'done';
  /** The deadline answered its callers before a commit was known. */
  expired: boolean;
  /** Its rows no longer count as queued. */
  retired: boolean;
  /** Some attempt was sent: its rows may be in the table. */
  sent: boolean;
  /** The rows as sent, for their `abandoned` marks. */
  sentRows: LedgerRow[];
  /** Aborted when the deadline passes: cancels the attempt in flight and stops waiting for it. */
  readonly cancelled: AbortController;
}

/**
 * The issuance ledger on Azure Table Storage, with group commit and a deadline per request.
 *
 * - Concurrent `record` calls for the same partition go to the table as one entity-group transaction (up to 100
 *   rows, after at most `maxBatchWaitMs`), and each caller's promise settles when the transaction holding ITS row
 *   has committed, or at its deadline (`deadlineMs` after its row arrived), whichever is first: however many
 *   batches wait for a transaction slot, no issuance waits longer (required: a 503, best-effort: it goes on).
 * - Issuance rows have the transaction slots to themselves. Refusals, upstream rows and marks have their own
 *   `maxBackgroundTransactions`, wait behind every ready issuance, and refusal rows are the first dropped when
 *   the queue is full (counted, and warned about once per interval).
 * - Issued rows are inserted, never upserted. When a caller is answered 503 while its row's transaction may still
 *   commit (it was sent), an `abandoned` mark is upserted under the same keys: it replaces the row if that
 *   committed, and a late commit of the row (an insert) fails on it. Either way the table does not say `issued`
 *   for a token that never left.
 * - Refusals that do not prove their credential exists are folded per client address per window
 *   ({@link RefusalAggregator}) and written as one row each, up to 100 addresses per transaction.
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
  private readonly maxTransactionsPerKey: number;
  private readonly stalledTransactionMs: number;
  private readonly maxBackgroundTransactions: number;
  private readonly operationTimeoutMs: number;
  private readonly timeoutSignal: (timeoutMs: number) => AbortSignal;
  private readonly deadlineMs: number;
  private readonly retryAfterSeconds: number;
  private readonly markRetryMs: number;
  private readonly warnSink: (message: string) => void;
  private readonly warningIntervalMs: number;
  private readonly openTableOnce: () => Promise<LedgerTable>;
  private readonly refusals: RefusalAggregator;
  private readonly addressForm: AddressForm | undefined;

  private readonly open = new Map<string, Batch>();
  /** Batches ready to send, oldest first (a Set: an expired batch leaves it in O(1)). */
  private readonly readyIssuance = new Set<Batch>();
  private readonly readyBackground = new Set<Batch>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly markRetries = new Map<NodeJS.Timeout, Batch>();
  /** Per batch key: transactions in flight and when the last one started (group commit). */
  private readonly keysInFlight = new Map<string, { count: number; lastStartAt: number }>();
  private issuanceInFlight = 0;
  private backgroundInFlight = 0;
  /** Rows waiting, `abandoned` marks excepted (those count in `queuedMarks`, with the same bound of their own). */
  private queued = 0;
  private queuedMarks = 0;
  private closed = false;
  private nextShard = Math.floor(Math.random() * LEDGER_SHARDS);
  private tableExists: Promise<void> | undefined;
  private lastWarningAt = Number.NEGATIVE_INFINITY;
  private suppressedWarnings = 0;
  private lastDropWarningAt = Number.NEGATIVE_INFINITY;
  private dropsSinceWarning = 0;
  /** While {@link flushRefusals} runs: collects the commits of the aggregated rows it emits. */
  private collectAggregateWrites: Promise<void>[] | undefined;
  private counters = {
    transactions: 0,
    transactionAttempts: 0,
    rowsCommitted: 0,
    rowsFailed: 0,
    rowsRejected: 0,
    largestBatch: 0,
    rowsTimedOut: 0,
    rowsAbandoned: 0,
    marksCommitted: 0,
    marksGivenUp: 0,
    backgroundDropped: 0,
  };

  constructor(options: TableLedgerOptions) {
    this.mode = options.mode;
    this.maxBatchWaitMs = options.maxBatchWaitMs ?? 5;
    this.maxQueuedRows = options.maxQueuedRows ?? 10_000;
    this.maxConcurrentTransactions = options.maxConcurrentTransactions ?? 16;
    this.maxTransactionsPerKey = options.maxTransactionsPerKey ?? 1;
    this.stalledTransactionMs = options.stalledTransactionMs ?? 1_000;
    this.maxBackgroundTransactions = options.maxBackgroundTransactions ?? 2;
    this.operationTimeoutMs = options.operationTimeoutMs ?? 2_000;
    this.timeoutSignal = options.timeoutSignal ?? ((timeoutMs) => AbortSignal.timeout(timeoutMs));
    this.deadlineMs = options.deadlineMs ?? DEFAULT_LEDGER_DEADLINE_MS;
    this.retryAfterSeconds = options.retryAfterSeconds ?? 5;
    this.markRetryMs = options.markRetryMs ?? 1_000;
    this.warnSink = options.warn ?? ((message) => console.warn(message));
    this.warningIntervalMs = options.warningIntervalMs ?? 60_000;
    this.addressForm = options.addressForm;
    this.refusals = new RefusalAggregator({
      windowMs: options.refusalWindowMs ?? 60_000,
      maxAddresses: options.maxRefusalAddresses ?? 2_000,
      // Truncated addresses are aggregated per stored network: one row per /24 or /48, as the rows could say no more.
      groupOf: options.addressForm?.mode === 'truncated' ? options.addressForm.store : undefined,
      emit: (aggregates) => this.enqueueAggregates(aggregates),
    });
    let table: Promise<LedgerTable> | undefined;
    this.openTableOnce = () => {
      table ??= options.openTable().catch((error: unknown) => {
        table = undefined; // a failed open (bad settings, identity not ready) is retried by the next batch
        throw error;
      });
      return table;
    };
  }

  /** True while every issuance slot is taken or issuance batches wait for one (retention removal pauses then). */
  isSaturated(): boolean {
    return (
      this.issuanceInFlight >= this.maxConcurrentTransactions || this.firstSendable(this.readyIssuance) !== undefined
    );
  }

  /** Snapshot of the counters. */
  get stats(): TableLedgerStats {
    return { ...this.counters, refusalsAggregated: this.refusals.refusalsFolded };
  }

  /**
   * Records `entry`. An issuance resolves once its row is committed; in `required` mode it rejects with
   * {@link DependencyUnavailableError} (`ledger`) when it cannot be within its deadline (the caller must not
   * issue); in `best-effort` mode it resolves at the deadline anyway (the write goes on) and warns. A refusal
   * that names no proven credential is aggregated and resolves at once.
   */
  record(entry: LedgerEntry): Promise<void> {
    if (this.closed) return this.turnAway('the ledger is closed');
    if (Number.isNaN(entry.time.getTime())) return this.turnAway('the entry has no valid time');
    if (isAggregatedRefusal(entry)) {
      this.refusals.add(entry);
      return Promise.resolve();
    }
    const rowClass: RowClass = entry.outcome === 'issued' ? 'issuance' : 'background';
    const droppable = entry.outcome === 'refused';
    if (this.queued >= this.maxQueuedRows) {
      if (rowClass === 'background') {
        this.dropped(1);
        return Promise.resolve();
      }
      if (!this.dropOneBackgroundBatch()) {
        return this.turnAway(`the ledger queue is full (${this.maxQueuedRows} rows waiting)`);
      }
    }
    return new Promise<void>((resolve, reject) => {
      const key = `${rowClass}|${entry.outcome}|${batchKeyOf(entry)}`;
      const batch = this.batchFor(key, rowClass, rowClass === 'issuance' ? 'insert' : 'upsert', undefined);
      const answerBy = rowClass === 'issuance' ? batch.answerBy : undefined;
      this.add(batch, { source: { entry, answerBy }, droppable, mark: false, resolve, reject, settled: false });
    });
  }

  /**
   * Sends every waiting row now (the open refusal window included) and resolves when all of them have settled;
   * later `record` calls are turned away. `abandoned` marks that still fail are given up (and warned about).
   */
  async close(): Promise<void> {
    this.refusals.flush();
    this.closed = true;
    for (const [timer, batch] of this.markRetries) {
      clearTimeout(timer);
      this.markReady(batch);
    }
    this.markRetries.clear();
    for (const batch of [...this.open.values()]) this.markReady(batch);
    this.open.clear();
    // Bounded: every transaction ends within its operation timeout, and no retry is scheduled once closed.
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Ends the current refusal window now and resolves once its aggregated rows are written (or given up): for
   * tests and tools that read refusals right after causing them.
   */
  async flushRefusals(): Promise<void> {
    const writes: Promise<void>[] = [];
    this.collectAggregateWrites = writes;
    try {
      this.refusals.flush();
    } finally {
      this.collectAggregateWrites = undefined;
    }
    await Promise.all(writes);
  }

  private enqueueAggregates(aggregates: readonly RefusalAggregate[]): void {
    for (const aggregate of aggregates) {
      if (this.queued >= this.maxQueuedRows) {
        this.dropped(1);
        continue;
      }
      const key = `background|aggregate|${REFUSALS_SUBJECT}|${hourBucketOf(aggregate.first.time)}`;
      const batch = this.batchFor(key, 'background', 'upsert', undefined);
      const written = new Promise<void>((resolve) => {
        const reject = (): void => resolve();
        this.add(batch, { source: { aggregate }, droppable: true, mark: false, resolve, reject, settled: false });
      });
      this.collectAggregateWrites?.push(written);
    }
  }

  /** Queues the `abandoned` marks of rows that were sent and whose callers were answered 503. */
  private enqueueMarks(rows: readonly LedgerRow[]): void {
    this.counters.rowsAbandoned += rows.length;
    for (const row of rows) {
      // Marks have a bound of their own, so that marks left by a long outage never turn issuance away.
      if (this.queuedMarks >= this.maxQueuedRows) {
        this.counters.marksGivenUp += 1;
        this.warn(
          `abandoned mark given up (${this.maxQueuedRows} waiting): its row may say issued; audit flags it late`,
        );
        continue;
      }
      const batch = this.batchFor(`mark|${row.partitionKey}`, 'background', 'upsert', 0);
      const marked = abandonedRowOf(row);
      const ignore = (): void => {};
      this.add(batch, {
        source: { row: marked },
        droppable: false,
        mark: true,
        resolve: ignore,
        reject: ignore,
        settled: false,
      });
    }
  }

  private batchFor(key: string, rowClass: RowClass, write: LedgerWrite, shard: number | undefined): Batch {
    const existing = this.open.get(key);
    if (existing) return existing;
    const deadlineAt = Date.now() + this.deadlineMs;
    const batch: Batch = {
      key,
      rowClass,
      write,
      shard,
      rows: [],
      deadlineAt,
      answerBy: new Date(deadlineAt),
      timer: undefined,
      deadlineTimer: undefined,
      state: 'filling',
      expired: false,
      retired: false,
      sent: false,
      sentRows: [],
      cancelled: new AbortController(),
    };
    if (rowClass === 'issuance') batch.deadlineTimer = setTimeout(() => this.expire(batch), this.deadlineMs);
    this.open.set(key, batch);
    return batch;
  }

  private add(batch: Batch, pending: PendingRow): void {
    batch.rows.push(pending);
    if (pending.mark) this.queuedMarks += 1;
    else this.queued += 1;
    if (batch.rows.length >= MAX_TRANSACTION_ROWS) {
      // Full: the next row for this key starts a new batch (this one may still wait for its key's transaction).
      if (this.open.get(batch.key) === batch) this.open.delete(batch.key);
      this.markReady(batch);
    } else if (this.closed) {
      // Closing: no waiting for more rows (marks queued while closing must go out before close() returns).
      this.markReady(batch);
    } else if (batch.rows.length === 1) {
      batch.timer = setTimeout(() => this.markReady(batch), this.maxBatchWaitMs);
    }
  }

  /**
   * The batch may be sent. It stays open to more rows (up to 100) until it is actually started: while its key
   * has a transaction in flight, rows keep joining it (group commit).
   */
  private markReady(batch: Batch): void {
    clearTimeout(batch.timer);
    if (batch.state !== 'filling') return;
    batch.state = 'ready';
    (batch.rowClass === 'issuance' ? this.readyIssuance : this.readyBackground).add(batch);
    this.pump();
  }

  /**
   * Starts ready batches while slots are free: issuance first, background rows only in their own slots, and a
   * batch only when its key has no transaction in flight (or only a stalled one): group commit.
   */
  private pump(): void {
    while (this.issuanceInFlight < this.maxConcurrentTransactions) {
      const batch = this.firstSendable(this.readyIssuance);
      if (!batch) break;
      this.readyIssuance.delete(batch);
      this.issuanceInFlight += 1;
      this.start(batch, () => (this.issuanceInFlight -= 1));
    }
    // Background rows wait while an issuance batch waits for a slot, even with a background slot free.
    while (
      this.backgroundInFlight < this.maxBackgroundTransactions &&
      this.firstSendable(this.readyIssuance) === undefined
    ) {
      const batch = this.firstSendable(this.readyBackground);
      if (!batch) break;
      this.readyBackground.delete(batch);
      this.backgroundInFlight += 1;
      this.start(batch, () => (this.backgroundInFlight -= 1));
    }
  }

  /** The oldest batch of `ready` whose key may start a transaction now. */
  private firstSendable(ready: ReadonlySet<Batch>): Batch | undefined {
    const now = Date.now();
    for (const batch of ready) {
      const key = this.keysInFlight.get(batch.key);
      if (!key || key.count < this.maxTransactionsPerKey || now - key.lastStartAt >= this.stalledTransactionMs) {
        return batch;
      }
    }
    return undefined;
  }

  private start(batch: Batch, releaseSlot: () => void): void {
    batch.state = 'sending';
    // From now on later rows of this key start the next batch, which waits for this one (group commit).
    if (this.open.get(batch.key) === batch) this.open.delete(batch.key);
    const key = this.keysInFlight.get(batch.key) ?? { count: 0, lastStartAt: 0 };
    key.count += 1;
    key.lastStartAt = Date.now();
    this.keysInFlight.set(batch.key, key);
    // Should it stall, the key's next batch goes anyway once stalledTransactionMs has passed.
    const stalled = setTimeout(() => this.pump(), this.stalledTransactionMs);
    const running = this.commit(batch).finally(() => {
      clearTimeout(stalled);
      releaseSlot();
      key.count -= 1;
      if (key.count === 0 && this.keysInFlight.get(batch.key) === key) this.keysInFlight.delete(batch.key);
      this.inFlight.delete(running);
      this.pump();
    });
    this.inFlight.add(running);
  }

  /**
   * An issuance batch's deadline: its callers are answered now (required: 503). A batch not yet sent is dropped
   * (nothing of it reaches the table); one that was sent is cancelled and its rows get `abandoned` marks.
   */
  private expire(batch: Batch): void {
    const waiting = batch.rows.filter((pending) => !pending.settled);
    if (waiting.length === 0 || batch.state === 'done') return;
    this.counters.rowsTimedOut += waiting.length;
    if (this.mode === 'best-effort') {
      // The token leaves now; the row is still written behind it (and tells the truth: the token was issued).
      this.warn(`${waiting.length} ledger row(s) not committed within ${this.deadlineMs} ms; issuing anyway`);
      for (const pending of waiting) {
        pending.settled = true;
        pending.resolve();
      }
      return;
    }
    batch.expired = true;
    const error = new Error(`no commit within the ledger deadline of ${this.deadlineMs} ms`);
    this.fail(batch, waiting, error);
    if (batch.state !== 'sending') {
      // Never sent: nothing of it reaches the table.
      clearTimeout(batch.timer);
      if (this.open.get(batch.key) === batch) this.open.delete(batch.key);
      this.readyIssuance.delete(batch);
      batch.state = 'done';
      this.retire(batch);
      return;
    }
    // Sent: its transaction may commit even now. Mark its rows, and stop waiting for it.
    if (batch.sent) this.enqueueMarks(batch.sentRows);
    batch.cancelled.abort(error);
  }

  /** The batch leaves the queue (committed, failed, dropped or expired unsent). */
  private retire(batch: Batch): void {
    if (batch.retired) return;
    batch.retired = true;
    for (const pending of batch.rows) {
      if (pending.mark) this.queuedMarks -= 1;
      else this.queued -= 1;
    }
  }

  /** Settles `rows` of `batch` as not committed (required: 503; best-effort: resolved). */
  private fail(batch: Batch, rows: readonly PendingRow[], error: unknown): void {
    this.counters.rowsFailed += rows.length;
    const reason = `${rows.length} ledger row(s) not committed: ${describeError(error)}`;
    this.warn(reason);
    const failure = new DependencyUnavailableError('ledger', this.retryAfterSeconds, reason, { cause: error });
    for (const pending of rows) {
      pending.settled = true;
      if (this.mode === 'best-effort' || batch.rowClass === 'background') pending.resolve();
      else pending.reject(failure);
    }
  }

  private async commit(batch: Batch): Promise<void> {
    const shard = batch.shard ?? this.nextShard;
    if (batch.shard === undefined) this.nextShard = (this.nextShard + 1) % LEDGER_SHARDS;
    let entities: LedgerRow[];
    /** The callers of each row (a caller that records the same entry twice shares the first row's fate). */
    const callersOf = new Map<string, PendingRow[]>();
    try {
      // The address key of keyed-hash, read (and cached) before any row is made: no key, no row.
      await this.addressForm?.prepare();
      const rows = new Map<string, LedgerRow>();
      for (const pending of batch.rows) {
        const row = rowOf(pending.source, shard, this.addressForm?.store);
        if (!rows.has(row.rowKey)) rows.set(row.rowKey, row);
        const callers = callersOf.get(row.rowKey);
        if (callers) callers.push(pending);
        else callersOf.set(row.rowKey, [pending]);
      }
      entities = [...rows.values()];
    } catch (error) {
      this.finish(batch, error);
      return;
    }

    let lastError: unknown;
    let rowsRefused = 0;
    // Two attempts; a row the table refused on its own (below) is taken out and the rest sent again at once.
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      if (batch.expired) break;
      // Required: an attempt never outlives the callers' deadline (best-effort callers do not wait on it).
      const bounded = batch.rowClass === 'issuance' && this.mode === 'required';
      const budget = Math.min(this.operationTimeoutMs, bounded ? batch.deadlineAt - Date.now() : Infinity);
      if (budget <= 0) break;
      try {
        this.counters.transactionAttempts += 1;
        await this.bounded(budget, batch.cancelled.signal, async (signal) => {
          const table = await this.openTableOnce();
          await this.ensureTable(table, signal);
          // Cancelled while the table was being opened: nothing was sent, so nothing may be marked or committed.
          if (signal.aborted) throw cancellationOf(signal);
          // The first attempt's rows: later ones only ever leave rows out, so these are every row that may commit.
          if (!batch.sent) batch.sentRows = entities;
          batch.sent = true;
          await table.submitTransaction(entities, signal, batch.write);
        });
        this.committed(batch, entities);
        return;
      } catch (error) {
        lastError = error;
        if (isTableNotFound(error)) this.tableExists = undefined;
        // An insert retried after an attempt whose outcome was unknown: that attempt may have committed.
        if (attempt > 1 && isEntityExists(error) && !batch.expired && (await this.committedEarlier(batch, entities))) {
          this.committed(batch, entities);
          return;
        }
        // One row the table refused (a 4xx naming it) fails the whole transaction, so none of it committed: only
        // that row's callers are failed (required: 503), and the other rows go again, not counted as a retry.
        // (A 409 after an ambiguous attempt is not this case: that attempt may have written the row.)
        const refused = refusedRowOf(error, entities, attempt === 1);
        if (refused && !batch.expired && (rowsRefused += 1) <= MAX_ROWS_REFUSED) {
          entities = entities.filter((row) => row !== refused);
          batch.sentRows = batch.sentRows.filter((row) => row !== refused);
          this.fail(batch, callersOf.get(refused.rowKey) ?? [], error);
          if (entities.length === 0) break;
          attempt -= 1;
        }
      }
    }
    this.finish(batch, lastError ?? new Error('deadline passed before the transaction could be sent'));
  }

  private committed(batch: Batch, entities: readonly LedgerRow[]): void {
    this.counters.transactions += 1;
    this.counters.rowsCommitted += entities.length;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, entities.length);
    clearTimeout(batch.deadlineTimer);
    batch.state = 'done';
    this.retire(batch);
    for (const pending of batch.rows) {
      if (pending.mark) this.counters.marksCommitted += 1;
      if (pending.settled) continue; // answered at the deadline: its mark is queued
      pending.settled = true;
      pending.resolve();
    }
  }

  /** The end of a batch whose attempts all failed (or whose deadline passed). */
  private finish(batch: Batch, error: unknown): void {
    clearTimeout(batch.deadlineTimer);
    batch.state = 'done';
    this.retire(batch);
    const waiting = batch.rows.filter((pending) => !pending.settled);
    if (batch.rowClass === 'issuance') {
      if (waiting.length === 0) return; // the deadline answered them (and queued the marks)
      this.fail(batch, waiting, error);
      // Callers answered 503 while their rows may have committed (an attempt was sent): mark those rows.
      if (this.mode === 'required' && batch.sent) this.enqueueMarks(batch.sentRows);
      return;
    }
    const marks = waiting.filter((pending) => pending.mark);
    const others = waiting.filter((pending) => !pending.mark);
    if (others.length > 0) this.fail(batch, others, error);
    if (marks.length === 0) return;
    if (this.closed) {
      this.fail(batch, marks, error);
      return;
    }
    // A mark is what keeps a row from saying `issued` for a 503: it is sent again until it commits.
    this.warn(`${marks.length} abandoned mark(s) not committed yet (retrying): ${describeError(error)}`);
    const retry = this.batchFor(`retry|${batch.key}|${Date.now()}|${Math.random()}`, 'background', 'upsert', 0);
    this.open.delete(retry.key);
    retry.rows.push(...marks);
    this.queuedMarks += marks.length;
    const timer = setTimeout(() => {
      this.markRetries.delete(timer);
      this.markReady(retry);
    }, this.markRetryMs);
    this.markRetries.set(timer, retry);
  }

  /** After an ambiguous first attempt and a 409 on the retry: are the rows in the table, as `issued`? */
  private async committedEarlier(batch: Batch, entities: readonly LedgerRow[]): Promise<boolean> {
    const budget = Math.min(this.operationTimeoutMs, batch.deadlineAt - Date.now());
    if (budget <= 0 || entities.length === 0) return false;
    const keys = entities.map((row) => row.rowKey).sort();
    let found: Record<string, unknown>[] = [];
    try {
      await this.bounded(budget, undefined, async (signal) => {
        const table = await this.openTableOnce();
        found = await table.readPartition(
          {
            partitionKey: entities[0]?.partitionKey ?? '',
            rowKeyFrom: keys[0] ?? '',
            rowKeyTo: keys[keys.length - 1] ?? '',
            limit: 1_000,
          },
          signal,
        );
      });
    } catch {
      return false;
    }
    const issued = new Set(
      found.filter((entity) => entity.Outcome === 'issued').map((entity) => String(entity.rowKey)),
    );
    return entities.every((row) => issued.has(row.rowKey));
  }

  /** Drops the oldest waiting batch of refusal rows (not yet sent) to make room; false when there is none. */
  private dropOneBackgroundBatch(): boolean {
    const candidates = new Set([...this.readyBackground, ...this.open.values()]);
    const victim = [...candidates].find(
      (batch) => batch.rowClass === 'background' && batch.state !== 'sending' && batch.rows.every((p) => p.droppable),
    );
    if (!victim) return false;
    clearTimeout(victim.timer);
    this.readyBackground.delete(victim);
    if (this.open.get(victim.key) === victim) this.open.delete(victim.key);
    victim.state = 'done';
    this.retire(victim);
    for (const pending of victim.rows) {
      pending.settled = true;
      pending.resolve();
    }
    this.dropped(victim.rows.length);
    return true;
  }

  /** Counts dropped background rows; warns on the first drop of each interval, with the count since the last. */
  private dropped(rows: number): void {
    this.counters.backgroundDropped += rows;
    this.dropsSinceWarning += rows;
    const now = Date.now();
    if (now - this.lastDropWarningAt < this.warningIntervalMs) return;
    this.lastDropWarningAt = now;
    this.warnSink(
      `ledger (${this.mode}): queue full (${this.maxQueuedRows} rows): ` +
        `dropped ${this.dropsSinceWarning} refusal/background row(s) ` +
        `(${this.counters.backgroundDropped} in all); issuance rows keep their place`,
    );
    this.dropsSinceWarning = 0;
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

  /**
   * Runs `operation` under one signal: its time budget (`AbortSignal.timeout(timeoutMs)`) joined with `cancelled`
   * (the batch's deadline) by `AbortSignal.any`. The operation passes the signal to its table call, which aborts
   * its request; and the returned promise settles as soon as the signal aborts, even when the operation ignores
   * it (a black-holed socket), so no caller waits past either bound.
   */
  private bounded(
    timeoutMs: number,
    cancelled: AbortSignal | undefined,
    operation: (signal: AbortSignal) => Promise<void>,
  ): Promise<void> {
    const timeout = this.timeoutSignal(timeoutMs);
    const signal = cancelled ? AbortSignal.any([timeout, cancelled]) : timeout;
    return new Promise<void>((resolve, reject) => {
      const stop = (): void =>
        reject(
          timeout.aborted
            ? new Error(`ledger operation timed out after ${Math.round(timeoutMs)} ms`)
            : cancellationOf(signal),
        );
      if (signal.aborted) {
        stop();
        return;
      }
      signal.addEventListener('abort', stop, { once: true });
      operation(signal)
        .then(resolve, reject)
        .finally(() => signal.removeEventListener('abort', stop));
    });
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
    const more = suppressed > 0 ? ` (+${suppressed} similar since the last warning)` : '';
    this.warnSink(`ledger (${this.mode}): ${message}${more}`);
  }
}

function cancellationOf(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('ledger operation cancelled');
}

/**
 * The row a failed transaction names as the one the table refused: a 400 or 413 (the row's content) or a 409
 * (its key exists), whose message starts with the row's index; never a status about the table or the request
 * (403, 404, 408, 429, 5xx). A 409 counts only when `firstAttempt`: after an attempt of unknown outcome the
 * existing row may be this batch's own.
 */
function refusedRowOf(error: unknown, rows: readonly LedgerRow[], firstAttempt: boolean): LedgerRow | undefined {
  const details = error as { statusCode?: unknown; message?: unknown };
  const status = typeof details.statusCode === 'number' ? details.statusCode : 0;
  if (status !== 400 && status !== 413 && !(status === 409 && firstAttempt)) return undefined;
  const index = /^(\d{1,3}):/.exec(typeof details.message === 'string' ? details.message : '')?.[1];
  return index === undefined || rows.length < 2 ? undefined : rows[Number(index)];
}

function isTableNotFound(error: unknown): boolean {
  const details = error as { statusCode?: unknown; code?: unknown };
  return details.statusCode === 404 || details.code === 'TableNotFound';
}

function isEntityExists(error: unknown): boolean {
  const details = error as { statusCode?: unknown; code?: unknown };
  return details.statusCode === 409 || details.code === 'EntityAlreadyExists';
}
