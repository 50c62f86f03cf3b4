import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DependencyUnavailableError } from '../../shared/errors.js';
import type { LedgerEntry } from '../../shared/ledger/ledger.js';
import type { LedgerRow } from '../../shared/ledger/ledgerRows.js';
import type { LedgerTable } from '../../shared/ledger/ledgerTable.js';
import { TableLedger, type TableLedgerOptions } from '../../shared/ledger/tableLedger.js';
import { fakeClockTimeout } from '../support/fakeClockTimeout.js';

// The batching, failure and back-pressure rules, against an in-memory table whose behaviour each test chooses
// (an outage, a hang, a flaky first attempt). The same rules against a real Azurite: ledgerOnAzurite.test.ts.
// Time is the fake clock's (batch waits, operation timeouts, the warning interval): no test waits for real time,
// and each one says how much time passes.

const NOW = new Date('2026-03-01T09:30:00.000Z');

function entry(requestId: string, credentialId = 'acme'): LedgerEntry {
  return {
    time: NOW,
    flow: 'issueToken',
    outcome: 'issued',
    status: 200,
    requestId,
    credentialId,
    keySlot: 1,
    jti: `jti-${requestId}`,
  };
}

type Submit = (rows: readonly LedgerRow[], signal: AbortSignal, call: number) => Promise<void>;

function ledgerWith(submit: Submit, options: Partial<TableLedgerOptions> = {}) {
  const transactions: LedgerRow[][] = [];
  const warnings: string[] = [];
  const table: LedgerTable = {
    ensureExists: async () => {},
    submitTransaction: (rows, signal) => {
      transactions.push([...rows]);
      return submit(rows, signal, transactions.length);
    },
    readPartition: async () => [],
  };
  const ledger = new TableLedger({
    mode: 'required',
    openTable: async () => table,
    warn: (message) => warnings.push(message),
    timeoutSignal: fakeClockTimeout,
    ...options,
  });
  return { ledger, transactions, warnings };
}

const committed: Submit = async () => {};
const outage: Submit = async () => {
  throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:10002'), { code: 'ECONNREFUSED' });
};
/** A table that never answers and ignores cancellation (a black-holed network). */
const hang: Submit = () => new Promise<void>(() => {});

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

type Outcome =
  | { readonly state: 'pending' }
  | { readonly state: 'fulfilled' }
  | { readonly state: 'rejected'; readonly reason: unknown };

/** Follows `promise` so a test can ask, at any moment of fake time, whether it has settled and how. */
function watch(promise: Promise<unknown>): () => Outcome {
  let outcome: Outcome = { state: 'pending' };
  promise.then(
    () => (outcome = { state: 'fulfilled' }),
    (reason: unknown) => (outcome = { state: 'rejected', reason }),
  );
  return () => outcome;
}

/** Lets `ms` of fake time pass, running every timer due and the promise callbacks they start. */
async function pass(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

/** The default longest wait before a batch is sent (`maxBatchWaitMs`). */
const BATCH_WAIT_MS = 5;

describe('TableLedger group commit', () => {
  it('sends concurrent rows of one partition as transactions of at most 100, one partition each', async () => {
    const { ledger, transactions } = ledgerWith(committed);
    const ids = Array.from({ length: 250 }, (_, i) => `r${i}`);
    const all = watch(Promise.all(ids.map((id) => ledger.record(entry(id)))));
    await pass(BATCH_WAIT_MS);
    expect(all()).toEqual({ state: 'fulfilled' });

    expect(transactions.map((rows) => rows.length)).toEqual([100, 100, 50]);
    for (const rows of transactions) expect(new Set(rows.map((row) => row.partitionKey)).size).toBe(1);
    expect(
      transactions
        .flat()
        .map((row) => row.RequestId)
        .sort(),
    ).toEqual([...ids].sort());
    expect(ledger.stats).toMatchObject({ transactions: 3, rowsCommitted: 250, largestBatch: 100, rowsFailed: 0 });
  });

  it('sends a full batch at once and a partial one only after the batch wait', async () => {
    const { ledger, transactions } = ledgerWith(committed);
    const full = watch(Promise.all(Array.from({ length: 100 }, (_, i) => ledger.record(entry(`f${i}`)))));
    const partial = watch(ledger.record(entry('p0')));
    await pass(0);
    expect(full()).toEqual({ state: 'fulfilled' });
    expect(partial()).toEqual({ state: 'pending' });
    await pass(BATCH_WAIT_MS - 1);
    expect(partial()).toEqual({ state: 'pending' });
    await pass(1);
    expect(partial()).toEqual({ state: 'fulfilled' });
    expect(transactions.map((rows) => rows.length)).toEqual([100, 1]);
  });

  it('never mixes credentials in one transaction', async () => {
    const { ledger, transactions } = ledgerWith(committed);
    const all = watch(
      Promise.all(Array.from({ length: 60 }, (_, i) => ledger.record(entry(`r${i}`, `cred-${i % 3}`)))),
    );
    await pass(BATCH_WAIT_MS);
    expect(all()).toEqual({ state: 'fulfilled' });
    expect(transactions).toHaveLength(3);
    for (const rows of transactions) expect(new Set(rows.map((row) => row.CredentialId)).size).toBe(1);
  });

  it('resolves a caller only after the transaction holding its row has committed', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((done) => (release = done));
    const { ledger, transactions } = ledgerWith(() => gate);
    const recorded = watch(ledger.record(entry('r1')));
    await pass(BATCH_WAIT_MS);
    expect(transactions).toHaveLength(1); // sent, not yet committed
    expect(recorded()).toEqual({ state: 'pending' });
    release();
    await pass(0);
    expect(recorded()).toEqual({ state: 'fulfilled' });
  });

  it('rows arriving while a transaction of their credential is in flight go together in the next one', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((done) => (release = done));
    const { ledger, transactions } = ledgerWith((_rows, _signal, call) => (call === 1 ? gate : Promise.resolve()));
    const first = watch(ledger.record(entry('r0')));
    await pass(BATCH_WAIT_MS);
    expect(transactions.map((rows) => rows.length)).toEqual([1]);
    const later = watch(Promise.all(Array.from({ length: 30 }, (_, i) => ledger.record(entry(`r${i + 1}`)))));
    await pass(100); // far past the batch wait: they wait for the transaction in flight, not for a timer
    expect(transactions.map((rows) => rows.length)).toEqual([1]);
    expect(later()).toEqual({ state: 'pending' });
    release();
    await pass(0);
    expect(first()).toEqual({ state: 'fulfilled' });
    expect(later()).toEqual({ state: 'fulfilled' });
    expect(transactions.map((rows) => rows.length)).toEqual([1, 30]);
  });

  it("a stalled transaction holds its credential's next batch back no longer than stalledTransactionMs", async () => {
    const { ledger, transactions } = ledgerWith(
      (_rows, signal, call) => (call === 1 ? hang(_rows, signal, 0) : committed(_rows, signal, call)),
      {
        stalledTransactionMs: 250,
      },
    );
    void ledger.record(entry('stuck')).catch(() => {});
    await pass(BATCH_WAIT_MS);
    const next = watch(ledger.record(entry('next')));
    await pass(250 - 1); // 250 ms after the stuck transaction started
    expect(next()).toEqual({ state: 'pending' });
    await pass(1);
    expect(next()).toEqual({ state: 'fulfilled' });
    expect(transactions.map((rows) => rows.map((row) => row.RequestId))).toEqual([['stuck'], ['next']]);
  });

  it('one row the table refuses fails only its own caller: the other rows of the transaction are sent again', async () => {
    const { ledger, transactions } = ledgerWith(async (rows) => {
      const index = rows.findIndex((row) => row.RequestId === 'dup');
      if (index >= 0) {
        throw Object.assign(new Error(`${index}:The specified entity already exists.`), {
          statusCode: 409,
          code: 'EntityAlreadyExists',
        });
      }
    });
    const ids = ['a', 'b', 'dup', 'c'];
    const callers = ids.map((id) => watch(ledger.record(entry(id))));
    await pass(BATCH_WAIT_MS);
    expect(transactions.map((rows) => rows.map((row) => row.RequestId))).toEqual([ids, ['a', 'b', 'c']]);
    const outcomes = callers.map((caller) => caller());
    expect(outcomes.filter((outcome) => outcome.state === 'fulfilled')).toHaveLength(3);
    const refused = outcomes[2];
    expect(refused?.state === 'rejected' && refused.reason).toBeInstanceOf(DependencyUnavailableError);
    expect(ledger.stats).toMatchObject({ transactions: 1, rowsCommitted: 3, rowsFailed: 1, rowsAbandoned: 0 });
  });

  it('a refusal that is about the table, not a row, fails the whole batch as before', async () => {
    const { ledger, transactions } = ledgerWith(async () => {
      throw Object.assign(new Error('0:The table specified does not exist.'), {
        statusCode: 404,
        code: 'TableNotFound',
      });
    });
    const callers = ['a', 'b'].map((id) => watch(ledger.record(entry(id))));
    await pass(BATCH_WAIT_MS);
    expect(transactions.map((rows) => rows.length)).toEqual([2, 2]);
    expect(callers.every((caller) => caller().state === 'rejected')).toBe(true);
  });

  it('retries a failed batch once, with the same rows, and then acknowledges it', async () => {
    const { ledger, transactions } = ledgerWith(async (_rows, _signal, call) => {
      if (call === 1) throw new Error('socket hang up');
    });
    const both = watch(Promise.all([ledger.record(entry('a')), ledger.record(entry('b'))]));
    await pass(BATCH_WAIT_MS);
    expect(both()).toEqual({ state: 'fulfilled' });
    expect(transactions).toHaveLength(2);
    expect(transactions[1]).toEqual(transactions[0]);
    expect(ledger.stats).toMatchObject({ transactions: 1, transactionAttempts: 2, rowsCommitted: 2 });
  });
});

describe('TableLedger when the table is unavailable', () => {
  it('required: rejects every caller of the batch with a ledger DependencyUnavailableError after one retry', async () => {
    const { ledger, transactions, warnings } = ledgerWith(outage);
    const results = Promise.allSettled([ledger.record(entry('a')), ledger.record(entry('b'))]);
    await pass(BATCH_WAIT_MS);
    expect(transactions).toHaveLength(2);
    for (const result of await results) {
      expect(result.status).toBe('rejected');
      const error = (result as PromiseRejectedResult).reason as DependencyUnavailableError;
      expect(error).toBeInstanceOf(DependencyUnavailableError);
      expect(error.dependency).toBe('ledger');
      expect(error.retryAfterSeconds).toBe(5);
    }
    expect(warnings).toHaveLength(1);
    expect(ledger.stats).toMatchObject({ transactions: 0, rowsFailed: 2 });
  });

  it('best-effort: resolves anyway and warns once per interval, counting what it held back', async () => {
    const { ledger, warnings } = ledgerWith(outage, { mode: 'best-effort', warningIntervalMs: 60_000 });
    for (let i = 0; i < 3; i += 1) {
      const recorded = watch(ledger.record(entry(`r${i}`)));
      await pass(BATCH_WAIT_MS);
      expect(recorded()).toEqual({ state: 'fulfilled' });
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^ledger \(best-effort\): 1 ledger row\(s\) not committed: .*ECONNREFUSED/);

    await pass(60_000); // one interval later, the next failure is reported with the count of those held back
    const next = watch(ledger.record(entry('r3')));
    await pass(BATCH_WAIT_MS);
    expect(next()).toEqual({ state: 'fulfilled' });
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toMatch(/\(\+2 similar since the last warning\)$/);
  });

  it('bounds every table operation in time, even when the SDK ignores cancellation: two attempts, then a 503', async () => {
    const signals: AbortSignal[] = [];
    const { ledger } = ledgerWith(
      (_rows, signal) => {
        signals.push(signal);
        return hang(_rows, signal, 0);
      },
      { operationTimeoutMs: 100 },
    );
    const recorded = watch(ledger.record(entry('r1')));
    await pass(BATCH_WAIT_MS + 100 - 1);
    expect(signals).toHaveLength(1);
    expect(recorded()).toEqual({ state: 'pending' });
    await pass(1); // the first attempt's deadline: it is abandoned and retried
    expect(signals).toHaveLength(2);
    expect(signals[0]?.aborted).toBe(true);
    await pass(100 - 1);
    expect(recorded()).toEqual({ state: 'pending' });
    await pass(1); // the retry's deadline
    const outcome = recorded();
    expect(outcome.state).toBe('rejected');
    expect(outcome.state === 'rejected' && outcome.reason).toBeInstanceOf(DependencyUnavailableError);
    expect(signals.every((signal) => signal.aborted)).toBe(true);
  });

  it('on the real clock the table call gets an AbortSignal.timeout of the operation budget, and is aborted by it', async () => {
    vi.useRealTimers();
    const signals: AbortSignal[] = [];
    const table: LedgerTable = {
      ensureExists: async () => {},
      submitTransaction: (_rows, signal) => {
        signals.push(signal);
        return new Promise<void>(() => {}); // ignores its signal: the ledger must not wait for it anyway
      },
      readPartition: async () => [],
    };
    const ledger = new TableLedger({
      mode: 'required',
      openTable: async () => table,
      operationTimeoutMs: 20,
      warn: () => {},
    });
    await expect(ledger.record(entry('r1'))).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(signals).toHaveLength(2); // the attempt and its retry, each with its own budget
    for (const signal of signals) {
      expect(signal.aborted).toBe(true);
      expect((signal.reason as Error).name).toBe('TimeoutError');
    }
  });

  it('keeps memory bounded: beyond maxQueuedRows required refuses at once and best-effort drops', async () => {
    const required = ledgerWith(hang, { maxQueuedRows: 10, operationTimeoutMs: 300 });
    const waiting = Array.from({ length: 10 }, (_, i) => required.ledger.record(entry(`r${i}`, `c${i}`)));
    const settledWaiting = watch(
      Promise.allSettled(waiting).then((all) => expect(all.every((result) => result.status === 'rejected')).toBe(true)),
    );
    const refused = watch(required.ledger.record(entry('r10')));
    await pass(0); // no time passes: the refusal does not wait for the queue
    const refusal = refused();
    expect(refusal.state === 'rejected' && refusal.reason).toBeInstanceOf(DependencyUnavailableError);
    expect(refusal.state === 'rejected' && String(refusal.reason)).toMatch(/queue is full/);
    expect(required.ledger.stats.rowsRejected).toBe(1);
    await pass(BATCH_WAIT_MS + 2 * 300);
    expect(settledWaiting()).toEqual({ state: 'fulfilled' });

    const bestEffort = ledgerWith(hang, { mode: 'best-effort', maxQueuedRows: 10, operationTimeoutMs: 300 });
    const pending = watch(
      Promise.all(Array.from({ length: 10 }, (_, i) => bestEffort.ledger.record(entry(`r${i}`, `c${i}`)))),
    );
    const dropped = watch(bestEffort.ledger.record(entry('r10')));
    await pass(0);
    expect(dropped()).toEqual({ state: 'fulfilled' });
    expect(bestEffort.warnings.join('\n')).toMatch(/queue is full/);
    expect(pending()).toEqual({ state: 'pending' });
    await pass(BATCH_WAIT_MS + 2 * 300);
    expect(pending()).toEqual({ state: 'fulfilled' });
  });
});

describe('TableLedger.close', () => {
  it('sends waiting rows at once, resolves when they are committed, and turns later rows away', async () => {
    const { ledger, transactions } = ledgerWith(committed, { maxBatchWaitMs: 60_000 });
    const recorded = watch(ledger.record(entry('r1')));
    const closed = watch(ledger.close());
    await pass(0); // no time passes: close does not wait for the batch timer
    expect(closed()).toEqual({ state: 'fulfilled' });
    expect(recorded()).toEqual({ state: 'fulfilled' });
    expect(transactions).toHaveLength(1);
    await expect(ledger.record(entry('r2'))).rejects.toThrow(/closed/);
  });
});
