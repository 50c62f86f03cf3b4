import { describe, expect, it } from 'vitest';
import type { InvocationContext } from '@azure/functions';
import { loadConfig } from '../shared/config.js';
import { openLedgerTable } from '../shared/ledger/ledgerTable.js';
import { TableLedger } from '../shared/ledger/tableLedger.js';
import { createServices } from '../shared/services.js';
import { nextOccurrence, parseNcrontab, startLocalTimers } from '../tools/localHost/localTimers.js';
import { startAzuriteFixture } from './support/azuriteFixture.js';
import { ledgerTableNames } from './support/ledgerTables.js';
import { importTimerFiles } from './support/localHostFixture.js';

// The local host runs timer functions as the Functions host would on one instance: on their NCRONTAB
// schedule (UTC), one run at a time, and locally once just after start.

describe('NCRONTAB schedules', () => {
  it('finds the next occurrence of the retention schedule (second 0, minute 7, every hour)', () => {
    const hourly = parseNcrontab('0 7 * * * *');
    expect(nextOccurrence(hourly, new Date('2026-12-05T10:06:59Z')).toISOString()).toBe('2026-12-05T10:07:00.000Z');
    expect(nextOccurrence(hourly, new Date('2026-12-05T10:07:00Z')).toISOString()).toBe('2026-12-05T11:07:00.000Z');
    expect(nextOccurrence(hourly, new Date('2026-12-31T23:30:00Z')).toISOString()).toBe('2027-01-01T00:07:00.000Z');
  });

  it('reads steps, ranges and lists, and refuses what it cannot read', () => {
    const schedule = parseNcrontab('*/15 0-5,30 9 * * 1-5');
    expect([...schedule.seconds]).toEqual([0, 15, 30, 45]);
    expect([...schedule.minutes]).toEqual([0, 1, 2, 3, 4, 5, 30]);
    expect(nextOccurrence(schedule, new Date('2026-12-05T09:00:00Z')).toISOString()).toBe('2026-12-07T09:00:00.000Z'); // Saturday → Monday
    expect(() => parseNcrontab('0 7 * * *')).toThrow(/six fields/);
    expect(() => parseNcrontab('0 61 * * * *')).toThrow(/out of range/);
    expect(() => parseNcrontab('0 7 * * * MON')).toThrow(/cannot read/);
  });
});

describe('the local host runs the retention timer', () => {
  it('once just after start: the expired hour tables of the local ledger are gone', async () => {
    const azurite = await startAzuriteFixture();
    try {
      const tableName = `localtimer${Date.now().toString(36)}`;
      const config = loadConfig({
        STS_LEDGER_MODE: 'required',
        STS_LEDGER_CONNECTION_STRING: azurite.connectionString,
        STS_LEDGER_TABLE: tableName,
        STS_LEDGER_RETENTION_HOURS: '24',
      });
      const seed = new TableLedger({
        mode: 'required',
        openTable: () => openLedgerTable(config.ledger, () => Promise.reject(new Error('unused'))),
      });
      const at = (hoursAgo: number) => new Date(Date.now() - hoursAgo * 3_600_000);
      for (const hoursAgo of [72, 48, 1]) {
        await seed.record({
          time: at(hoursAgo),
          flow: 'issueToken',
          outcome: 'issued',
          status: 200,
          requestId: `r${hoursAgo}`,
          credentialId: 'dev',
        });
      }
      await seed.close();
      expect(await ledgerTableNames(azurite.connectionString, tableName)).toHaveLength(3);

      const services = await createServices(config);
      const [retention] = await importTimerFiles();
      if (!retention) throw new Error('no timer function');
      const log: string[] = [];
      let runs = 0;
      let finished: () => void = () => {};
      const done = new Promise<void>((resolve) => (finished = resolve));
      const timers = startLocalTimers(
        [
          {
            name: retention.definition.name,
            schedule: retention.definition.schedule,
            // The definition's own run, bound to this test's services (the host's handler uses the process's).
            handler: async (_timer: unknown, context: InvocationContext) => {
              runs += 1;
              await retention.definition.runWith(services, (line) => context.log(line));
              finished();
            },
          },
        ],
        { firstRunAfterMs: 0, log: (line) => log.push(line) },
      );
      await done;
      await timers.stop();
      await services.ledger.close();

      expect(runs).toBe(1);
      expect(await ledgerTableNames(azurite.connectionString, tableName)).toHaveLength(1);
      expect(log.join('\n')).toMatch(/ledger retention \(24 h\): dropped 2 hour table\(s\)/);
    } finally {
      await azurite.dispose();
    }
  }, 90_000);
});
