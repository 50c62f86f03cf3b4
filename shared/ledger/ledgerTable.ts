import type { TransactionAction } from '@azure/data-tables';
import type { TokenCredential } from '@azure/identity';
import type { StsConfig } from '../config.js';
import type { LedgerRow } from './ledgerRows.js';

/**
 * The three table operations the ledger needs, over `@azure/data-tables`. The SDK is imported only when a
 * table is opened, so a cold start with the ledger off (or before the first token) never loads it.
 */
export interface LedgerTable {
  /** Creates the table if it is missing (an existing table is fine). */
  ensureExists(signal: AbortSignal): Promise<void>;
  /**
   * Writes `rows`, all of one partition (at most 100), in one entity-group transaction: `upsert` (the default)
   * replaces existing rows; `insert` fails the whole transaction (409 `EntityAlreadyExists`) if any row exists.
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
  const { TableClient, odata } = await import('@azure/data-tables');
  const retryOptions = { maxRetries: 0 };
  let client: InstanceType<typeof TableClient>;
  if (location.connectionString) {
    client = TableClient.fromConnectionString(location.connectionString, location.tableName, {
      retryOptions,
      allowInsecureConnection: isLocalEmulator(location.connectionString),
    });
  } else if (location.tableUrl) {
    client = new TableClient(location.tableUrl.replace(/\/+$/, ''), location.tableName, await credential(), { retryOptions });
  } else {
    throw new Error('the ledger needs STS_LEDGER_CONNECTION_STRING or STS_LEDGER_TABLE_URL');
  }

  return {
    ensureExists: async (signal) => {
      try {
        await client.createTable({ abortSignal: signal });
      } catch (error) {
        // The SDK already ignores "exists"; this covers services that answer 409 differently.
        if ((error as { statusCode?: unknown }).statusCode !== 409) throw error;
      }
    },
    submitTransaction: async (rows, signal, write = 'upsert') => {
      const actions = rows.map((row): TransactionAction =>
        write === 'insert' ? ['create', { ...row }] : ['upsert', { ...row }, 'Replace'],
      );
      await client.submitTransaction(actions, { abortSignal: signal });
    },
    readPartition: async (query, signal) => {
      let filter = odata`PartitionKey eq ${query.partitionKey} and RowKey ge ${query.rowKeyFrom} and RowKey le ${query.rowKeyTo}`;
      if (query.outcome) filter += ` and ${odata`Outcome eq ${query.outcome}`}`;
      const found: Record<string, unknown>[] = [];
      const pages = client
        .listEntities<Record<string, unknown>>({ queryOptions: { filter }, ...(signal ? { abortSignal: signal } : {}) })
        .byPage({ maxPageSize: Math.min(Math.max(query.limit, 1), 1_000) });
      for await (const page of pages) {
        for (const entity of page) {
          if (found.length >= query.limit) return found;
          found.push(entity as Record<string, unknown>);
        }
        if (found.length >= query.limit) break;
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
