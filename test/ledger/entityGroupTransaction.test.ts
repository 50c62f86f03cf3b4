import { TableClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transactionFailure, transactionRequest } from '../../shared/ledger/entityGroupTransaction.js';
import { openLedgerTable } from '../../shared/ledger/ledgerTable.js';
import { periodTableName } from '../../shared/ledger/ledgerPeriods.js';
import { hourBucketOf, LEDGER_SHARDS, toLedgerRow, type LedgerRow } from '../../shared/ledger/ledgerRows.js';
import { TableLedger } from '../../shared/ledger/tableLedger.js';
import { DependencyUnavailableError } from '../../shared/errors.js';
import type { LedgerEntry } from '../../shared/ledger/ledger.js';
import { startAzuriteFixture, type AzuriteFixture } from '../support/azuriteFixture.js';

// The ledger writes its entity-group transactions itself (entityGroupTransaction.ts) instead of through
// TableClient.submitTransaction. Against a real Azurite: the rows it stores are the rows the SDK stored (same
// columns, same types), awkward keys survive, and a transaction is all or nothing, with the service's reason.

let azurite: AzuriteFixture;
let counter = 0;
const noIdentity = () => Promise.reject(new Error('tests use a connection string'));

beforeAll(async () => {
  azurite = await startAzuriteFixture();
});
afterAll(async () => {
  await azurite?.dispose();
});

const NOW = new Date();

function row(requestId: string, credentialId = 'acme', overrides: Partial<LedgerEntry> = {}): LedgerRow {
  const entry: LedgerEntry = {
    time: NOW,
    flow: 'mixedRealityToken',
    outcome: 'issued',
    status: 200,
    requestId,
    clientIp: '203.0.113.7',
    credentialId,
    keySlot: 2,
    audience: 'https://sts.mixedreality.azure.com',
    jti: `jti-${requestId}`,
    expiresAt: new Date(NOW.getTime() + 86_400_000),
    ...overrides,
  };
  return toLedgerRow(entry, 1, undefined, new Date(NOW.getTime() + 4_000));
}

async function freshTable() {
  counter += 1;
  const tableName = `egt${counter}t${Date.now().toString(36)}`;
  const table = await openLedgerTable({ tableName, connectionString: azurite.connectionString }, noIdentity);
  const client = TableClient.fromConnectionString(
    azurite.connectionString,
    periodTableName(tableName, hourBucketOf(NOW)),
    {
      allowInsecureConnection: true,
    },
  );
  const entities = async () => {
    const found: Record<string, unknown>[] = [];
    for await (const entity of client.listEntities<Record<string, unknown>>()) found.push(entity);
    return found;
  };
  return { table, client, entities };
}

/** An entity as read back, without what the service sets itself (etag, Timestamp). */
function stored(entity: Record<string, unknown>): Record<string, unknown> {
  const { etag: _etag, timestamp: _timestamp, ...rest } = entity;
  return rest;
}

describe('entity-group transactions written by the ledger', () => {
  it('store the same columns with the same types as the SDK, for inserts and upserts', async () => {
    const { table, client, entities } = await freshTable();
    const bySdk = row('sdk-1');
    const byLedger = row('ledger-1');
    const upserted = row('ledger-2', 'acme', { outcome: 'refused', status: 401, reason: 'wrong_key' });
    await client.createTable();
    await client.createEntity({ ...bySdk });
    await table.submitTransaction([byLedger], AbortSignal.timeout(10_000), 'insert');
    await table.submitTransaction([upserted], AbortSignal.timeout(10_000), 'upsert');

    const read = new Map((await entities()).map((entity) => [entity.RequestId, stored(entity)]));
    const sdk = read.get('sdk-1');
    const ours = read.get('ledger-1');
    expect(sdk).toBeDefined();
    expect(Object.keys(ours ?? {}).sort()).toEqual(Object.keys(sdk ?? {}).sort());
    for (const [name, value] of Object.entries(sdk ?? {})) {
      const mine = ours?.[name];
      expect(typeof mine, name).toBe(typeof value);
      if (value instanceof Date) expect(mine).toBeInstanceOf(Date);
    }
    expect(ours).toMatchObject({ Status: 200, KeySlot: 2, Jti: 'jti-ledger-1', Outcome: 'issued' });
    expect((ours?.ExpiresAt as Date).getTime()).toBe(byLedger.ExpiresAt?.getTime());
    expect((ours?.AnswerBy as Date).getTime()).toBe(byLedger.AnswerBy?.getTime());
    expect(read.get('ledger-2')).toMatchObject({ Outcome: 'refused', Status: 401, Reason: 'wrong_key' });
  });

  it('keeps keys with quotes, percent signs and non-ASCII text intact, and an upsert replaces its row', async () => {
    const { table, entities } = await freshTable();
    const awkward = row("it's-100%-ünïcode", "o'brien/acct#1");
    await table.submitTransaction([awkward], AbortSignal.timeout(10_000), 'upsert');
    await table.submitTransaction(
      [{ ...awkward, Outcome: 'abandoned', Status: 503 }],
      AbortSignal.timeout(10_000),
      'upsert',
    );
    const [only, ...others] = await entities();
    expect(others).toEqual([]);
    expect(only).toMatchObject({
      partitionKey: awkward.partitionKey,
      rowKey: awkward.rowKey,
      RequestId: "it's-100%-ünïcode",
      CredentialId: "o'brien/acct#1",
      Outcome: 'abandoned',
      Status: 503,
    });
  });

  it('is all or nothing: an insert of an existing row fails the whole transaction with 409 EntityAlreadyExists', async () => {
    const { table, entities } = await freshTable();
    const rows = Array.from({ length: 100 }, (_, i) => row(`r${i}`));
    await table.submitTransaction([rows[57] as LedgerRow], AbortSignal.timeout(10_000), 'insert');
    const failure = await table.submitTransaction(rows, AbortSignal.timeout(10_000), 'insert').then(
      () => undefined,
      (error: unknown) => error as { statusCode?: number; code?: string; message?: string },
    );
    expect(failure).toMatchObject({ statusCode: 409, code: 'EntityAlreadyExists' });
    expect((await entities()).map((entity) => entity.RequestId)).toEqual(['r57']);
    await table.submitTransaction(
      rows.filter((_, i) => i !== 57),
      AbortSignal.timeout(10_000),
      'insert',
    );
    expect(await entities()).toHaveLength(100);
  });
});

describe('a ledger batch holding one row that already exists (Azurite)', () => {
  it('fails only that caller: the other rows commit, and the existing row is left as it was', async () => {
    const { table, entities } = await freshTable();
    const entryOf = (requestId: string): LedgerEntry => ({
      time: NOW,
      flow: 'mixedRealityToken',
      outcome: 'issued',
      status: 200,
      requestId,
      credentialId: 'acme',
      jti: `jti-${requestId}`,
    });
    // The row a second 'dup' would get, in whichever of the shards the ledger picks, is already there.
    for (let shard = 0; shard < LEDGER_SHARDS; shard += 1) {
      await table.submitTransaction(
        [{ ...toLedgerRow(entryOf('dup'), shard), Jti: 'first' }],
        AbortSignal.timeout(10_000),
        'insert',
      );
    }
    const ledger = new TableLedger({ mode: 'required', openTable: async () => table, warn: () => {} });
    const results = await Promise.allSettled(['a', 'b', 'dup', 'c'].map((id) => ledger.record(entryOf(id))));
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(DependencyUnavailableError);
    const rows = await entities();
    expect(rows.filter((entity) => entity.RequestId === 'dup').map((entity) => entity.Jti)).toEqual(
      Array.from({ length: LEDGER_SHARDS }, () => 'first'),
    );
    expect(
      rows
        .filter((entity) => entity.RequestId !== 'dup')
        .map((entity) => entity.RequestId)
        .sort(),
    ).toEqual(['a', 'b', 'c']);
    await ledger.close();
  });
});

describe('reading the answer to a transaction', () => {
  const request = transactionRequest('https://account.table.core.windows.net/t', [row('a'), row('b')], 'insert');
  const boundary = /boundary=(\S+)/.exec(request.contentType)?.[1] ?? '';

  it('writes one change set with one sub-request per row inside the batch boundary', () => {
    expect(request.body.startsWith(`--${boundary}\r\n`)).toBe(true);
    expect(request.body.endsWith(`--${boundary}--\r\n`)).toBe(true);
    expect(request.body.match(/^POST https:\/\/account\.table\.core\.windows\.net\/t HTTP\/1\.1$/gm)).toHaveLength(2);
  });

  it('acknowledges only an answer that holds a 2xx for every row', () => {
    const answer = (statuses: number[]) =>
      statuses
        .map(
          (status) =>
            `--changesetresponse_x\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 ${status} No Content\r\n`,
        )
        .join('');
    expect(transactionFailure(202, answer([204, 204]), 2)).toBeUndefined();
    expect(transactionFailure(202, answer([204]), 2)).toMatchObject({ statusCode: 202 });
    expect(transactionFailure(202, '', 2)).toMatchObject({ statusCode: 202 });
    expect(transactionFailure(503, '{"odata.error":{"code":"ServerBusy","message":{"value":"busy"}}}', 2)).toEqual({
      statusCode: 503,
      code: 'ServerBusy',
      message: 'busy',
      failedIndex: undefined,
    });
    const refused =
      '--changesetresponse_x\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 409 Conflict\r\n' +
      'Content-Type: application/json\r\n\r\n' +
      '{"odata.error":{"code":"EntityAlreadyExists","message":{"lang":"en-US","value":"1:The specified entity already exists."}}}\r\n';
    expect(transactionFailure(202, refused, 2)).toMatchObject({
      statusCode: 409,
      code: 'EntityAlreadyExists',
      failedIndex: 1,
    });
  });
});
