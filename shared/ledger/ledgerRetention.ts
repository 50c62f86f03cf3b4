import { isExpired, LEDGER_PERIOD_MS } from './ledgerPeriods.js';
import type { LedgerTableService } from './ledgerTableService.js';

export interface RetentionRunOptions {
  readonly service: LedgerTableService;
  /** `STS_LEDGER_RETENTION_HOURS`. */
  readonly retentionHours: number;
  readonly now: () => Date;
  /**
   * True while issuance is short of table capacity (the ledger's `isSaturated`): removal waits, so it never
   * adds table work while tokens wait for theirs.
   */
  readonly issuanceBusy: () => boolean;
  /** Most tables dropped in one run; older ones left over go in the next run. Default 48 (two days of hours). */
  readonly maxDropsPerRun?: number;
  /** Pause after each drop, and between two looks at a busy ledger. Default 250 ms (at most 4 drops a second). */
  readonly pauseMs?: number;
  /** A run stops starting drops after this long (the Functions timeout is 30 s, host.json). Default 20 s. */
  readonly maxRunMs?: number;
  /** Time budget of one listing or drop. Default 10 s. */
  readonly operationTimeoutMs?: number;
  /** Waits `ms` (tests pass their own). */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface RetentionRunResult {
  /** Tables dropped in this run, oldest first. */
  readonly dropped: readonly string[];
  /** Tables past the retention period still there when the run ended (left for the next run). */
  readonly expiredLeft: number;
  /** How many times the run waited for issuance. */
  readonly waitsForIssuance: number;
  /** Table operations the run sent (listing pages and drops). */
  readonly operations: number;
}

/**
 * One run of ledger retention: lists the hour tables and drops, oldest first, every one whose whole hour is
 * older than the retention period. Rows inside the period are never touched (their tables are not listed for
 * removal). The cost is one listing call per 1,000 tables plus one drop per expired hour, whatever the number
 * of rows: an hourly run drops one table. Removal uses its own table-service client and never the ledger's
 * write queue or transaction slots, and it yields: while `issuanceBusy()` it waits, and it drops at most
 * `maxDropsPerRun` tables, one at a time, `pauseMs` apart, within `maxRunMs`.
 *
 * @example
 * const result = await runLedgerRetention({ service, retentionHours: 720, now: () => new Date(), issuanceBusy: () => ledger.isSaturated?.() ?? false });
 */
export async function runLedgerRetention(options: RetentionRunOptions): Promise<RetentionRunResult> {
  const maxDrops = options.maxDropsPerRun ?? 48;
  const pauseMs = options.pauseMs ?? 250;
  const maxRunMs = options.maxRunMs ?? 20_000;
  const timeoutMs = options.operationTimeoutMs ?? 10_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const startedAt = Date.now();
  const operationsBefore = options.service.operations;
  const withinRun = (): boolean => Date.now() - startedAt < maxRunMs;

  const tables = await options.service.listPeriodTables(AbortSignal.timeout(timeoutMs));
  const now = options.now();
  const expired = tables.filter((table) => isExpired(table.hourStart, now, options.retentionHours));
  const dropped: string[] = [];
  let waitsForIssuance = 0;
  for (const table of expired) {
    if (dropped.length >= maxDrops) break;
    while (options.issuanceBusy() && withinRun()) {
      waitsForIssuance += 1;
      await sleep(pauseMs);
    }
    if (!withinRun()) break;
    await options.service.deleteTable(table.name, AbortSignal.timeout(timeoutMs));
    dropped.push(table.name);
    await sleep(pauseMs);
  }
  return {
    dropped,
    expiredLeft: expired.length - dropped.length,
    waitsForIssuance,
    operations: options.service.operations - operationsBefore,
  };
}

/** What `audit` can say about retention from the list of hour tables. */
export interface RetentionStatement {
  /** The start of the oldest hour with a table: no row older than this can exist. Undefined: no tables. */
  readonly oldestPossibleRow: Date | undefined;
  /** Tables whose whole hour is past the retention period (the removal has not run since they expired). */
  readonly expiredTables: number;
  /** The retention cutoff at `now`: rows older than this are past the period. */
  readonly cutoff: Date;
}

/**
 * Nothing older than the oldest table's hour can exist in the ledger, since every row lives in its hour's
 * table. When no table is past the retention period, nothing older than `retentionHours` plus at most one hour
 * (the hour a table must finish before it can go) exists.
 */
export function retentionStatement(
  tables: readonly { readonly hourStart: Date }[],
  now: Date,
  retentionHours: number,
): RetentionStatement {
  return {
    oldestPossibleRow:
      tables.length > 0 ? new Date(Math.min(...tables.map((table) => table.hourStart.getTime()))) : undefined,
    expiredTables: tables.filter((table) => isExpired(table.hourStart, now, retentionHours)).length,
    cutoff: new Date(now.getTime() - retentionHours * LEDGER_PERIOD_MS),
  };
}
