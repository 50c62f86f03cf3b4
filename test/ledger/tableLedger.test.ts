import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../../shared/errors.js';
import type { LedgerEntry } from '../../shared/ledger/ledger.js';
import type { LedgerRow } from '../../shared/ledger/ledgerRows.js';
import type { LedgerTable } from '../../shared/ledger/ledgerTable.js';
import { TableLedger, type TableLedgerOptions } from '../../shared/ledger/tableLedger.js';

// The batching, failure and back-pressure rules, against an in-memory table whose behaviour each test chooses
// (an outage, a hang, a flaky first attempt). The same rules against a real Azurite: ledgerOnAzurite.test.ts.

const NOW = new Date('2026-03-01T09:30:00.000Z');

function entry(requestId: string, credentialId = 'acme'): LedgerEntry {
  return { time: NOW, flow: 'issueToken', outcome: 'issued', status: 200, requestId, credentialId, keySlot: 1, jti: `jti-${requestId}` };
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

async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('TableLedger group commit', () => {
  it('sends concurrent rows of one partition as transactions of at most 100, one partition each', async () => {
    const { ledger, transactions } = ledgerWith(committed);
    const ids = Array.from({ length: 250 }, (_, i) => `r${i}`);
    await Promise.all(ids.map((id) => ledger.record(entry(id))));

    expect(transactions.map((rows) => rows.length)).toEqual([100, 100, 50]);
    for (const rows of transactions) expect(new Set(rows.map((row) => row.partitionKey)).size).toBe(1);
    expect(transactions.flat().map((row) => row.RequestId).sort()).toEqual([...ids].sort());
    expect(ledger.stats).toMatchObject({ transactions: 3, rowsCommitted: 250, largestBatch: 100, rowsFailed: 0 });
  });

  it('never mixes credentials in one transaction', async () => {
    const { ledger, transactions } = ledgerWith(committed);
    await Promise.all(Array.from({ length: 60 }, (_, i) => ledger.record(entry(`r${i}`, `cred-${i % 3}`))));
    expect(transactions).toHaveLength(3);
    for (const rows of transactions) expect(new Set(rows.map((row) => row.CredentialId)).size).toBe(1);
  });

  it('resolves a caller only after the transaction holding its row has committed', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((done) => (release = done));
    const { ledger } = ledgerWith(() => gate);
    let resolved = false;
    const recorded = ledger.record(entry('r1')).then(() => (resolved = true));
    await new Promise((done) => setTimeout(done, 50));
    expect(resolved).toBe(false);
    release();
    await settleWithin(recorded, 1_000);
    expect(resolved).toBe(true);
  });

  it('retries a failed batch once, with the same rows, and then acknowledges it', async () => {
    const { ledger, transactions } = ledgerWith(async (_rows, _signal, call) => {
      if (call === 1) throw new Error('socket hang up');
    });
    await Promise.all([ledger.record(entry('a')), ledger.record(entry('b'))]);
    expect(transactions).toHaveLength(2);
    expect(transactions[1]).toEqual(transactions[0]);
    expect(ledger.stats).toMatchObject({ transactions: 1, transactionAttempts: 2, rowsCommitted: 2 });
  });
});

describe('TableLedger when the table is unavailable', () => {
  it('required: rejects every caller of the batch with a ledger DependencyUnavailableError after one retry', async () => {
    const { ledger, transactions, warnings } = ledgerWith(outage);
    const results = await Promise.allSettled([ledger.record(entry('a')), ledger.record(entry('b'))]);
    expect(transactions).toHaveLength(2);
    for (const result of results) {
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
    for (let i = 0; i < 3; i += 1) await settleWithin(ledger.record(entry(`r${i}`)), 1_000);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^ledger \(best-effort\): 1 ledger row\(s\) not committed: .*ECONNREFUSED/);

    const later = ledgerWith(outage, { mode: 'best-effort', warningIntervalMs: 1 });
    await later.ledger.record(entry('x'));
    await new Promise((done) => setTimeout(done, 5));
    await later.ledger.record(entry('y'));
    expect(later.warnings).toHaveLength(2);
  });

  it('bounds every table operation in time, even when the SDK ignores cancellation', async () => {
    const signals: AbortSignal[] = [];
    const { ledger } = ledgerWith(
      (_rows, signal) => {
        signals.push(signal);
        return hang(_rows, signal, 0);
      },
      { operationTimeoutMs: 100 },
    );
    const started = Date.now();
    await expect(settleWithin(ledger.record(entry('r1')), 2_000)).rejects.toBeInstanceOf(DependencyUnavailableError);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(1_500);
    expect(signals).toHaveLength(2);
    expect(signals.every((signal) => signal.aborted)).toBe(true);
  });

  it('keeps memory bounded: beyond maxQueuedRows required refuses at once and best-effort drops', async () => {
    const required = ledgerWith(hang, { maxQueuedRows: 10, operationTimeoutMs: 300 });
    const waiting = Array.from({ length: 10 }, (_, i) => required.ledger.record(entry(`r${i}`, `c${i}`)));
    const refused = required.ledger.record(entry('r10'));
    await expect(settleWithin(refused, 100)).rejects.toThrow(/queue is full/);
    expect(required.ledger.stats.rowsRejected).toBe(1);
    const settled = await settleWithin(Promise.allSettled(waiting), 2_000);
    expect(settled.every((result) => result.status === 'rejected')).toBe(true);

    const bestEffort = ledgerWith(hang, { mode: 'best-effort', maxQueuedRows: 10, operationTimeoutMs: 300 });
    const pending = Array.from({ length: 10 }, (_, i) => bestEffort.ledger.record(entry(`r${i}`, `c${i}`)));
    await settleWithin(bestEffort.ledger.record(entry('r10')), 100);
    expect(bestEffort.warnings.join('\n')).toMatch(/queue is full/);
    await settleWithin(Promise.all(pending), 2_000);
  });
});

describe('TableLedger.close', () => {
  it('sends waiting rows at once, resolves when they are committed, and turns later rows away', async () => {
    const { ledger, transactions } = ledgerWith(committed, { maxBatchWaitMs: 60_000 });
    const recorded = ledger.record(entry('r1'));
    await settleWithin(ledger.close(), 1_000);
    await settleWithin(recorded, 100);
    expect(transactions).toHaveLength(1);
    await expect(ledger.record(entry('r2'))).rejects.toThrow(/closed/);
  });
});
