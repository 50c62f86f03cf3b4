import type { TokenCredential } from '@azure/identity';
import type { StsConfig } from '../config.js';
import { hourStartOf, hourBucketOfPartitionKey, LEDGER_PERIOD_MS, periodTableName } from './ledgerPeriods.js';
import { hourBucketOf, type LedgerRow } from './ledgerRows.js';
import { SingleFlightCache, type Cached } from '../caching/singleFlightCache.js';
import { transactionFailure, transactionRequest } from './entityGroupTransaction.js';

/** The Table service REST version of the transactions (the one `@azure/data-tables` 13 sends its own with). */
const TABLE_API_VERSION = '2019-02-02';
/** Hour tables whose clients (and "exists" knowledge) a process keeps: the current one and a few before it. */
const RECENT_TABLES = 6;
/** How long before the hour turns its table is created ahead. */
const CREATE_AHEAD_MS = 10 * 60_000;
const CREATE_AHEAD_TIMEOUT_MS = 10_000;

/**
 * The three table operations the ledger needs, over `@azure/data-tables`. The SDK is imported only when a
 * table is opened, so a cold start with the ledger off (or before the first token) never loads it.
 */
export interface LedgerTable {
  /** Creates the table if it is missing (an existing table is fine); hour tables: nothing, see submitTransaction. */
  ensureExists(signal: AbortSignal): Promise<void>;
  /**
   * Writes `rows`, all of one partition (at most 100), in one entity-group transaction, into the table of the
   * hour their PartitionKey names (created on first use): `upsert` (the default) replaces existing rows; `insert`
   * fails the whole transaction (409 `EntityAlreadyExists`) if any of them exists.
   */
  submitTransaction(rows: readonly LedgerRow[], signal: AbortSignal, write?: LedgerWrite): Promise<void>;
  /** Reads one partition, RowKeys in [`rowKeyFrom`, `rowKeyTo`], in RowKey order, at most `limit` entities. */
  readPartition(query: PartitionQuery, signal?: AbortSignal): Promise<Record<string, unknown>[]>;
}

/** How a transaction writes its rows: `insert` never overwrites a row, `upsert` does. */
export type LedgerWrite = 'insert' | 'upsert';

export interface PartitionQuery {
  readonly partitionKey: string;
  readonly rowKeyFrom: string;
  readonly rowKeyTo: string;
  readonly outcome?: string | undefined;
  readonly limit: number;
}

/** Where the table is and how to reach it (`StsConfig['ledger']` plus the identity for `tableUrl`). */
export interface LedgerTableLocation {
  /** The base name: each UTC hour's rows live in `<tableName><yyyyMMddHH>` (ledgerPeriods.ts). */
  readonly tableName: string;
  readonly connectionString?: string | undefined;
  readonly tableUrl?: string | undefined;
}

/**
 * Opens the ledger table: with `connectionString` (Azurite locally, or an account key), else with `tableUrl`
 * and the app's identity from `credential()` (RBAC role "Storage Table Data Contributor").
 *
 * The SDK's own retries are off: the ledger retries a batch once itself, within its own time budget, so an
 * outage turns into a quick 503 instead of a request held for the SDK's back-off.
 *
 * @example
 * const table = await openLedgerTable(config.ledger, () => appCredential());
 */
export async function openLedgerTable(
  location: LedgerTableLocation | StsConfig['ledger'],
  credential: () => Promise<TokenCredential>,
): Promise<LedgerTable> {
  const [{ TableClient, odata }, { createHttpHeaders, createPipelineRequest, RestError }, { azureHttpClient }] =
    await Promise.all([
      import('@azure/data-tables'),
      import('@azure/core-rest-pipeline'),
      import('../outbound/azureHttpClient.js'),
    ]);
  const retryOptions = { maxRetries: 0 };
  // The table clients send through the one outbound client; so do the ledger's transactions, through a table
  // client's own pipeline (its credential and signing).
  const httpClient = azureHttpClient();
  let allowInsecureConnection = false;
  let connect: (tableName: string) => InstanceType<typeof TableClient>;
  if (location.connectionString) {
    const connectionString = location.connectionString;
    allowInsecureConnection = isLocalEmulator(connectionString);
    connect = (tableName) =>
      TableClient.fromConnectionString(connectionString, tableName, {
        retryOptions,
        allowInsecureConnection,
        httpClient,
      });
  } else if (location.tableUrl) {
    const endpoint = location.tableUrl.replace(/\/+$/, '');
    const identity = await credential();
    connect = (tableName) => new TableClient(endpoint, tableName, identity, { retryOptions, httpClient });
  } else {
    throw new Error('the ledger needs STS_LEDGER_CONNECTION_STRING or STS_LEDGER_TABLE_URL');
  }

  // One client per hour's table; only the last few hours are ever written, so a handful is kept.
  const clients = new SingleFlightCache<string, InstanceType<typeof TableClient>>({ maxEntries: RECENT_TABLES });
  const clientFor = (tableName: string): InstanceType<typeof TableClient> => {
    const held = clients.peek(tableName);
    if (held) return held.value;
    const client = connect(tableName);
    clients.set(tableName, { value: client, freshUntilMs: Infinity, staleUntilMs: Infinity });
    return client;
  };
  // Tables this process created (the last few hours'): their first batch of the hour pays one create, later
  // ones none, and concurrent first batches share it (the shared single-flight cache, bounded).
  const createdTables = new SingleFlightCache<string, true>({ maxEntries: RECENT_TABLES });
  const createTable = async (tableName: string, signal: AbortSignal | undefined): Promise<Cached<true>> => {
    try {
      await clientFor(tableName).createTable(signal ? { abortSignal: signal } : {});
    } catch (error) {
      // The SDK already ignores "exists"; this covers services that answer 409 differently.
      if ((error as { statusCode?: unknown }).statusCode !== 409) throw error;
    }
    return { value: true, freshUntilMs: Infinity, staleUntilMs: Infinity };
  };
  const ensureTable = async (tableName: string, signal: AbortSignal): Promise<void> => {
    await createdTables.get(tableName, () => createTable(tableName, signal));
  };
  // The next hour's table is created ahead, in the background, in the last minutes of an hour, so the first
  // batch after the hour turns does not wait for a create (one attempt per hour per process; a failure only
  // means that batch creates it). `aheadTried` holds the hours tried, markers rather than loaded values, so it is
  // not a cache: first in, first out, so each hour is tried once whatever the answer.
  const aheadTried = new Set<string>();
  const createNextHourAhead = (hourBucket: string, now: Date): void => {
    const start = hourStartOf(hourBucket);
    const end = start ? start.getTime() + LEDGER_PERIOD_MS : 0;
    // Only while that hour is the current one and about to end (never for rows of a past hour).
    if (!start || now.getTime() < end - CREATE_AHEAD_MS || now.getTime() >= end) return;
    const next = periodTableName(location.tableName, hourBucketOf(new Date(start.getTime() + LEDGER_PERIOD_MS)));
    if (createdTables.peek(next) || aheadTried.has(next)) return;
    aheadTried.add(next);
    if (aheadTried.size > RECENT_TABLES) aheadTried.delete(aheadTried.values().next().value as string);
    createdTables
      .refresh(next, () => createTable(next, AbortSignal.timeout(CREATE_AHEAD_TIMEOUT_MS)))
      .catch(() => undefined);
  };

  return {
    // Each hour's table is created by its first batch (submitTransaction), so there is nothing to do up front.
    ensureExists: async () => {},
    submitTransaction: async (rows, signal, write = 'upsert') => {
      const first = rows[0];
      if (!first) return;
      const hourBucket = hourBucketOfPartitionKey(first.partitionKey);
      const tableName = periodTableName(location.tableName, hourBucket);
      await ensureTable(tableName, signal);
      const client = clientFor(tableName);
      // `<account url>[?<SAS>]`: the SAS, if any, goes after `$batch`; the rows' own URLs carry none.
      const [accountUrl = '', sas] = client.url.replace(/\/+(?=\?|$)/, '').split('?', 2);
      const { contentType, body } = transactionRequest(`${accountUrl}/${tableName}`, rows, write);
      const response = await client.pipeline.sendRequest(
        httpClient,
        createPipelineRequest({
          url: `${accountUrl}/$batch${sas === undefined ? '' : `?${sas}`}`,
          method: 'POST',
          body,
          headers: createHttpHeaders({
            'Content-Type': contentType,
            Accept: 'application/json',
            'x-ms-version': TABLE_API_VERSION,
            DataServiceVersion: '3.0;',
            MaxDataServiceVersion: '3.0;NetFx',
          }),
          abortSignal: signal,
          allowInsecureConnection,
        }),
      );
      const failure = transactionFailure(response.status, response.bodyAsText ?? '', rows.length);
      if (failure) {
        if (failure.statusCode === 404) createdTables.delete(tableName); // created again on the retry
        // The error the SDK's own transactions throw: callers read its statusCode and code.
        throw new RestError(failure.message, {
          statusCode: failure.statusCode,
          code: failure.code,
          request: response.request,
        });
      }
      createNextHourAhead(hourBucket, new Date());
    },
    readPartition: async (query, signal) => {
      const tableName = periodTableName(location.tableName, hourBucketOfPartitionKey(query.partitionKey));
      let filter = odata`PartitionKey eq ${query.partitionKey} and RowKey ge ${query.rowKeyFrom} and RowKey le ${query.rowKeyTo}`;
      if (query.outcome) filter += ` and ${odata`Outcome eq ${query.outcome}`}`;
      const found: Record<string, unknown>[] = [];
      const pages = connect(tableName)
        .listEntities<Record<string, unknown>>({ queryOptions: { filter }, ...(signal ? { abortSignal: signal } : {}) })
        .byPage({ maxPageSize: Math.min(Math.max(query.limit, 1), 1_000) });
      try {
        for await (const page of pages) {
          for (const entity of page) {
            if (found.length >= query.limit) return found;
            found.push(entity);
          }
          if (found.length >= query.limit) break;
        }
      } catch (error) {
        // No table for that hour: nothing was written then, or the hour has passed the retention period.
        if ((error as { statusCode?: unknown }).statusCode === 404) return found;
        throw error;
      }
      return found;
    },
  };
}

/**
 * True for Azurite: `UseDevelopmentStorage=true` or a plain-http endpoint on loopback. Only then may the
 * account key travel over http; anything else keeps the SDK's https requirement.
 */
export function isLocalEmulator(connectionString: string): boolean {
  if (/usedevelopmentstorage=true/i.test(connectionString)) return true;
  const endpoint = /(?:^|;)\s*TableEndpoint=([^;]+)/i.exec(connectionString)?.[1]?.trim();
  if (!endpoint) return false;
  try {
    const url = new URL(endpoint);
    return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  } catch {
    return false;
  }
}
