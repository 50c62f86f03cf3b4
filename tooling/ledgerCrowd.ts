import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import azureFunctions from '@azure/functions';
import { definition as mixedRealityToken } from '../functions/mixedRealityToken.js';
import { loadConfig } from '../shared/config.js';
import { openLedgerTable, type LedgerTable } from '../shared/ledger/ledgerTable.js';
import { TableLedger } from '../shared/ledger/tableLedger.js';
import { FileSecretStore } from '../shared/secrets/fileSecretStore.js';
import { createServices, type StsServices } from '../shared/services.js';
import { startLocalAzurite } from '../tools/localAzurite.js';
import { createMixedRealityAccount } from '../tools/sts/credentials/provisioning.js';

/**
 * `npm run ledger:crowd`: what a crowd of N client addresses costs the ledger, measured (docs/ledger.md#crowd-cost).
 *
 * For each N, every address sends refusals through the real Mixed Reality handler (in process, the address as
 * X-Forwarded-For, default failed-attempt limits) against a real Azurite: made-up account ids, and wrong keys for
 * one real account. All of it falls in one refusal window (60 s, the default), so the transactions counted are
 * what one minute of that crowd costs one instance. Prints one line per N and a JSON summary. Bounded: at most
 * `--per-address` requests per address, and N up to 20,000.
 */

const sizes = [200, 2_000, 20_000];
const perAddress = Number(/^--per-address=(\d{1,3})$/.exec(process.argv[2] ?? '')?.[1] ?? 5);

function addressOf(i: number): string {
  return `10.${Math.floor(i / 65_536) % 256}.${Math.floor(i / 256) % 256}.${i % 256}`;
}

async function refuse(services: StsServices, accountId: string, key: string, clientIp: string): Promise<number> {
  const request = new azureFunctions.HttpRequest({
    method: 'GET',
    url: `https://sts.example/accounts/${accountId}/token?api-version=2019-02-28-preview`,
    headers: { authorization: `Bearer ${accountId}:${key}`, 'x-forwarded-for': clientIp },
    params: { accountId },
  });
  const context = new azureFunctions.InvocationContext({ functionName: mixedRealityToken.name, logHandler: () => {} });
  const response = await mixedRealityToken.handlerFor(services)(request, context);
  return response.status ?? 200;
}

async function main(): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), 'sts-ledger-crowd-'));
  const azurite = await startLocalAzurite({ dataDir: join(folder, 'azurite') });
  const results: Record<string, unknown>[] = [];
  try {
    const storePath = join(folder, 'secrets.json');
    const account = await createMixedRealityAccount(new FileSecretStore(storePath), {
      accountDomain: 'westus2.mixedreality.azure.com',
    });
    for (const n of sizes) {
      const tableName = `crowd${n}t${Date.now().toString(36)}`;
      const config = loadConfig({
        STS_ISSUER: 'https://sts.example/',
        STS_LOCAL_STORE_PATH: storePath,
        STS_LEDGER_MODE: 'required',
        STS_LEDGER_CONNECTION_STRING: azurite.connectionString,
        STS_LEDGER_TABLE: tableName,
        STS_VAULT_READS_PER_SECOND: '4000',
        STS_VAULT_READS_PER_CLIENT_PER_SECOND: '4000',
        STS_FAILED_ATTEMPTS_TRACKED_KEYS: '1000000',
        // The worst case: one aggregate per address (the default, truncated, has one per /24).
        STS_LEDGER_CLIENT_ADDRESS: 'full',
      });
      let transactions = 0;
      let rows = 0;
      /** Transactions of aggregated refusal rows (made-up ids, 429s) and of rows under the real account. */
      let aggregateTransactions = 0;
      let credentialTransactions = 0;
      const counting = async (): Promise<LedgerTable> => {
        const table = await openLedgerTable(config.ledger, () => Promise.reject(new Error('connection string only')));
        return {
          ...table,
          submitTransaction: async (batch, signal, write) => {
            await table.submitTransaction(batch, signal, write);
            transactions += 1;
            rows += batch.length;
            if (batch[0]?.partitionKey.startsWith('refusals|')) aggregateTransactions += 1;
            else credentialTransactions += 1;
          },
        };
      };
      const ledger = new TableLedger({ mode: 'required', openTable: counting, warn: () => {} });
      const services: StsServices = { ...(await createServices(config)), ledger };
      const started = Date.now();
      const statuses = new Map<number, number>();
      let sent = 0;
      for (let round = 0; round < perAddress; round += 1) {
        const wave: Promise<number>[] = [];
        for (let i = 0; i < n; i += 1) {
          // Odd rounds: a wrong key for the one real account; even rounds: a made-up account id.
          const realTarget = round % 2 === 1;
          const accountId = realTarget ? account.accountId : randomUUID();
          const key = realTarget ? Buffer.alloc(32, i % 251).toString('base64') : 'k'.repeat(43) + '=';
          wave.push(refuse(services, accountId, key, addressOf(i)));
          if (wave.length >= 500) {
            for (const status of await Promise.all(wave.splice(0)))
              statuses.set(status, (statuses.get(status) ?? 0) + 1);
          }
        }
        for (const status of await Promise.all(wave)) statuses.set(status, (statuses.get(status) ?? 0) + 1);
        sent += n;
      }
      await ledger.close();
      const seconds = (Date.now() - started) / 1000;
      const result = {
        addresses: n,
        refusals: sent,
        statuses: Object.fromEntries(statuses),
        rows,
        transactions,
        aggregateTransactions,
        credentialTransactions,
        refusalsAggregated: ledger.stats.refusalsAggregated,
        seconds: Number(seconds.toFixed(1)),
      };
      results.push(result);
      console.log(
        `N=${n}: ${sent} refusals (${[...statuses].map(([s, c]) => `${c}x${s}`).join(', ')}) in ${result.seconds} s ` +
          `-> ${rows} rows in ${transactions} transactions (one refusal window): ${aggregateTransactions} of aggregated ` +
          `refusals, ${credentialTransactions} of wrong-key rows under the real account`,
      );
    }
    console.log(JSON.stringify({ perAddress, results }));
  } finally {
    await azurite.stop();
    await rm(folder, { recursive: true, force: true });
  }
}

await main();
