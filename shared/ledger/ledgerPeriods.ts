/**
 * The ledger keeps one table per UTC hour, `<STS_LEDGER_TABLE><yyyyMMddHH>` (e.g. `issuance2026120514`), so
 * that rows past the retention period are removed by dropping their hour's table whole: one table operation
 * per hour of rows, whatever the number of rows in it (docs/ledger.md, "Retention"). The hour is the same one
 * that already sits in every PartitionKey, so a batch (one partition) always lands in exactly one table.
 */

/** The length of one period: every table holds the rows of one UTC hour. */
export const LEDGER_PERIOD_MS = 3_600_000;

const HOUR_BUCKET = /^(\d{4})(\d{2})(\d{2})(\d{2})$/;

/** The table of the hour `hourBucket` (UTC `yyyyMMddHH`, as in the PartitionKey). */
export function periodTableName(baseName: string, hourBucket: string): string {
  return `${baseName}${hourBucket}`;
}

/** The hour bucket a PartitionKey (`<subject>|<yyyyMMddHH>|<shard>`) names. */
export function hourBucketOfPartitionKey(partitionKey: string): string {
  const parts = partitionKey.split('|');
  const bucket = parts[parts.length - 2];
  if (bucket === undefined || !HOUR_BUCKET.test(bucket)) throw new Error('a ledger PartitionKey names its hour');
  return bucket;
}

/** The start of the hour `hourBucket` names, or undefined when it is not a real UTC hour. */
export function hourStartOf(hourBucket: string): Date | undefined {
  const parts = HOUR_BUCKET.exec(hourBucket);
  if (!parts) return undefined;
  const [year, month, day, hour] = parts.slice(1).map(Number) as [number, number, number, number];
  const start = new Date(Date.UTC(year, month - 1, day, hour));
  // Rejects 2026023124 and the like: the date must round-trip.
  if (
    start.getUTCFullYear() !== year ||
    start.getUTCMonth() !== month - 1 ||
    start.getUTCDate() !== day ||
    start.getUTCHours() !== hour
  ) {
    return undefined;
  }
  return start;
}

/**
 * The start of the hour a ledger table holds, when `tableName` is one of `baseName`'s period tables; otherwise
 * undefined. Exactly ten digits must follow the base name, so base names that are prefixes of one another
 * (`ledger`, `ledger2`) never claim each other's tables.
 */
export function periodOfTable(baseName: string, tableName: string): Date | undefined {
  if (!tableName.startsWith(baseName)) return undefined;
  return hourStartOf(tableName.slice(baseName.length));
}

/** True when the table of the hour starting at `hourStart` holds only rows older than the retention period. */
export function isExpired(hourStart: Date, now: Date, retentionHours: number): boolean {
  return hourStart.getTime() + LEDGER_PERIOD_MS <= now.getTime() - retentionHours * LEDGER_PERIOD_MS;
}
