import { TableClient, TableServiceClient } from '@azure/data-tables';
import { periodOfTable } from '../../shared/ledger/ledgerPeriods.js';

/**
 * Every entity the ledger with base name `baseName` holds on an Azurite, exactly as stored: the rows of all its
 * hour tables (`<baseName><yyyyMMddHH>`, shared/ledger/ledgerPeriods.ts), oldest hour first.
 */
export async function readLedgerEntities(
  connectionString: string,
  baseName: string,
  maxRows = 20_000,
): Promise<Record<string, unknown>[]> {
  const entities: Record<string, unknown>[] = [];
  for (const tableName of await ledgerTableNames(connectionString, baseName)) {
    const client = TableClient.fromConnectionString(connectionString, tableName, { allowInsecureConnection: true });
    for await (const entity of client.listEntities<Record<string, unknown>>()) {
      entities.push(entity);
      if (entities.length > maxRows) throw new Error('unexpectedly many rows');
    }
  }
  return entities;
}

/** The hour tables of `baseName` that exist, oldest first. */
export async function ledgerTableNames(connectionString: string, baseName: string): Promise<string[]> {
  const service = TableServiceClient.fromConnectionString(connectionString, { allowInsecureConnection: true });
  const names: { name: string; hour: number }[] = [];
  for await (const table of service.listTables()) {
    const hour = table.name ? periodOfTable(baseName, table.name) : undefined;
    if (table.name && hour) names.push({ name: table.name, hour: hour.getTime() });
  }
  return names.sort((a, b) => a.hour - b.hour).map((entry) => entry.name);
}
