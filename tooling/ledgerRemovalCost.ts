/**
 * `npx tsx tooling/ledgerRemovalCost.ts [--rows 20000]`: what removing expired ledger rows costs, in table
 * operations (REST calls; an entity-group transaction is one call) and entity operations, for the two ways the
 * platform offers (docs/ledger.md, "Retention"):
 *
 * - per row: a timer queries the expired rows (PartitionKey and RowKey only, 1,000 a page) and deletes them in
 *   entity-group transactions of at most 100 rows of one partition;
 * - per table: the rows of each hour live in their own table, which is dropped whole.
 *
 * Both run on a local Azurite (started here, data in a temp folder) for two shapes of one hour of rows: busy
 * credentials (few partitions, full batches) and a crowd of credential-less refusals (one row per partition, the
 * worst case for per-row removal). The figures are extrapolated to one million rows.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TableClient, type TableServiceClientOptions, type TransactionAction } from '@azure/data-tables';
import type { LedgerEntry } from '../shared/ledger/ledger.js';
import { openLedgerTable } from '../shared/ledger/ledgerTable.js';
import { openLedgerTableService } from '../shared/ledger/ledgerTableService.js';
import { TableLedger } from '../shared/ledger/tableLedger.js';
import { startLocalAzurite } from '../tools/localAzurite.js';

type PipelinePolicy = NonNullable<TableServiceClientOptions['additionalPolicies']>[number]['policy'];

interface Shape {
  readonly name: string;
  readonly entry: (i: number, time: Date) => LedgerEntry;
}

const SHAPES: readonly Shape[] = [
  {
    name: 'busy credentials (20 credentials)',
    entry: (i, time) => ({
      time,
      flow: 'issueToken',
      outcome: 'issued',
      status: 200,
      requestId: `r${i}`,
      credentialId: `cred-${i % 20}`,
      keySlot: 1,
    }),
  },
  {
    name: 'crowd of refusals (one address each)',
    entry: (i, time) => ({
      time,
      flow: 'issueToken',
      outcome: 'refused',
      status: 401,
      requestId: `r${i}`,
      clientIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      reason: 'unknown_credential',
    }),
  },
];

const noIdentity = () => Promise.reject(new Error('a connection string is used'));

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rows: { type: 'string', default: '20000' } } });
  const rows = Number(values.rows);
  if (!Number.isInteger(rows) || rows < 100 || rows > 1_000_000)
    throw new Error('--rows must be a whole number from 100 to 1000000');
  const dataDir = await mkdtemp(join(tmpdir(), 'sts-removal-cost-'));
  const azurite = await startLocalAzurite({ dataDir, startTimeoutMs: 45_000 });
  try {
    console.log(`Removal cost of ${rows} rows of one hour, on Azurite; extrapolated per 1,000,000 rows.\n`);
    console.log('| shape | method | table operations | per 1M rows | entity operations per 1M rows |');
    console.log('|---|---|---:|---:|---:|');
    let n = 0;
    for (const shape of SHAPES) {
      for (const method of ['per row', 'per table'] as const) {
        n += 1;
        const base = `cost${n}t${Date.now().toString(36)}`;
        const location = { tableName: base, connectionString: azurite.connectionString };
        const time = new Date(Date.now() - 48 * 3_600_000);
        const ledger = new TableLedger({
          mode: 'required',
          openTable: () => openLedgerTable(location, noIdentity),
          maxQueuedRows: rows + 1,
          operationTimeoutMs: 60_000, // a loaded laptop: the count matters here, not the speed
        });
        await Promise.all(Array.from({ length: rows }, (_, i) => ledger.record(shape.entry(i, time))));
        await ledger.close();
        const service = await openLedgerTableService(location, noIdentity);
        const tables = await service.listPeriodTables();
        let operations: number;
        let entityOperations: number;
        if (method === 'per table') {
          const before = service.operations;
          for (const table of await service.listPeriodTables()) await service.deleteTable(table.name);
          operations = service.operations - before;
          entityOperations = operations;
        } else {
          const counted = await deleteRowByRow(
            azurite.connectionString,
            tables.map((t) => t.name),
          );
          operations = counted.calls;
          entityOperations = counted.calls - counted.batches + counted.deleted;
          await Promise.all(tables.map((table) => service.deleteTable(table.name)));
        }
        const perMillion = (value: number) => Math.round((value * 1_000_000) / rows).toLocaleString('en-US');
        console.log(
          `| ${shape.name} | ${method} | ${operations} | ${perMillion(operations)} | ${perMillion(entityOperations)} |`,
        );
      }
    }
  } finally {
    await azurite.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The per-row way: page through the keys, delete each partition's rows 100 at a time; every REST call counted. */
async function deleteRowByRow(
  connectionString: string,
  tableNames: readonly string[],
): Promise<{ calls: number; batches: number; deleted: number }> {
  let calls = 0;
  let batches = 0;
  let deleted = 0;
  const counter: PipelinePolicy = {
    name: 'countCalls',
    sendRequest: (request, next) => {
      calls += 1;
      return next(request);
    },
  };
  for (const tableName of tableNames) {
    const client = TableClient.fromConnectionString(connectionString, tableName, {
      allowInsecureConnection: true,
      additionalPolicies: [{ policy: counter, position: 'perCall' }],
    });
    const byPartition = new Map<string, string[]>();
    const pages = client
      .listEntities({ queryOptions: { select: ['PartitionKey', 'RowKey'] } })
      .byPage({ maxPageSize: 1_000 });
    for await (const page of pages) {
      for (const entity of page) {
        if (entity.partitionKey === undefined || entity.rowKey === undefined) continue;
        const keys = byPartition.get(entity.partitionKey) ?? [];
        keys.push(entity.rowKey);
        byPartition.set(entity.partitionKey, keys);
      }
    }
    for (const [partitionKey, rowKeys] of byPartition) {
      for (let i = 0; i < rowKeys.length; i += 100) {
        const actions = rowKeys
          .slice(i, i + 100)
          .map((rowKey): TransactionAction => ['delete', { partitionKey, rowKey }]);
        await client.submitTransaction(actions);
        batches += 1;
        deleted += actions.length;
      }
    }
  }
  return { calls, batches, deleted };
}

await main();
