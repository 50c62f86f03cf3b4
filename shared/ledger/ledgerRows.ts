import type { FlowName } from '../flowNames.js';
import type { LedgerEntry } from './ledger.js';

/**
 * How ledger entries are laid out in Azure Table Storage.
 *
 * PartitionKey = `<subject>|<hour bucket>|<shard>`, e.g. `c:acme-speech|2026112219|2`
 *   - subject: `c:<credential id>` for every row that names a credential (issued tokens and refusals alike);
 *     refusals that name none (no or unreadable credentials) use `ip:<client IP>`, or `flow:<flow>` when the IP
 *     is unknown too. Components are percent-encoded, so `|`, `/`, `\`, `#`, `?` and control characters
 *     (forbidden in keys) never appear raw and the separator stays unambiguous.
 *   - hour bucket: UTC `yyyyMMddHH` of the entry's time. A credential's rows move to a new partition every
 *     hour, so no partition grows without end and a time-range query touches only the hours it covers.
 *   - shard: `0..LEDGER_SHARDS-1`, chosen per committed batch (round-robin from a random start in each
 *     instance), so one busy credential in one busy hour spreads over several partitions (each partition has
 *     its own throughput target) while each batch still fits one partition, as a table transaction requires.
 * RowKey = `<inverted epoch ms, 13 digits>|<request id>|<outcome>`: newest first inside a partition, unique per
 *   request and outcome, and the same on a retry, so re-sending a batch (upsert) never duplicates a row.
 *
 * "Who obtained tokens with credential X between t1 and t2" is therefore, per hour, LEDGER_SHARDS point
 * queries on exact PartitionKeys with a RowKey range: the cheapest query the table service has.
 */
export const LEDGER_SHARDS = 4;

/** Longest text kept in a column or key component; longer input (hostile ids) is cut, never rejected. */
const MAX_TEXT = 512;
/** Longest encoded key component: keeps PartitionKey and RowKey far below the 1 KiB limit. */
const MAX_KEY_COMPONENT = 256;
const MAX_EPOCH_MS = 9_999_999_999_999;

/** What is stored for one entry: the keys plus one column per field. Never a key, never a token. */
export interface LedgerRow {
  readonly partitionKey: string;
  readonly rowKey: string;
  readonly Time: Date;
  readonly Flow: string;
  readonly Outcome: string;
  readonly Status: number;
  readonly RequestId: string;
  readonly ClientIp?: string;
  readonly CredentialId?: string;
  readonly Principal?: string;
  readonly KeySlot?: number;
  readonly Audience?: string;
  readonly Scope?: string;
  /** Space-separated. */
  readonly FeatureFlags?: string;
  readonly Jti?: string;
  readonly ExpiresAt?: Date;
  readonly Reason?: string;
  /**
   * Issued rows only: the latest instant (this instance's clock) at which the STS could still have answered
   * the client with the token. A commit the table stamped later than this was not acknowledged in time (the
   * client got a 503); `audit` flags such a row even if its `abandoned` mark was never written.
   */
  readonly AnswerBy?: Date;
  /** Aggregated refusal rows only: how many refusals the row stands for (docs/ledger.md#refusals). */
  readonly Count?: number;
  /** Aggregated refusal rows only: the time of the last refusal the row stands for. */
  readonly LastTime?: Date;
  /** Aggregated refusal rows only: distinct credential ids among its refusals (counted up to a bound). */
  readonly DistinctCredentials?: number;
}

/** The subject of the partitions holding aggregated refusal rows (docs/ledger.md#refusals). */
export const REFUSALS_SUBJECT = 'refusals';

/** The outcome an `issued` row is changed to when its client was answered 503 before its commit was known. */
export const ABANDONED_OUTCOME = 'abandoned';

/** The partition owner of an entry: its credential, else its client IP, else its flow. */
export function ledgerSubjectOf(entry: Pick<LedgerEntry, 'credentialId' | 'clientIp' | 'flow'>): string {
  if (entry.credentialId) return credentialSubject(entry.credentialId);
  if (entry.clientIp) return clientIpSubject(entry.clientIp);
  return `flow:${keyComponent(entry.flow)}`;
}

/** The subject of every row naming credential `id`. */
export function credentialSubject(id: string): string {
  return `c:${keyComponent(id)}`;
}

/** The subject of refusals that name no credential, from client `ip`. */
export function clientIpSubject(ip: string): string {
  return `ip:${keyComponent(ip)}`;
}

/** UTC `yyyyMMddHH` of `time`. */
export function hourBucketOf(time: Date): string {
  return time.toISOString().slice(0, 13).replace(/[-T]/g, '');
}

export function partitionKeyOf(subject: string, hourBucket: string, shard: number): string {
  return `${subject}|${hourBucket}|${shard}`;
}

/** The RowKey prefix of `time`: later times sort first. */
export function invertedTimeOf(time: Date): string {
  return String(MAX_EPOCH_MS - time.getTime()).padStart(13, '0');
}

/** The RowKey of an entry (see the layout above). */
export function rowKeyOf(entry: Pick<LedgerEntry, 'time' | 'requestId' | 'outcome'>): string {
  return `${invertedTimeOf(entry.time)}|${keyComponent(entry.requestId)}|${entry.outcome}`;
}

/** The grouping key of an entry: entries with the same one may share a transaction (after the shard is chosen). */
export function batchKeyOf(entry: LedgerEntry): string {
  return `${ledgerSubjectOf(entry)}|${hourBucketOf(entry.time)}`;
}

/**
 * The row of `entry` in partition shard `shard`. `storeAddress` turns the client address into what the row may
 * keep (`STS_LEDGER_CLIENT_ADDRESS`, ledgerAddress.ts), for the ClientIp column and the PartitionKey alike; the
 * full address never reaches either when it is given. `answerBy` is given for an issued row
 * (see {@link LedgerRow.AnswerBy}).
 */
export function toLedgerRow(
  entry: LedgerEntry,
  shard: number,
  storeAddress?: (address: string) => string | undefined,
  answerBy?: Date,
): LedgerRow {
  if (storeAddress && entry.clientIp !== undefined) entry = { ...entry, clientIp: storeAddress(entry.clientIp) };
  const row: Record<string, unknown> = {
    partitionKey: partitionKeyOf(ledgerSubjectOf(entry), hourBucketOf(entry.time), shard),
    rowKey: rowKeyOf(entry),
    Time: entry.time,
    Flow: entry.flow,
    Outcome: entry.outcome,
    Status: Number.isInteger(entry.status) ? entry.status : 0,
    RequestId: boundedText(entry.requestId),
  };
  const optional: Record<string, string | number | Date | undefined> = {
    ClientIp: entry.clientIp ? boundedText(entry.clientIp) : undefined,
    CredentialId: entry.credentialId ? boundedText(entry.credentialId) : undefined,
    Principal: entry.principal ? boundedText(entry.principal) : undefined,
    KeySlot: entry.keySlot,
    Audience: entry.audience === undefined ? undefined : boundedText(entry.audience),
    Scope: entry.scope === undefined ? undefined : boundedText(entry.scope),
    FeatureFlags: entry.featureFlags === undefined ? undefined : boundedText(entry.featureFlags.join(' ')),
    Jti: entry.jti === undefined ? undefined : boundedText(entry.jti),
    ExpiresAt: entry.expiresAt && !Number.isNaN(entry.expiresAt.getTime()) ? entry.expiresAt : undefined,
    Reason: entry.reason === undefined ? undefined : boundedText(entry.reason),
    Source: entry.source === undefined ? undefined : boundedText(entry.source),
    AnswerBy: answerBy,
  };
  for (const [name, value] of Object.entries(optional)) if (value !== undefined) row[name] = value;
  return row as unknown as LedgerRow;
}

/**
 * The refusals of one client address over one aggregation window, written as ONE row (docs/ledger.md#refusals):
 * the first refusal as the sample, how many there were, when the last was, how many distinct credential ids.
 */
export interface RefusalAggregate {
  readonly first: LedgerEntry;
  readonly count: number;
  readonly lastTime: Date;
  readonly distinctCredentials: number;
}

/** The address of the aggregated row standing for every address beyond the per-window bound. */
export const OVERFLOW_REFUSAL_ADDRESS = '*';

/** The RowKey prefix of a client address's aggregated refusals (`<address>|`), in a refusals partition. */
export function refusalAddressPrefix(clientIp: string | undefined): string {
  return `${clientIp ? keyComponent(clientIp) : '-'}|`;
}

/**
 * The row of an aggregate: PartitionKey `refusals|<hour of the first refusal>|<shard>`, RowKey
 * `<address>|<inverted time of the first>|<its request id>|refused`. Every address of a crowd shares the same few
 * partitions, so up to 100 addresses' rows go to the table in one transaction, and one address's rows are a
 * RowKey range of them.
 */
export function toRefusalAggregateRow(
  aggregate: RefusalAggregate,
  shard: number,
  storeAddress?: (address: string) => string | undefined,
): LedgerRow {
  const { first } = aggregate;
  // The overflow row names no address: it is kept as `*` whatever the address mode.
  const sample = toLedgerRow(first, shard, first.clientIp === OVERFLOW_REFUSAL_ADDRESS ? undefined : storeAddress);
  return {
    ...sample,
    partitionKey: partitionKeyOf(REFUSALS_SUBJECT, hourBucketOf(first.time), shard),
    // The address as the row stores it (STS_LEDGER_CLIENT_ADDRESS), never the full one unless that is the mode.
    rowKey: `${refusalAddressPrefix(sample.ClientIp)}${rowKeyOf(first)}`,
    Count: aggregate.count,
    LastTime: aggregate.lastTime,
    DistinctCredentials: aggregate.distinctCredentials,
  };
}

/**
 * The same row marked `abandoned`: its client was answered 503 while its commit was in doubt. Written under the
 * same keys (an upsert), so it replaces the `issued` row if that committed, and stops it committing later (issued
 * rows are inserted, and an insert of an existing key fails).
 */
export function abandonedRowOf(row: LedgerRow): LedgerRow {
  return { ...row, Outcome: ABANDONED_OUTCOME, Status: 503, Reason: 'ledger_deadline' };
}

/** An entry read back from the table, with the keys it was stored under. */
export interface StoredLedgerEntry extends Omit<LedgerEntry, 'outcome'> {
  readonly partitionKey: string;
  readonly rowKey: string;
  /** `abandoned`: minted, but its client was answered 503 because the row's commit was not known in time. */
  readonly outcome: LedgerEntry['outcome'] | typeof ABANDONED_OUTCOME;
  /** When the table service last wrote the row (its `Timestamp`). */
  readonly committedAt?: Date | undefined;
  /** Issued rows: the last instant the token could have been answered (see {@link LedgerRow.AnswerBy}). */
  readonly answerBy?: Date | undefined;
  /** Aggregated refusals: how many refusals the row stands for (absent: one). */
  readonly count?: number | undefined;
  readonly lastTime?: Date | undefined;
  readonly distinctCredentials?: number | undefined;
}

/** Reads a stored entity back into an entry; tolerant of missing columns (rows written by older versions). */
export function fromLedgerRow(entity: Readonly<Record<string, unknown>>): StoredLedgerEntry {
  const text = (name: string): string | undefined => (typeof entity[name] === 'string' ? entity[name] : undefined);
  const date = (name: string): Date | undefined => {
    const value = entity[name];
    if (value instanceof Date) return value;
    if (typeof value === 'string' && !Number.isNaN(Date.parse(value))) return new Date(value);
    return undefined;
  };
  const outcome = text('Outcome');
  const keySlot = entity.KeySlot;
  const flags = text('FeatureFlags');
  return {
    partitionKey: text('partitionKey') ?? '',
    rowKey: text('rowKey') ?? '',
    time: date('Time') ?? new Date(0),
    flow: (text('Flow') ?? 'unknown') as FlowName,
    outcome:
      outcome === 'issued' || outcome === 'refused' || outcome === 'upstream' || outcome === ABANDONED_OUTCOME
        ? outcome
        : 'refused',
    status: typeof entity.Status === 'number' ? entity.Status : 0,
    requestId: text('RequestId') ?? '',
    clientIp: text('ClientIp'),
    credentialId: text('CredentialId'),
    principal: text('Principal'),
    keySlot: keySlot === 1 || keySlot === 2 ? keySlot : undefined,
    audience: text('Audience'),
    scope: text('Scope'),
    featureFlags: flags ? flags.split(' ') : undefined,
    jti: text('Jti'),
    expiresAt: date('ExpiresAt'),
    reason: text('Reason'),
    source: text('Source'),
    committedAt: date('timestamp') ?? date('Timestamp'),
    answerBy: date('AnswerBy'),
    count: typeof entity.Count === 'number' ? entity.Count : undefined,
    lastTime: date('LastTime'),
    distinctCredentials: typeof entity.DistinctCredentials === 'number' ? entity.DistinctCredentials : undefined,
  };
}

/**
 * A key component: percent-encoded so the characters keys forbid (and our `|`) never appear raw, and cut to
 * {@link MAX_KEY_COMPONENT} characters at an escape boundary so a hostile id cannot exceed the 1 KiB key limit.
 */
function keyComponent(value: string): string {
  const encoded = encodeURIComponent(wellFormed(value.slice(0, MAX_KEY_COMPONENT)));
  if (encoded.length <= MAX_KEY_COMPONENT) return encoded;
  const cut = encoded.slice(0, MAX_KEY_COMPONENT);
  const partialEscape = /%[0-9A-F]?$/.exec(cut);
  return partialEscape ? cut.slice(0, partialEscape.index) : cut;
}

/** A column value: bounded and well-formed UTF-16 (no lone surrogates, which the service rejects). */
export function boundedText(value: string): string {
  return wellFormed(value.length > MAX_TEXT ? value.slice(0, MAX_TEXT) : value);
}

function wellFormed(value: string): string {
  // A UTF-8 round trip replaces lone surrogates (including one left by a cut) with U+FFFD.
  return Buffer.from(value, 'utf8').toString('utf8');
}
