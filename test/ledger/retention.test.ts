import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import type { LedgerEntry } from '../../shared/ledger/ledger.js';
import { isExpired } from '../../shared/ledger/ledgerPeriods.js';
import { runLedgerRetention } from '../../shared/ledger/ledgerRetention.js';
import { openLedgerTable } from '../../shared/ledger/ledgerTable.js';
import { openLedgerTableService, type LedgerTableService } from '../../shared/ledger/ledgerTableService.js';
import { TableLedger } from '../../shared/ledger/tableLedger.js';
import { createServices } from '../../shared/services.js';
import { queryLedger } from '../../tools/sts/ledger/queryLedger.js';
import { flowRequest, sendHttp } from '../hardening/hardeningSupport.js';
import { startAzuriteFixture, type AzuriteFixture } from '../support/azuriteFixture.js';
import { ledgerTableNames, readLedgerEntities } from '../support/ledgerTables.js';
import { startTestHost } from '../support/localHostFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';

// Ledger retention against a real Azurite: one table per UTC hour, expired hours dropped whole by one run.

let azurite: AzuriteFixture;
let credentials: TestCredentials;
let tableCounter = 0;

beforeAll(async () => {
  [azurite, credentials] = await Promise.all([startAzuriteFixture(), createTestCredentials()]);
}, 90_000);
afterAll(async () => {
  await azurite?.dispose();
  await credentials?.remove();
});

const noIdentity = () => Promise.reject(new Error('tests use a connection string'));
const HOUR = 3_600_000;
/** Never waits: the runs below are driven without timers. */
const noSleep = async (): Promise<void> => {};

function newTableName(): string {
  tableCounter += 1;
  return `retain${tableCounter}t${Date.now().toString(36)}`;
}

function entry(time: Date, credentialId: string): LedgerEntry {
  return {
    time,
    flow: 'issueToken',
    outcome: 'issued',
    status: 200,
    requestId: randomUUID(),
    credentialId,
    keySlot: 1,
    jti: randomUUID(),
  };
}

describe('one run of the retention removal (24 h) on Azurite', () => {
  const now = new Date('2026-12-05T10:30:00Z');
  const retentionHours = 24;
  // By age: well past the period; past it by 31 min (its hour ended 24 h 30 min ago); past it by 10 min but in an
  // hour that also holds rows inside the period; 1 min inside; just written.
  const rows = {
    expiredLongAgo: entry(new Date(now.getTime() - 30 * HOUR), 'old-a'),
    expiredLastHour: entry(new Date('2026-12-04T09:59:00Z'), 'old-b'),
    pastPeriodInKeptHour: entry(new Date('2026-12-04T10:20:00Z'), 'edge'),
    insidePeriod: entry(new Date('2026-12-04T10:31:00Z'), 'recent'),
    current: entry(new Date('2026-12-05T10:29:00Z'), 'recent'),
  };

  it('drops every hour table past the period and leaves every row inside it, at one listing plus one drop per hour', async () => {
    const tableName = newTableName();
    const location = { tableName, connectionString: azurite.connectionString };
    const ledger = new TableLedger({ mode: 'required', openTable: () => openLedgerTable(location, noIdentity) });
    await Promise.all(Object.values(rows).map((row) => ledger.record(row)));
    await ledger.close();
    expect(await ledgerTableNames(azurite.connectionString, tableName)).toHaveLength(4);

    const service = await openLedgerTableService(location, noIdentity);
    const result = await runLedgerRetention({
      service,
      retentionHours,
      now: () => now,
      issuanceBusy: () => false,
      sleep: noSleep,
    });

    expect(result.dropped).toEqual([`${tableName}2026120404`, `${tableName}2026120409`]);
    expect(result.expiredLeft).toBe(0);
    expect(result.operations).toBe(3); // one listing page, two drops: nothing per row
    const left = (await readLedgerEntities(azurite.connectionString, tableName))
      .map((entity) => entity.RequestId)
      .sort();
    // Every row older than the period plus the one hour a table needs to fill is gone; every row inside it is there.
    expect(left).toEqual(
      [rows.pastPeriodInKeptHour, rows.insidePeriod, rows.current].map((row) => row.requestId).sort(),
    );
    // The audit reads the same answer: the dropped hours are simply empty.
    const table = await openLedgerTable(location, noIdentity);
    const since = new Date(now.getTime() - 48 * HOUR);
    expect(await queryLedger(table, { credentialId: 'old-a', since, until: now, limit: 10 })).toEqual([]);
    expect(await queryLedger(table, { credentialId: 'recent', since, until: now, limit: 10 })).toHaveLength(2);

    // A second run finds nothing to do.
    const again = await runLedgerRetention({
      service,
      retentionHours,
      now: () => now,
      issuanceBusy: () => false,
      sleep: noSleep,
    });
    expect(again.dropped).toEqual([]);
  }, 60_000);

  it('keeps an hour until every row in it is past the period', () => {
    expect(isExpired(new Date('2026-12-04T09:00:00Z'), now, retentionHours)).toBe(true);
    expect(isExpired(new Date('2026-12-04T10:00:00Z'), now, retentionHours)).toBe(false);
    expect(isExpired(new Date('2026-12-04T10:00:00Z'), new Date('2026-12-05T11:00:00Z'), retentionHours)).toBe(true);
  });
});

describe('removal never competes with issuance', () => {
  it('tokens are issued with their rows while a removal is stuck mid-drop: it holds nothing issuance needs', async () => {
    const tableName = newTableName();
    const config = loadConfig({
      STS_ISSUER: 'https://sts.test.example/',
      STS_LOCAL_STORE_PATH: credentials.storePath,
      STS_LEDGER_MODE: 'required',
      STS_LEDGER_CONNECTION_STRING: azurite.connectionString,
      STS_LEDGER_TABLE: tableName,
      STS_LEDGER_RETENTION_HOURS: '1',
    });
    const services = await createServices(config);
    const host = await startTestHost({ services });
    // Expired tables to remove, and a table service whose drops never finish until released.
    const real = await openLedgerTableService(config.ledger, noIdentity);
    const seed = await openLedgerTable(config.ledger, noIdentity);
    const old = new TableLedger({ mode: 'required', openTable: async () => seed });
    await Promise.all([5, 4, 3].map((hoursAgo) => old.record(entry(new Date(Date.now() - hoursAgo * HOUR), 'old'))));
    await old.close();
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let dropsStarted = 0;
    const stuck: LedgerTableService = {
      get operations() {
        return real.operations;
      },
      listPeriodTables: (signal) => real.listPeriodTables(signal),
      deleteTable: async (name, signal) => {
        dropsStarted += 1;
        await released;
        await real.deleteTable(name, signal);
      },
    };
    try {
      const removal = runLedgerRetention({
        service: stuck,
        retentionHours: 1,
        now: () => new Date(),
        issuanceBusy: () => services.ledger.isSaturated?.() ?? false,
        sleep: noSleep,
      });
      await waitUntil(() => dropsStarted === 1);

      // The removal is inside a drop and will stay there: every token request is still answered, with its row.
      const answers = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          sendHttp(host.url, flowRequest(i % 2 ? 'issueToken' : 'wrap', credentials)),
        ),
      );
      expect(answers.map((answer) => answer.status)).toEqual(Array<number>(24).fill(200));
      const issued = (await readLedgerEntities(azurite.connectionString, tableName)).filter(
        (row) => row.Outcome === 'issued' && row.CredentialId !== 'old',
      );
      expect(issued).toHaveLength(24);
      expect(dropsStarted).toBe(1);

      release();
      const result = await removal;
      expect(result.dropped).toHaveLength(3);
    } finally {
      release();
      await host.close();
      await services.ledger.close();
    }
  }, 60_000);

  it('waits while issuance is short of table capacity, and drops only once it is not', async () => {
    const dropped: string[] = [];
    const service: LedgerTableService = {
      operations: 0,
      listPeriodTables: async () => [
        { name: 'issuance2026010100', hourStart: new Date('2026-01-01T00:00:00Z') },
        { name: 'issuance2026010101', hourStart: new Date('2026-01-01T01:00:00Z') },
      ],
      deleteTable: async (name) => {
        dropped.push(name);
      },
    };
    let saturatedLooks = 3;
    const seenWhileSaturated: number[] = [];
    const result = await runLedgerRetention({
      service,
      retentionHours: 24,
      now: () => new Date('2026-02-01T00:00:00Z'),
      issuanceBusy: () => saturatedLooks-- > 0,
      sleep: async () => {
        seenWhileSaturated.push(dropped.length);
      },
    });
    // Three looks found issuance saturated: the run waited each time, with nothing dropped yet.
    expect(result.waitsForIssuance).toBe(3);
    expect(seenWhileSaturated.slice(0, 3)).toEqual([0, 0, 0]);
    expect(dropped).toEqual(['issuance2026010100', 'issuance2026010101']);
  });

  it('a saturated ledger is one with every transaction slot taken', async () => {
    let unblock: () => void = () => {};
    const blocked = new Promise<void>((resolve) => (unblock = resolve));
    const ledger = new TableLedger({
      mode: 'required',
      maxConcurrentTransactions: 1,
      maxBatchWaitMs: 0,
      openTable: async () => ({
        ensureExists: async () => {},
        submitTransaction: () => blocked,
        readPartition: async () => [],
      }),
    });
    expect(ledger.isSaturated()).toBe(false);
    const pending = ledger.record(entry(new Date(), 'busy'));
    await waitUntil(() => ledger.isSaturated());
    unblock();
    await pending;
    await waitUntil(() => !ledger.isSaturated());
    await ledger.close();
  });
});

/** Polls `condition` (a state change, not a duration): fails after 10 s. */
async function waitUntil(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
