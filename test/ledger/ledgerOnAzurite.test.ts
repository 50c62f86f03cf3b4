import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definition as issueLimitedAccessToken } from '../../functions/issueLimitedAccessToken.js';
import { definition as issueToken } from '../../functions/issueToken.js';
import { definition as mixedRealityToken } from '../../functions/mixedRealityToken.js';
import { definition as wrapToken } from '../../functions/wrapToken.js';
import { loadConfig } from '../../shared/config.js';
import { createLedger } from '../../shared/ledger/createLedger.js';
import type { LedgerEntry } from '../../shared/ledger/ledger.js';
import type { StoredLedgerEntry } from '../../shared/ledger/ledgerRows.js';
import { openLedgerTable, type LedgerTable } from '../../shared/ledger/ledgerTable.js';
import { queryLedger, type LedgerQuery } from '../../tools/sts/ledger/queryLedger.js';
import { TableLedger, type TableLedgerOptions } from '../../shared/ledger/tableLedger.js';
import type { StsServices } from '../../shared/services.js';
import {
  FROZEN_NOW,
  startFlowHarness,
  TEST_ENV,
  type FlowHarness,
  type InProcessRequest,
  type ObservedResponse,
} from '../flows/flowHarness.js';
import type { StsFunctionDefinition } from '../../shared/app/stsFunction.js';
import { startAzuriteFixture, type AzuriteFixture } from '../support/azuriteFixture.js';
import { readLedgerEntities } from '../support/ledgerTables.js';

// The issuance ledger against a real Azurite (started here on a free port): the rows every flow writes,
// group commit under concurrency, and what each mode does when Azurite goes away mid-run.

let azurite: AzuriteFixture;
let harness: FlowHarness;
let tableCounter = 0;

beforeAll(async () => {
  [azurite, harness] = await Promise.all([startAzuriteFixture(), startFlowHarness()]);
});
afterAll(async () => {
  await harness?.close();
  await azurite?.dispose();
});

const CLIENT_IP = '203.0.113.7';
const noIdentity = () => Promise.reject(new Error('tests use a connection string'));

/** A fresh table per test, so tests never see each other's rows. */
function newTableName(): string {
  tableCounter += 1;
  return `ledger${tableCounter}t${Date.now().toString(36)}`;
}

interface Fixture {
  readonly ledger: TableLedger;
  readonly tableName: string;
  readonly table: LedgerTable;
  /** Request ids whose transaction the table service has acknowledged, in commit order. */
  readonly committedRequestIds: Set<string>;
  readonly warnings: string[];
}

/** A TableLedger on a new table of the Azurite, observing which rows each committed transaction held. */
async function ledgerOnAzurite(options: Partial<TableLedgerOptions> = {}): Promise<Fixture> {
  const tableName = newTableName();
  const table = await openLedgerTable({ tableName, connectionString: azurite.connectionString }, noIdentity);
  const committedRequestIds = new Set<string>();
  const warnings: string[] = [];
  const observed: LedgerTable = {
    ...table,
    submitTransaction: async (rows, signal, write) => {
      await table.submitTransaction(rows, signal, write);
      for (const row of rows) committedRequestIds.add(row.RequestId);
    },
  };
  const ledger = new TableLedger({
    mode: 'required',
    openTable: async () => observed,
    warn: (message) => warnings.push(message),
    operationTimeoutMs: 3_000,
    ...options,
  });
  return { ledger, tableName, table, committedRequestIds, warnings };
}

/** Every entity of a ledger (all its hour tables), exactly as stored. */
function rawEntities(tableName: string): Promise<Record<string, unknown>[]> {
  return readLedgerEntities(azurite.connectionString, tableName);
}

function rowsOf(
  table: LedgerTable,
  query: Partial<LedgerQuery> & ({ credentialId: string } | { clientIp: string }),
): Promise<StoredLedgerEntry[]> {
  return queryLedger(table, {
    since: new Date(FROZEN_NOW.getTime() - 60_000),
    until: new Date(FROZEN_NOW.getTime() + 60_000),
    limit: 10_000,
    ...query,
  });
}

/** The harness's services with the ledger under test: what {@link invoke} runs the handlers with. */
let servicesWithLedger: StsServices | undefined;
function useLedger(ledger: TableLedger): void {
  servicesWithLedger = { ...harness.services, ledger };
}

function invoke(definition: StsFunctionDefinition, request: InProcessRequest): Promise<ObservedResponse> {
  if (!servicesWithLedger) throw new Error('call useLedger first');
  return harness.invoke(definition, request, servicesWithLedger);
}

const MIXED_REALITY_PATH = (accountId: string) => `/accounts/${accountId}/token`;

function speechRequest(key: string): Promise<ObservedResponse> {
  return invoke(issueToken, {
    method: 'POST',
    path: '/sts/v1.0/issueToken',
    headers: { 'Ocp-Apim-Subscription-Key': key, 'X-Forwarded-For': CLIENT_IP },
  });
}

// The tests of this block share one table: each one reads only the rows of its own outcome, so that the
// refusals test (which refuses the same credentials) may run before or after the others.
describe('every flow writes its row (ledger configured from the environment, as in production)', () => {
  let fixtureTable: LedgerTable;
  let tableName: string;
  let ledger: TableLedger;

  beforeAll(async () => {
    tableName = newTableName();
    const config = loadConfig({
      ...TEST_ENV,
      STS_LEDGER_MODE: 'required',
      STS_LEDGER_CONNECTION_STRING: azurite.connectionString,
      STS_LEDGER_TABLE: tableName,
      // The rows below are compared with the address the requests came from.
      STS_LEDGER_CLIENT_ADDRESS: 'full',
    });
    const created = createLedger(config, { credential: noIdentity });
    expect(created).toBeInstanceOf(TableLedger);
    ledger = created as TableLedger;
    useLedger(ledger);
    fixtureTable = await openLedgerTable(config.ledger, noIdentity);
  });
  afterAll(() => ledger.close());

  it('Mixed Reality: the account, key slot 2, audience, jti and expiry, client IP and request id', async () => {
    const { accountId, keys } = harness.credentials.mixedReality.account;
    const response = await invoke(mixedRealityToken, {
      method: 'GET',
      path: MIXED_REALITY_PATH(accountId),
      params: { accountId },
      headers: {
        Authorization: `Bearer ${accountId}:${keys[1]}`,
        'X-Forwarded-For': `198.51.100.20, ${CLIENT_IP}:50123`,
      },
    });
    expect(response.status).toBe(200);
    const token = /"AccessToken":"([^"]+)"/.exec(response.text)?.[1] ?? '';
    const { payload } = await harness.verifyJwt(token, TEST_ENV.STS_AUDIENCE_MIXED_REALITY);

    const rows = await rowsOf(fixtureTable, { credentialId: accountId, outcome: 'issued' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      time: FROZEN_NOW,
      flow: 'mixedRealityToken',
      outcome: 'issued',
      status: 200,
      credentialId: accountId,
      keySlot: 2,
      audience: TEST_ENV.STS_AUDIENCE_MIXED_REALITY,
      jti: payload.jti,
      expiresAt: new Date((payload.exp ?? 0) * 1000),
      clientIp: CLIENT_IP,
      requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
  });

  it('Cognitive issueToken: the resource name, key slot 1, regional audience', async () => {
    const response = await speechRequest(harness.credentials.cognitive.speech.keys[0]);
    expect(response.status).toBe(200);
    const { payload } = await harness.verifyJwt(response.text, 'urn:ms.speechservices.eastus');
    const rows = await rowsOf(fixtureTable, { credentialId: 'speech-test', outcome: 'issued' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      flow: 'issueToken',
      outcome: 'issued',
      status: 200,
      credentialId: 'speech-test',
      keySlot: 1,
      audience: 'urn:ms.speechservices.eastus',
      jti: payload.jti,
      expiresAt: new Date((payload.exp ?? 0) * 1000),
      clientIp: CLIENT_IP,
      requestId: response.headers.get('apim-request-id'),
    });
  });

  it('Cognitive issueLimitedAccessToken: the target resource as scope and the granted feature flags', async () => {
    const face = harness.credentials.cognitive.isvFace;
    const target =
      '/subscriptions/f55b33ec-371d-415c-89d3-9e3fd27c7dbd/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/target-face';
    const response = await invoke(issueLimitedAccessToken, {
      method: 'POST',
      path: '/sts/v1.0/issueLimitedAccessToken?expiredTime=300',
      headers: {
        'Content-Type': 'application/json',
        'Ocp-Apim-Subscription-Key': face.keys[0],
        'X-Forwarded-For': CLIENT_IP,
      },
      body: JSON.stringify({ targetAzureResourceId: target, featureFlags: ['Face.Identification'] }),
    });
    expect(response.status, response.text).toBe(200);
    const { payload } = await harness.verifyJwt(response.text, 'urn:ms.speechservices.westus', 'limitedAccess');
    const rows = await rowsOf(fixtureTable, { credentialId: 'isv-face', outcome: 'issued' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      flow: 'issueLimitedAccessToken',
      outcome: 'issued',
      status: 200,
      keySlot: 1,
      scope: target,
      featureFlags: ['Face.Identification'],
      jti: payload.jti,
      expiresAt: new Date((FROZEN_NOW.getTime() / 1000 + 300) * 1000),
      requestId: response.headers.get('apim-request-id'),
    });
  });

  it('WRAP: namespace/issuer as the credential, the scope, the expiry', async () => {
    const scope = 'http://contoso.servicebus.windows.net/';
    const response = await invoke(wrapToken, {
      method: 'POST',
      path: '/WRAPv0.9/',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Forwarded-For': CLIENT_IP },
      body: `wrap_name=owner&wrap_password=${encodeURIComponent(harness.credentials.wrap.owner.keys[0])}&wrap_scope=${encodeURIComponent(scope)}`,
    });
    expect(response.status, response.text).toBe(200);
    const swt = new URLSearchParams(response.text).get('wrap_access_token') ?? '';
    const expiresOn = Number(new URLSearchParams(swt).get('ExpiresOn'));
    expect(expiresOn).toBeGreaterThan(FROZEN_NOW.getTime() / 1000);
    const rows = await rowsOf(fixtureTable, { credentialId: 'contoso/owner', outcome: 'issued' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      flow: 'wrapToken',
      outcome: 'issued',
      status: 200,
      credentialId: 'contoso/owner',
      keySlot: 1,
      scope,
      expiresAt: new Date(expiresOn * 1000),
      requestId: response.headers.get('request-id'),
    });
  });

  it('records refused attempts with their reason and never the presented key', async () => {
    const wrongKeys = {
      mixedReality: Buffer.alloc(32, 7).toString('base64'),
      cognitive: 'f'.repeat(32),
      wrap: 'WrongPassword0123456789abcdefXYZ=',
    };
    const { accountId } = harness.credentials.mixedReality.account;
    const refusedMr = await invoke(mixedRealityToken, {
      method: 'GET',
      path: MIXED_REALITY_PATH(accountId),
      params: { accountId },
      headers: { Authorization: `Bearer ${accountId}:${wrongKeys.mixedReality}`, 'X-Forwarded-For': CLIENT_IP },
    });
    const refusedCognitive = await speechRequest(wrongKeys.cognitive);
    const refusedWrap = await invoke(wrapToken, {
      method: 'POST',
      path: '/WRAPv0.9/',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Forwarded-For': CLIENT_IP },
      body: `wrap_name=owner&wrap_password=${encodeURIComponent(wrongKeys.wrap)}&wrap_scope=${encodeURIComponent('http://contoso.servicebus.windows.net/')}`,
    });
    expect([refusedMr.status, refusedCognitive.status, refusedWrap.status]).toEqual([401, 401, 401]);
    // The unknown key's refusal is aggregated per address and window (docs/ledger.md#refusals): end the window.
    await ledger.flushRefusals();

    const mr = await rowsOf(fixtureTable, { credentialId: accountId, outcome: 'refused' });
    expect(mr).toEqual([
      expect.objectContaining({
        flow: 'mixedRealityToken',
        status: 401,
        reason: 'wrong_key',
        clientIp: CLIENT_IP,
        keySlot: undefined,
        jti: undefined,
      }),
    ]);
    // A wrong subscription key names no resource: the refusal is kept under the client IP.
    const cognitive = await rowsOf(fixtureTable, { clientIp: CLIENT_IP, outcome: 'refused' });
    expect(cognitive).toEqual([
      expect.objectContaining({
        flow: 'issueToken',
        status: 401,
        reason: 'unknown_credential',
        credentialId: undefined,
        count: 1,
      }),
    ]);
    const wrap = await rowsOf(fixtureTable, { credentialId: 'contoso/owner', outcome: 'refused' });
    expect(wrap).toEqual([expect.objectContaining({ flow: 'wrapToken', status: 401, reason: 'wrong_key' })]);

    // Nothing stored anywhere in the table holds a key, presented or real.
    const stored = JSON.stringify(await rawEntities(tableName));
    const realKeys = [
      ...harness.credentials.mixedReality.account.keys,
      ...harness.credentials.cognitive.speech.keys,
      ...harness.credentials.cognitive.isvFace.keys,
      ...harness.credentials.wrap.owner.keys,
    ];
    for (const key of [...Object.values(wrongKeys), ...realKeys]) {
      expect(stored).not.toContain(key);
      expect(stored).not.toContain(encodeURIComponent(key));
    }
  });
});

describe('group commit on a real table', () => {
  it('writes 200 concurrent rows in a handful of transactions, acknowledging each only after its own commit', async () => {
    const { ledger, table, committedRequestIds } = await ledgerOnAzurite();
    const entries: LedgerEntry[] = Array.from({ length: 200 }, (_, i) => ({
      time: FROZEN_NOW,
      flow: 'issueToken',
      outcome: 'issued',
      status: 200,
      requestId: randomUUID(),
      credentialId: i % 2 === 0 ? 'busy-a' : 'busy-b',
      keySlot: 1,
      jti: randomUUID(),
    }));
    const acknowledgedAfterCommit = await Promise.all(
      entries.map((entry) => ledger.record(entry).then(() => committedRequestIds.has(entry.requestId))),
    );
    expect(acknowledgedAfterCommit.every(Boolean)).toBe(true);
    // Two credentials, 100 rows each: one full transaction per credential instead of 200 writes.
    expect(ledger.stats.transactions).toBeLessThanOrEqual(4);
    expect(ledger.stats.rowsCommitted).toBe(200);

    const a = await rowsOf(table, { credentialId: 'busy-a' });
    const b = await rowsOf(table, { credentialId: 'busy-b' });
    expect(a.map((row) => row.requestId).sort()).toEqual(
      entries
        .filter((_, i) => i % 2 === 0)
        .map((e) => e.requestId)
        .sort(),
    );
    expect(b).toHaveLength(100);
    await ledger.close();
  });

  it('spreads successive batches of one busy credential over the shards and reads them back in one query', async () => {
    const { ledger, tableName, table } = await ledgerOnAzurite();
    for (let round = 0; round < 4; round += 1) {
      await Promise.all(
        Array.from({ length: 10 }, () =>
          ledger.record({
            time: FROZEN_NOW,
            flow: 'wrapToken',
            outcome: 'issued',
            status: 200,
            requestId: randomUUID(),
            credentialId: 'contoso/owner',
          }),
        ),
      );
    }
    const partitions = new Set((await rawEntities(tableName)).map((entity) => entity.partitionKey));
    expect(partitions.size).toBe(4);
    expect(await rowsOf(table, { credentialId: 'contoso/owner' })).toHaveLength(40);
    await ledger.close();
  });
});

describe('Azurite stopped mid-run', () => {
  it('required: answers 503 with Retry-After in the flow shape, and every acknowledged row survives', async () => {
    const { ledger, table } = await ledgerOnAzurite({ mode: 'required', operationTimeoutMs: 1_500 });
    useLedger(ledger);
    const key = harness.credentials.cognitive.speech.keys[0];
    const answers: {
      status: number;
      requestId: string | null;
      retryAfter: string | null;
      text: string;
      afterStop: boolean;
    }[] = [];
    // Four clients keep sending while Azurite is stopped under them. Bounded by counts, not by time: each client
    // sends at most 50 requests before the stop (then waits for it) and at most 50 after it.
    let stopped = false;
    let markStopped: () => void = () => {};
    const stop = new Promise<void>((done) => (markStopped = done));
    // Azurite is stopped once 20 rows are acknowledged (or a client has used up its requests before the stop).
    let markReadyToStop: () => void = () => {};
    const readyToStop = new Promise<void>((done) => (markReadyToStop = done));
    const worker = async (): Promise<void> => {
      let before = 0;
      let after = 0;
      while (after < 50 && answers.filter((a) => a.afterStop).length < 40) {
        if (!stopped && before === 50) {
          markReadyToStop();
          await stop;
        }
        const wasStopped = stopped;
        if (wasStopped) after += 1;
        else before += 1;
        const response = await speechRequest(key);
        answers.push({
          status: response.status,
          requestId: response.headers.get('apim-request-id'),
          retryAfter: response.headers.get('retry-after'),
          text: response.text,
          afterStop: wasStopped,
        });
        if (answers.filter((a) => a.status === 200).length >= 20) markReadyToStop();
      }
    };
    const workers = Promise.all([worker(), worker(), worker(), worker()]);
    await readyToStop;
    await azurite.stop();
    stopped = true;
    markStopped();
    await workers;

    const acknowledged = answers.filter((a) => a.status === 200).map((a) => a.requestId ?? '');
    expect(acknowledged.length).toBeGreaterThanOrEqual(20);
    const afterStop = answers.filter((a) => a.afterStop);
    expect(afterStop.length).toBeGreaterThan(0);
    for (const answer of afterStop) {
      expect(answer.status).toBe(503);
      expect(answer.retryAfter).toBe('5');
      expect(JSON.parse(answer.text)).toEqual({
        error: { code: '503', message: 'The token service is temporarily unavailable. Retry later.' },
      });
    }
    expect(answers.every((a) => a.status === 200 || a.status === 503)).toBe(true);

    await azurite.restart();
    const stored = new Set((await rowsOf(table, { credentialId: 'speech-test' })).map((row) => row.requestId));
    for (const requestId of acknowledged) expect(stored.has(requestId)).toBe(true);

    // And it recovers by itself once the table is back.
    const recovered = await speechRequest(key);
    expect(recovered.status).toBe(200);
    await ledger.close();
  });

  it('best-effort: keeps issuing, and warns once without secrets', async () => {
    const { ledger, warnings } = await ledgerOnAzurite({ mode: 'best-effort', operationTimeoutMs: 1_500 });
    useLedger(ledger);
    const key = harness.credentials.cognitive.speech.keys[0];
    expect((await speechRequest(key)).status).toBe(200);
    await azurite.stop();
    try {
      for (let i = 0; i < 5; i += 1) {
        const response = await speechRequest(key);
        expect(response.status).toBe(200);
        await harness.verifyJwt(response.text, 'urn:ms.speechservices.eastus');
      }
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/^ledger \(best-effort\): 1 ledger row\(s\) not committed/);
      const accountKey = /AccountKey=([^;]+)/.exec(azurite.connectionString)?.[1] ?? 'missing';
      expect(warnings[0]).not.toContain(accountKey);
      expect(warnings[0]).not.toContain(key);
    } finally {
      await azurite.restart();
    }
    await ledger.close();
  });
});
