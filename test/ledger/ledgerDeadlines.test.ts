import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DependencyUnavailableError } from '../../shared/errors.js';
import type { LedgerEntry } from '../../shared/ledger/ledger.js';
import type { LedgerRow } from '../../shared/ledger/ledgerRows.js';
import type { LedgerTable, LedgerWrite } from '../../shared/ledger/ledgerTable.js';
import { TableLedger, type TableLedgerOptions } from '../../shared/ledger/tableLedger.js';
import { fakeClockTimeout } from '../support/fakeClockTimeout.js';

// The ledger's deadlines, priorities and truthful rows, against an in-memory table with the service's write
// semantics (insert fails on an existing row, upsert replaces it, a transaction is all or nothing) and a gate per
// transaction that a test opens when it chooses: a frozen table that later applies what it received, like a
// stopped Azurite that is resumed. Time is the fake clock's: no test waits for real time.

const NOW = new Date('2026-03-01T09:30:00.000Z');
const DEADLINE_MS = 1_000;

function issued(requestId: string, credentialId = 'acme'): LedgerEntry {
  return {
    time: NOW,
    flow: 'mixedRealityToken',
    outcome: 'issued',
    status: 200,
    requestId,
    credentialId,
    keySlot: 1,
    jti: `jti-${requestId}`,
  };
}

/** A refusal that proves its credential exists: a row of its own, under the credential. */
function wrongKey(requestId: string, credentialId: string): LedgerEntry {
  return {
    time: NOW,
    flow: 'mixedRealityToken',
    outcome: 'refused',
    status: 401,
    requestId,
    credentialId,
    reason: 'wrong_key',
    clientIp: '198.51.100.1',
  };
}

/** A refusal of a made-up account id from `clientIp`: aggregated per address. */
function unknownId(requestId: string, clientIp: string): LedgerEntry {
  return {
    time: NOW,
    flow: 'mixedRealityToken',
    outcome: 'refused',
    status: 401,
    requestId,
    credentialId: `made-up-${requestId}`,
    reason: 'unknown_credential',
    clientIp,
  };
}

interface Sent {
  readonly rows: readonly LedgerRow[];
  readonly write: LedgerWrite;
  /** Applies the transaction to the store now (what a resumed table does), then settles the call. */
  apply(): void;
  /** Settles the call without applying (the answer is lost, or never comes). */
  readonly outcome: 'pending' | 'applied';
}

/** The table service's semantics in memory, with every transaction held until the test (or `autoApply`) applies it. */
function memoryTable(autoApply: (rows: readonly LedgerRow[], write: LedgerWrite) => boolean) {
  const store = new Map<string, Record<string, unknown>>();
  const sent: Sent[] = [];
  const keyOf = (row: { partitionKey: string; rowKey: string }): string => `${row.partitionKey}\u0000${row.rowKey}`;
  const table: LedgerTable = {
    ensureExists: async () => {},
    submitTransaction: (rows, _signal, write = 'upsert') =>
      // The signal is ignored on purpose: a frozen table does not hear the client give up.
      new Promise<void>((resolve, reject) => {
        const call = {
          rows: [...rows],
          write,
          outcome: 'pending' as 'pending' | 'applied',
          apply() {
            if (call.outcome !== 'pending') return;
            call.outcome = 'applied';
            if (write === 'insert' && rows.some((row) => store.has(keyOf(row)))) {
              reject(
                Object.assign(new Error('The specified entity already exists.'), {
                  statusCode: 409,
                  code: 'EntityAlreadyExists',
                }),
              );
              return;
            }
            for (const row of rows) store.set(keyOf(row), { ...row });
            resolve();
          },
        };
        sent.push(call);
        if (autoApply(rows, write)) call.apply();
      }),
    readPartition: async (query) =>
      [...store.values()].filter(
        (entity) =>
          entity.partitionKey === query.partitionKey &&
          String(entity.rowKey) >= query.rowKeyFrom &&
          String(entity.rowKey) <= query.rowKeyTo,
      ),
  };
  return { table, store, sent };
}

function ledgerOn(table: LedgerTable, options: Partial<TableLedgerOptions> = {}) {
  const warnings: string[] = [];
  const ledger = new TableLedger({
    mode: 'required',
    openTable: async () => table,
    warn: (message) => warnings.push(message),
    timeoutSignal: fakeClockTimeout,
    deadlineMs: DEADLINE_MS,
    operationTimeoutMs: 2_000,
    ...options,
  });
  return { ledger, warnings };
}

type Outcome =
  | { readonly state: 'pending' }
  | { readonly state: 'fulfilled' }
  | { readonly state: 'rejected'; readonly reason: unknown };

function watch(promise: Promise<unknown>): () => Outcome {
  let outcome: Outcome = { state: 'pending' };
  promise.then(
    () => (outcome = { state: 'fulfilled' }),
    (reason: unknown) => (outcome = { state: 'rejected', reason }),
  );
  return () => outcome;
}

async function pass(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

function rejectedWithLedger503(outcome: Outcome): boolean {
  return (
    outcome.state === 'rejected' &&
    outcome.reason instanceof DependencyUnavailableError &&
    outcome.reason.dependency === 'ledger'
  );
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('every issuance has a deadline from its arrival', () => {
  it('answers every caller by its deadline, however many batches wait for the slots of a frozen table', async () => {
    const { table, sent } = memoryTable(() => false);
    const { ledger } = ledgerOn(table, { maxConcurrentTransactions: 2 });
    // 60 credentials: 60 batches for 2 slots. Before, a batch's 2 s budget started only when it got a slot.
    const callers = Array.from({ length: 60 }, (_, i) => watch(ledger.record(issued(`r${i}`, `cred-${i}`))));
    await pass(DEADLINE_MS - 1);
    expect(callers.every((caller) => caller().state === 'pending')).toBe(true);
    await pass(1);
    expect(callers.every((caller) => rejectedWithLedger503(caller()))).toBe(true);
    // Batches still waiting for a slot at their deadline are never sent: only the two in flight were.
    expect(sent).toHaveLength(2);
    expect(ledger.stats).toMatchObject({ rowsFailed: 60, rowsAbandoned: 2 });
  });

  it('a caller arriving later gets its own full deadline, not the remainder of an earlier one', async () => {
    const { table } = memoryTable(() => false);
    const { ledger } = ledgerOn(table);
    const early = watch(ledger.record(issued('early')));
    await pass(600);
    const late = watch(ledger.record(issued('late', 'other')));
    await pass(DEADLINE_MS - 600);
    expect(rejectedWithLedger503(early())).toBe(true);
    expect(late().state).toBe('pending');
    await pass(600);
    expect(rejectedWithLedger503(late())).toBe(true);
  });

  it('best-effort: the caller goes on at the deadline and its row is still written, as issued', async () => {
    const { table, store, sent } = memoryTable(() => false);
    const { ledger } = ledgerOn(table, { mode: 'best-effort' });
    const caller = watch(ledger.record(issued('r1')));
    await pass(DEADLINE_MS);
    expect(caller()).toEqual({ state: 'fulfilled' });
    sent[0]?.apply();
    await pass(0);
    expect([...store.values()].map((row) => row.Outcome)).toEqual(['issued']);
    expect(ledger.stats.rowsAbandoned).toBe(0);
  });
});

describe('refusal rows wait behind issuance', () => {
  it('never take an issuance slot: with refusals hanging in their own slot, every issuance commits at once', async () => {
    const { table, sent } = memoryTable((rows) => rows.every((row) => row.Outcome === 'issued'));
    const { ledger } = ledgerOn(table, { maxConcurrentTransactions: 2, maxBackgroundTransactions: 1 });
    const refusals = Array.from({ length: 30 }, (_, i) => ledger.record(wrongKey(`w${i}`, `real-${i}`)));
    void Promise.allSettled(refusals);
    await pass(5);
    const tokens = watch(
      Promise.all(Array.from({ length: 10 }, (_, i) => ledger.record(issued(`t${i}`, `cred-${i}`)))),
    );
    await pass(5);
    expect(tokens()).toEqual({ state: 'fulfilled' });
    // One refusal transaction in flight (its own slot), the other 29 still waiting: none took an issuance slot.
    expect(sent.filter((call) => call.rows.some((row) => row.Outcome === 'refused'))).toHaveLength(1);
    expect(sent.filter((call) => call.rows.some((row) => row.Outcome === 'issued'))).toHaveLength(10);
  });

  it('a full queue drops waiting refusal rows to make room for issuance, counts them and warns once', async () => {
    const { table } = memoryTable((rows) => rows.every((row) => row.Outcome === 'issued'));
    const { ledger, warnings } = ledgerOn(table, { maxQueuedRows: 10, maxBackgroundTransactions: 1 });
    for (let i = 0; i < 10; i += 1) void ledger.record(wrongKey(`w${i}`, `real-${i}`));
    await pass(5);
    const tokens = watch(Promise.all(Array.from({ length: 5 }, (_, i) => ledger.record(issued(`t${i}`, `cred-${i}`)))));
    for (let i = 10; i < 15; i += 1) void ledger.record(wrongKey(`w${i}`, `real-${i}`));
    await pass(5);
    expect(tokens()).toEqual({ state: 'fulfilled' });
    // 5 waiting refusal rows made room for the 5 issuances, 5 more found the queue full.
    expect(ledger.stats.backgroundDropped).toBe(10);
    expect(warnings.filter((line) => line.includes('queue full'))).toHaveLength(1);
  });
});

describe('rows tell the truth', () => {
  it('a row the frozen table applies after its caller was answered 503 ends up abandoned, not issued', async () => {
    const { table, store, sent } = memoryTable((_rows, write) => write === 'upsert');
    const { ledger } = ledgerOn(table);
    const caller = watch(ledger.record(issued('r1')));
    await pass(DEADLINE_MS);
    expect(rejectedWithLedger503(caller())).toBe(true);
    // The mark was upserted at once; the table now applies the original insert it had been holding.
    await pass(5);
    sent.find((call) => call.write === 'insert')?.apply();
    await pass(0);
    const rows = [...store.values()];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ Outcome: 'abandoned', Status: 503, Reason: 'ledger_deadline', Jti: 'jti-r1' });
  });

  it('the same when the original commits before the mark arrives: the mark replaces it', async () => {
    const { table, store, sent } = memoryTable(() => false);
    const { ledger } = ledgerOn(table);
    const caller = watch(ledger.record(issued('r1')));
    await pass(DEADLINE_MS);
    expect(rejectedWithLedger503(caller())).toBe(true);
    sent[0]?.apply(); // the original, late
    await pass(5);
    expect([...store.values()][0]).toMatchObject({ Outcome: 'issued' });
    sent[1]?.apply(); // then its mark
    await pass(0);
    expect([...store.values()]).toEqual([expect.objectContaining({ Outcome: 'abandoned', Status: 503 })]);
    expect(ledger.stats.marksCommitted).toBe(1);
  });

  it('a mark that fails is sent again until it commits', async () => {
    let marksRefused = 2;
    const { table, store, sent } = memoryTable((_rows, write) => write === 'upsert' && marksRefused-- <= 0);
    const { ledger } = ledgerOn(table, { markRetryMs: 1_000, operationTimeoutMs: 500 });
    const caller = watch(ledger.record(issued('r1')));
    await pass(DEADLINE_MS);
    expect(rejectedWithLedger503(caller())).toBe(true);
    sent[0]?.apply();
    await pass(10_000);
    expect([...store.values()]).toEqual([expect.objectContaining({ Outcome: 'abandoned' })]);
  });

  it('marks left by a long outage have a bound of their own: they never turn an issuance away', async () => {
    // Issued rows hang in the frozen table; every mark fails (the table is down for them too).
    const { table } = memoryTable(() => false);
    const failing: LedgerTable = {
      ...table,
      submitTransaction: (rows, signal, write) =>
        write === 'upsert'
          ? Promise.reject(new Error('connect ECONNREFUSED'))
          : table.submitTransaction(rows, signal, write),
    };
    const { ledger } = ledgerOn(failing, { maxQueuedRows: 5, markRetryMs: 60_000 });
    const first = Array.from({ length: 5 }, (_, i) => watch(ledger.record(issued(`a${i}`, `cred-${i}`))));
    await pass(DEADLINE_MS + 10);
    expect(first.every((caller) => rejectedWithLedger503(caller()))).toBe(true);
    // Five marks wait for their retry; the queue still takes five new issuances, which are not turned away.
    const second = Array.from({ length: 5 }, (_, i) => watch(ledger.record(issued(`b${i}`, `cred-${i}`))));
    await pass(1);
    expect(second.every((caller) => caller().state === 'pending')).toBe(true);
    await pass(DEADLINE_MS);
    for (const caller of second) {
      const outcome = caller();
      expect(rejectedWithLedger503(outcome)).toBe(true);
      expect(String((outcome as { reason: Error }).reason.message)).not.toContain('queue is full');
    }
    // Their marks found five already waiting: given up, counted (audit flags such rows as late commits).
    expect(ledger.stats).toMatchObject({ rowsAbandoned: 10, marksGivenUp: 5, rowsRejected: 0 });
  });

  it('close() writes the marks of rows that were in flight when the ledger was closed', async () => {
    const { table, store, sent } = memoryTable((_rows, write) => write === 'upsert');
    const { ledger } = ledgerOn(table, { operationTimeoutMs: 500 });
    const caller = watch(ledger.record(issued('r1')));
    await pass(5);
    // What close() had written by the time it resolved.
    const marksAtClose = ledger.close().then(() => ledger.stats.marksCommitted);
    await pass(DEADLINE_MS);
    expect(rejectedWithLedger503(caller())).toBe(true);
    expect(await marksAtClose).toBe(1);
    sent[0]?.apply(); // the original arrives late
    await pass(0);
    expect([...store.values()]).toEqual([expect.objectContaining({ Outcome: 'abandoned' })]);
  });

  it('a 200 is never marked: rows acknowledged in time stay issued', async () => {
    const { table, store } = memoryTable(() => true);
    const { ledger } = ledgerOn(table);
    const callers = watch(
      Promise.all(Array.from({ length: 20 }, (_, i) => ledger.record(issued(`r${i}`, `cred-${i % 3}`)))),
    );
    await pass(DEADLINE_MS * 3);
    expect(callers()).toEqual({ state: 'fulfilled' });
    expect([...store.values()].map((row) => row.Outcome)).toEqual(Array.from({ length: 20 }, () => 'issued'));
    expect(ledger.stats.rowsAbandoned).toBe(0);
  });

  it('a retry after an attempt that committed but never answered is acknowledged (the 409 is read back)', async () => {
    const { table, store, sent } = memoryTable(() => false);
    const { ledger } = ledgerOn(table, { deadlineMs: 4_000, operationTimeoutMs: 1_000 });
    const caller = watch(ledger.record(issued('r1')));
    await pass(5);
    // The table commits the first attempt, but its answer is lost: the attempt times out after 1 s.
    const firstAttempt = sent[0];
    if (!firstAttempt) throw new Error('no attempt sent');
    for (const row of firstAttempt.rows) store.set(`${row.partitionKey}\u0000${row.rowKey}`, { ...row });
    await pass(1_000);
    expect(sent).toHaveLength(2);
    sent[1]?.apply(); // the retry's insert: 409, then the rows are read back
    await pass(0);
    expect(caller()).toEqual({ state: 'fulfilled' });
    expect([...store.values()]).toEqual([expect.objectContaining({ Outcome: 'issued' })]);
  });

  it('the rows carry the latest instant their token could have been answered', async () => {
    const { table, store } = memoryTable(() => true);
    const { ledger } = ledgerOn(table);
    const startedAt = Date.now();
    await Promise.all([ledger.record(issued('r1')), pass(5)]);
    const answerBy = [...store.values()][0]?.AnswerBy as Date;
    expect(answerBy.getTime()).toBe(startedAt + DEADLINE_MS);
  });
});

describe('refusals of unproven credentials are aggregated per address', () => {
  it('1,000 made-up ids from 10 addresses: one row per address, in one transaction, with the count and a sample', async () => {
    const { table, store, sent } = memoryTable(() => true);
    const { ledger } = ledgerOn(table);
    for (let i = 0; i < 1_000; i += 1) await ledger.record(unknownId(`u${i}`, `203.0.113.${i % 10}`));
    expect(sent).toHaveLength(0); // nothing written per refusal
    await Promise.all([ledger.flushRefusals(), pass(5)]);
    expect(sent).toHaveLength(1);
    const rows = [...store.values()];
    expect(rows).toHaveLength(10);
    for (const row of rows) {
      expect(row).toMatchObject({
        Outcome: 'refused',
        Count: 100,
        DistinctCredentials: 100,
        Reason: 'unknown_credential',
      });
      expect(String(row.partitionKey)).toMatch(/^refusals\|2026030109\|[0-3]$/);
    }
    expect(ledger.stats.refusalsAggregated).toBe(1_000);
  });

  it('addresses beyond the per-window bound share one overflow row, so a window costs at most a fixed number of transactions', async () => {
    const { table, store, sent } = memoryTable(() => true);
    const { ledger } = ledgerOn(table, { maxRefusalAddresses: 250 });
    for (let i = 0; i < 5_000; i += 1)
      await ledger.record(unknownId(`u${i}`, `10.0.${Math.floor(i / 250)}.${i % 250}`));
    await Promise.all([ledger.flushRefusals(), pass(5)]);
    const rows = [...store.values()];
    expect(rows).toHaveLength(251);
    expect(rows.reduce((sum, row) => sum + Number(row.Count), 0)).toBe(5_000);
    expect(rows.find((row) => row.ClientIp === '*')).toMatchObject({ Count: 4_750 });
    expect(sent).toHaveLength(3); // ceil(251 / 100)
  });

  it('a window ends by itself after refusalWindowMs', async () => {
    const { table, store } = memoryTable(() => true);
    const { ledger } = ledgerOn(table, { refusalWindowMs: 60_000 });
    await ledger.record(unknownId('u1', '203.0.113.1'));
    await ledger.record(unknownId('u2', '203.0.113.1'));
    await pass(59_999);
    expect(store.size).toBe(0);
    await pass(10);
    expect([...store.values()]).toEqual([expect.objectContaining({ Count: 2, ClientIp: '203.0.113.1' })]);
  });

  it('refusals that prove the credential exists keep a row each, under the credential', async () => {
    const { table, store } = memoryTable(() => true);
    const { ledger } = ledgerOn(table);
    await Promise.all([
      ledger.record(wrongKey('w1', 'real-account')),
      ledger.record(wrongKey('w2', 'real-account')),
      pass(5),
    ]);
    expect([...store.values()].map((row) => [String(row.partitionKey).split('|')[0], row.Count])).toEqual([
      ['c:real-account', undefined],
      ['c:real-account', undefined],
    ]);
  });
});
