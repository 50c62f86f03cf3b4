import {
  boundedText,
  clientIpSubject,
  credentialSubject,
  fromLedgerRow,
  hourBucketOf,
  invertedTimeOf,
  LEDGER_SHARDS,
  partitionKeyOf,
  refusalAddressPrefix,
  REFUSALS_SUBJECT,
  type StoredLedgerEntry,
} from '../../../shared/ledger/ledgerRows.js';
import type { LedgerTable } from '../../../shared/ledger/ledgerTable.js';

/** What the audit asks: the rows of one credential (or one client IP's credential-less refusals) in a time range. */
export type LedgerQuery = (
  | { readonly credentialId: string; readonly clientIp?: undefined }
  | { readonly clientIp: string; readonly credentialId?: undefined }
) & {
  readonly since: Date;
  readonly until: Date;
  readonly outcome?: StoredLedgerEntry['outcome'] | undefined;
  /** At most this many rows, the newest first. */
  readonly limit: number;
};

const HOUR_MS = 3_600_000;
/** Longest range one query may cover (each hour costs LEDGER_SHARDS point queries). */
export const MAX_QUERY_HOURS = 24 * 93;

/**
 * Reads the ledger rows matching `query`, newest first. Walks the hour buckets from `until` back to `since`
 * and, per hour, reads the LEDGER_SHARDS partitions of the subject in parallel with a RowKey range (cheap
 * point queries, see ledgerRows.ts); stops as soon as `limit` rows are found.
 *
 * @example
 * const rows = await queryLedger(table, { credentialId: 'acme-speech', since: oneHourAgo, until: now, limit: 100 });
 */
export async function queryLedger(table: LedgerTable, query: LedgerQuery): Promise<StoredLedgerEntry[]> {
  if (!(query.since.getTime() <= query.until.getTime()))
    throw new RangeError('the start of the range is after its end');
  const firstHour = Math.floor(query.since.getTime() / HOUR_MS) * HOUR_MS;
  const lastHour = Math.floor(query.until.getTime() / HOUR_MS) * HOUR_MS;
  const hours = (lastHour - firstHour) / HOUR_MS + 1;
  if (hours > MAX_QUERY_HOURS)
    throw new RangeError(`the range covers ${hours} hours; at most ${MAX_QUERY_HOURS} are allowed`);

  const subject =
    query.credentialId !== undefined ? credentialSubject(query.credentialId) : clientIpSubject(query.clientIp);
  // Keys are cut for very long ids, so two such ids could share a partition: the column tells them apart.
  const belongs = (entry: StoredLedgerEntry): boolean =>
    query.credentialId !== undefined
      ? entry.credentialId === boundedText(query.credentialId) && entry.count === undefined
      : entry.clientIp === boundedText(query.clientIp) &&
        (entry.credentialId === undefined || entry.count !== undefined);
  const rowKeyFrom = invertedTimeOf(query.until);
  const rowKeyTo = `${invertedTimeOf(query.since)}|~`;
  // A client address's aggregated refusals (docs/ledger.md#refusals) are a RowKey range of the refusals partitions.
  const addressPrefix = query.clientIp !== undefined ? refusalAddressPrefix(query.clientIp) : undefined;

  const found: StoredLedgerEntry[] = [];
  for (let hour = lastHour; hour >= firstHour && found.length < query.limit; hour -= HOUR_MS) {
    const bucket = hourBucketOf(new Date(hour));
    const remaining = query.limit - found.length;
    const reads: Promise<Record<string, unknown>[]>[] = [];
    for (let shard = 0; shard < LEDGER_SHARDS; shard += 1) {
      reads.push(
        table.readPartition({
          partitionKey: partitionKeyOf(subject, bucket, shard),
          rowKeyFrom,
          rowKeyTo,
          outcome: query.outcome,
          limit: remaining,
        }),
      );
      if (addressPrefix !== undefined) {
        reads.push(
          table.readPartition({
            partitionKey: partitionKeyOf(REFUSALS_SUBJECT, bucket, shard),
            rowKeyFrom: `${addressPrefix}${rowKeyFrom}`,
            rowKeyTo: `${addressPrefix}${rowKeyTo}`,
            outcome: query.outcome,
            limit: remaining,
          }),
        );
      }
    }
    const rows = (await Promise.all(reads))
      .flat()
      .map((entity) => fromLedgerRow(entity))
      .filter(belongs)
      .sort(newestFirst);
    found.push(...rows.slice(0, remaining));
  }
  return found;
}

/** Newest first; rows of the same millisecond in a stable order. */
function newestFirst(a: StoredLedgerEntry, b: StoredLedgerEntry): number {
  const byTime = b.time.getTime() - a.time.getTime();
  if (byTime !== 0) return byTime;
  const ka = `${a.requestId}|${a.partitionKey}|${a.rowKey}`;
  const kb = `${b.requestId}|${b.partitionKey}|${b.rowKey}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
