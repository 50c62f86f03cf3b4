import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type LedgerAddressMode } from '../../shared/config.js';
import { LEDGER_ADDRESS_KEY_SECRET, storedAddress, truncatedAddress } from '../../shared/ledger/ledgerAddress.js';
import { TableLedger } from '../../shared/ledger/tableLedger.js';
import { createServices } from '../../shared/services.js';
import { closeLoopbackClients, flowRequest, loopbackClient, sendHttp } from '../hardening/hardeningSupport.js';
import { startAzuriteFixture, type AzuriteFixture } from '../support/azuriteFixture.js';
import { readLedgerEntities } from '../support/ledgerTables.js';
import { startTestHost } from '../support/localHostFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';

// STS_LEDGER_CLIENT_ADDRESS over HTTP against Azurite: what each mode stores, and that the failed-attempt
// limits still count the full address whatever is stored. Distinct loopback addresses stand in for clients.

let azurite: AzuriteFixture;
let credentials: TestCredentials;
let tableCounter = 0;
const ADDRESS_KEY = 'k'.repeat(16) + 'ledger-address-key-for-tests';

beforeAll(async () => {
  [azurite, credentials] = await Promise.all([startAzuriteFixture(), createTestCredentials()]);
  await credentials.store.setSecret(LEDGER_ADDRESS_KEY_SECRET, ADDRESS_KEY);
}, 90_000);
afterAll(async () => {
  await closeLoopbackClients();
  await azurite?.dispose();
  await credentials?.remove();
});

/** The host with the ledger on a fresh table of the Azurite, storing addresses as `mode` says. */
async function hostStoring(mode: LedgerAddressMode, env: Record<string, string> = {}) {
  tableCounter += 1;
  const tableName = `addr${tableCounter}t${Date.now().toString(36)}`;
  const config = loadConfig({
    STS_ISSUER: 'https://sts.test.example/',
    STS_LOCAL_STORE_PATH: credentials.storePath,
    STS_LEDGER_MODE: 'required',
    STS_LEDGER_CONNECTION_STRING: azurite.connectionString,
    STS_LEDGER_TABLE: tableName,
    STS_LEDGER_CLIENT_ADDRESS: mode,
    ...env,
  });
  const services = await createServices(config);
  const host = await startTestHost({ services });
  return {
    host,
    // Refusals that prove no credential are aggregated per address and window (docs/ledger.md#refusals): the
    // window is ended first, so its row is written.
    rows: async () => {
      await (services.ledger as TableLedger).flushRefusals();
      return readLedgerEntities(azurite.connectionString, tableName);
    },
    async close() {
      await host.close();
      await services.ledger.close();
    },
  };
}

const CLIENT = '127.0.41.7';

describe('STS_LEDGER_CLIENT_ADDRESS: what a row stores of the client address', () => {
  const expected: Record<LedgerAddressMode, string> = {
    full: CLIENT,
    truncated: '127.0.41.0/24',
    'keyed-hash': `hmac:${createHmac('sha256', ADDRESS_KEY).update(CLIENT).digest().subarray(0, 16).toString('base64url')}`,
  };

  it.each(Object.keys(expected) as LedgerAddressMode[])(
    '%s',
    async (mode) => {
      const app = await hostStoring(mode);
      try {
        const from = loopbackClient(CLIENT);
        expect((await sendHttp(app.host.url, flowRequest('issueToken', credentials), from)).status).toBe(200);
        // A wrong subscription key names no credential: its aggregated row is kept under the (stored form of the)
        // address, which leads its RowKey in a refusals partition.
        expect(
          (await sendHttp(app.host.url, flowRequest('issueToken', credentials, 'x'.repeat(32)), from)).status,
        ).toBe(401);

        const rows = await app.rows();
        expect(rows.map((row) => [row.Outcome, row.ClientIp]).sort()).toEqual([
          ['issued', expected[mode]],
          ['refused', expected[mode]],
        ]);
        const refusal = rows.find((row) => row.Outcome === 'refused');
        expect(String(refusal?.partitionKey)).toMatch(/^refusals\|/);
        expect(String(refusal?.rowKey)).toMatch(new RegExp(`^${escape(encodeURIComponent(expected[mode]))}\\|`));
        expect(refusal?.Count).toBe(1);
        if (mode !== 'full') expect(JSON.stringify(rows)).not.toContain(CLIENT);
      } finally {
        await app.close();
      }
    },
    60_000,
  );

  it('the failed-attempt limits count the full address, whatever is stored', async () => {
    const app = await hostStoring('truncated', { STS_FAILED_ATTEMPTS_PER_WINDOW: '3' });
    try {
      const guesser = loopbackClient('127.0.42.7');
      const neighbour = loopbackClient('127.0.42.8'); // same /24, so the same stored value
      const statuses: number[] = [];
      for (let i = 0; i < 4; i += 1)
        statuses.push(
          (await sendHttp(app.host.url, flowRequest('issueToken', credentials, `${'y'.repeat(31)}${i}`), guesser))
            .status,
        );
      expect(statuses).toEqual([401, 401, 401, 429]);
      expect(
        (await sendHttp(app.host.url, flowRequest('issueToken', credentials, 'z'.repeat(32)), neighbour)).status,
      ).toBe(401);
      expect((await sendHttp(app.host.url, flowRequest('issueToken', credentials), neighbour)).status).toBe(200);
    } finally {
      await app.close();
    }
  }, 60_000);

  it('keyed-hash without its key: no token leaves without a row (503), and the address is never stored in the clear', async () => {
    const emptyStore = await createTestCredentials();
    try {
      tableCounter += 1;
      const tableName = `nokey${tableCounter}t${Date.now().toString(36)}`;
      const config = loadConfig({
        STS_ISSUER: 'https://sts.test.example/',
        STS_LOCAL_STORE_PATH: emptyStore.storePath,
        STS_LEDGER_MODE: 'required',
        STS_LEDGER_CONNECTION_STRING: azurite.connectionString,
        STS_LEDGER_TABLE: tableName,
        STS_LEDGER_CLIENT_ADDRESS: 'keyed-hash',
      });
      const warnings: string[] = [];
      const services = await createServices(config, undefined, (line) => warnings.push(line));
      const host = await startTestHost({ services });
      try {
        const answer = await sendHttp(host.url, flowRequest('issueToken', emptyStore), loopbackClient(CLIENT));
        expect(answer.status).toBe(503);
        expect(answer.headers.get('retry-after')).toBeTruthy();
        expect(JSON.stringify(await readLedgerEntities(azurite.connectionString, tableName))).not.toContain(CLIENT);
        // The operator is told which secret is missing; neither the client's address nor its key is in the line.
        expect(warnings).toEqual([
          'ledger (required): 1 ledger row(s) not committed: ' +
            'Error: secret sts-ledger-address-key is missing or shorter than 32 characters',
        ]);
      } finally {
        await host.close();
        await services.ledger.close();
      }
    } finally {
      await emptyStore.remove();
    }
  }, 60_000);
});

describe('truncation', () => {
  it('keeps the IPv4 /24 and the IPv6 /48', () => {
    expect(truncatedAddress('203.0.113.7')).toBe('203.0.113.0/24');
    expect(truncatedAddress('2001:db8:1:2::7')).toBe('2001:db8:1::/48');
    expect(truncatedAddress('2001:0db8:00a0:ffff:1:2:3:4')).toBe('2001:db8:a0::/48');
    expect(truncatedAddress('2001:db8::1')).toBe('2001:db8::/48');
    expect(truncatedAddress('::1')).toBe('::/48');
    expect(truncatedAddress('64:ff9b::203.0.113.7')).toBe('64:ff9b::/48');
    expect(truncatedAddress('not-an-address')).toBeUndefined();
    expect(storedAddress('203.0.113.7', 'full')).toBe('203.0.113.7');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
