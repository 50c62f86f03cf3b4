import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import type { MixedRealityAccount } from '../../shared/credentials/records.js';
import { loadConfig } from '../../shared/config.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { KeyVaultTestServer } from '../doubles/keyVaultTestServer.js';
import { createTestCertificateAuthority, loopbackCertificate } from '../doubles/testCertificates.js';
import { startBenchChild } from './benchChild.js';
import type { BenchFixtures } from './benchFixtures.js';
import type { IssueReport } from './vaultTrafficChild.js';
import { spreadAccount } from './spreadAccounts.js';

/**
 * Vault traffic (docs/performance.md#what-it-measures): how many Key Vault reads tokens cost, counted by the Key Vault test server
 * (every authenticated secret read and list page) next to the app's own cache counters. Warm credentials
 * should cost no read at all; a spread of distinct accounts costs what the cache bound allows.
 */

export interface VaultPhase {
  readonly label: string;
  readonly tokens: number;
  readonly non200: number;
  /** Reads the vault served (secret GETs + list pages) during the phase. */
  readonly vaultReads: number;
  readonly vaultReadsPer1000Tokens: number;
  readonly cacheStoreReads: number;
  readonly cacheHits: number;
  readonly cacheMisses: number;
  readonly cacheEvictions: number;
  readonly cacheEntries: number;
  readonly tokensPerSecond: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

export interface VaultTrafficResults {
  readonly accounts: number;
  readonly cacheMaxEntries: number;
  /** What an LRU of `cacheMaxEntries` over a uniform spread of `accounts` must read per 1,000 tokens. */
  readonly expectedSpreadReadsPer1000: number;
  readonly phases: readonly VaultPhase[];
}

const WARM_ACCOUNTS = 100;
const CONCURRENCY = 32;

/** Runs the section: cold then warm over 100 accounts, then a uniform spread over `accounts` (fill, measure). */
export async function measureVaultTraffic(
  fixtures: BenchFixtures,
  options: { accounts: number; spreadTokens: number },
  log: (line: string) => void,
): Promise<VaultTrafficResults> {
  const caDir = await mkdtemp(join(tmpdir(), 'sts-bench-vault-'));
  const ca = await createTestCertificateAuthority(caDir);
  const vault = await new KeyVaultTestServer({ certificate: await loopbackCertificate(ca) }).start();
  const seed = randomBytes(16).toString('hex');
  try {
    const signingKey = await new FileSecretStore(fixtures.storePath).getSecret(vaultLayout.signingKey);
    if (!signingKey) throw new Error('the bench store has no signing key');
    vault.seed(vaultLayout.signingKey, signingKey.value, { contentType: 'application/jwk+json' });
    for (let index = 0; index < options.accounts; index += 1) {
      const { accountId, keys } = spreadAccount(index, seed);
      const record: MixedRealityAccount = {
        kind: 'mixedRealityAccount',
        accountId,
        accountDomain: 'eastus2.mixedreality.azure.com',
        keys,
        enabled: true,
      };
      vault.seed(vaultLayout.mixedRealityAccount(accountId), JSON.stringify(record), {
        contentType: 'application/json',
      });
    }
    // The per-instance read budget (STS_VAULT_READS_PER_SECOND, default 100/s) would turn most cold reads of
    // the spread into 503s; this section measures the cache's bound, so the budget is set to the vault's own.
    // No index refresh during the run: a listing of this vault is 4,000 calls (docs/scale.md), not a per-token cost.
    const env = fixtures.childEnv({
      ...vault.env(),
      NODE_EXTRA_CA_CERTS: ca.certPath,
      STS_VAULT_READS_PER_SECOND: '4000',
      STS_SECRET_INDEX_REFRESH_SECONDS: '3600',
    });
    const cacheMaxEntries = loadConfig(env).secretCache.maxEntries;
    // Ready once the index is listed: 4,000 list calls, minutes on a busy machine.
    const app = await startBenchChild({
      script: 'vaultTrafficChild.ts',
      execArgv: ['--expose-gc'],
      env,
      readyTimeoutMs: 900_000,
    });
    try {
      const phases: VaultPhase[] = [];
      const phase = async (
        label: string,
        pattern: 'cycle' | 'random',
        accounts: number,
        tokens: number,
      ): Promise<VaultPhase> => {
        const before = vault.stats;
        const report = await app.request<IssueReport>(
          'issue',
          { pattern, accounts, tokens, concurrency: CONCURRENCY, seed },
          600_000,
        );
        const after = vault.stats;
        const vaultReads = after.secretReads - before.secretReads + (after.listCalls - before.listCalls);
        const result: VaultPhase = {
          label,
          tokens: report.tokens,
          non200: report.non200,
          vaultReads,
          vaultReadsPer1000Tokens: (1000 * vaultReads) / report.tokens,
          cacheStoreReads: report.cache.storeReads,
          cacheHits: report.cache.hits,
          cacheMisses: report.cache.misses,
          cacheEvictions: report.cache.evictions,
          cacheEntries: report.cache.size,
          tokensPerSecond: (1000 * report.tokens) / report.wallMs,
          rssBytes: report.rssBytes,
          heapUsedBytes: report.heapUsedBytes,
        };
        log(
          `  ${label}: ${result.tokens} tokens, ${vaultReads} vault reads (${result.vaultReadsPer1000Tokens.toFixed(1)} per 1,000), ${result.cacheEntries} cached`,
        );
        phases.push(result);
        return result;
      };
      await phase(`cold: first token of ${WARM_ACCOUNTS} accounts`, 'cycle', WARM_ACCOUNTS, WARM_ACCOUNTS);
      await phase(
        `warm: ${WARM_ACCOUNTS} accounts again`,
        'cycle',
        WARM_ACCOUNTS,
        Math.max(1_000, options.spreadTokens / 10),
      );
      const half = Math.round(options.spreadTokens / 2);
      const spread = options.accounts.toLocaleString('en-US');
      await phase(
        `spread over ${spread} accounts, first ${half.toLocaleString('en-US')} tokens`,
        'random',
        options.accounts,
        half,
      );
      await phase(
        `spread over ${spread} accounts, next ${half.toLocaleString('en-US')} tokens`,
        'random',
        options.accounts,
        half,
      );
      return {
        accounts: options.accounts,
        cacheMaxEntries,
        expectedSpreadReadsPer1000: 1000 * Math.max(0, 1 - cacheMaxEntries / options.accounts),
        phases,
      };
    } finally {
      await app.stop();
    }
  } finally {
    await vault.close();
    await rm(caDir, { recursive: true, force: true });
  }
}
