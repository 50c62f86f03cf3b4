import type { TokenCredential } from '@azure/identity';
import { periodOfTable } from './ledgerPeriods.js';
import { isLocalEmulator, type LedgerTableLocation } from './ledgerTable.js';

/** One hour's ledger table. */
export interface LedgerPeriodTable {
  readonly name: string;
  /** The start of the UTC hour whose rows it holds. */
  readonly hourStart: Date;
}

/**
 * The account-level operations retention needs: which hour tables exist, and dropping one whole. Separate from
 * {@link LedgerTable} (the write path) and its client, so removal shares nothing with issuance but the account.
 */
export interface LedgerTableService {
  /** The base name's hour tables, oldest first (one listing call per 1,000 tables). */
  listPeriodTables(signal?: AbortSignal): Promise<LedgerPeriodTable[]>;
  /** Drops one table and every row in it: one table operation, whatever it holds. A missing table is fine. */
  deleteTable(name: string, signal?: AbortSignal): Promise<void>;
  /** Table operations sent so far (listing pages and deletes): what removal has cost this process. */
  readonly operations: number;
}

/**
 * Opens the table service of the ledger's account: with the connection string (Azurite, account key) or
 * `tableUrl` and the identity (RBAC "Storage Table Data Contributor" covers listing and deleting tables).
 *
 * @example
 * const service = await openLedgerTableService(config.ledger, () => appCredential());
 * for (const table of await service.listPeriodTables()) console.log(table.name, table.hourStart);
 */
export async function openLedgerTableService(
  location: LedgerTableLocation,
  credential: () => Promise<TokenCredential>,
): Promise<LedgerTableService> {
  const [{ TableServiceClient, odata }, { azureHttpClient }] = await Promise.all([
    import('@azure/data-tables'),
    import('../outbound/azureHttpClient.js'),
  ]);
  const retryOptions = { maxRetries: 0 };
  const httpClient = azureHttpClient();
  let client: InstanceType<typeof TableServiceClient>;
  if (location.connectionString) {
    client = TableServiceClient.fromConnectionString(location.connectionString, {
      retryOptions,
      httpClient,
      allowInsecureConnection: isLocalEmulator(location.connectionString),
    });
  } else if (location.tableUrl) {
    client = new TableServiceClient(location.tableUrl.replace(/\/+$/, ''), await credential(), {
      retryOptions,
      httpClient,
    });
  } else {
    throw new Error('the ledger needs STS_LEDGER_CONNECTION_STRING or STS_LEDGER_TABLE_URL');
  }
  const base = location.tableName;
  let operations = 0;
  return {
    get operations() {
      return operations;
    },
    async listPeriodTables(signal) {
      // Names from `<base>0` to `<base>9~`: the base's hour tables sort there; the digits are checked below.
      const filter = odata`TableName ge ${`${base}0`} and TableName le ${`${base}9~`}`;
      const found: LedgerPeriodTable[] = [];
      const pages = client
        .listTables({ queryOptions: { filter }, ...(signal ? { abortSignal: signal } : {}) })
        .byPage({ maxPageSize: 1_000 });
      for await (const page of pages) {
        operations += 1;
        for (const table of page) {
          const hourStart = table.name ? periodOfTable(base, table.name) : undefined;
          if (table.name && hourStart) found.push({ name: table.name, hourStart });
        }
      }
      return found.sort((a, b) => a.hourStart.getTime() - b.hourStart.getTime());
    },
    async deleteTable(name, signal) {
      operations += 1;
      try {
        await client.deleteTable(name, signal ? { abortSignal: signal } : {});
      } catch (error) {
        if ((error as { statusCode?: unknown }).statusCode !== 404) throw error;
      }
    },
  };
}
