import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import azureFunctions, { type HttpResponseInit } from '@azure/functions';
import type { CachedSecretStore, SecretCacheStats } from '../../shared/secrets/cachedSecretStore.js';
import { importCompiledDefinitions } from '../../tools/localHost/compiledFunctions.js';
import { benchAppRoot } from './appSnapshot.js';
import { answerParent, failStart, type ParentRequest } from './parentChannel.js';
import { spreadAccount } from './spreadAccounts.js';

/**
 * The app's side of the vault-traffic section (docs/performance.md#what-it-measures): the compiled Mixed Reality handler, configured
 * for Key Vault (the parent runs the Key Vault test server and counts the reads it serves), called in
 * process for many accounts. Answers `issue` with what the secret cache did and the memory held afterwards.
 */

const { HttpRequest, InvocationContext } = azureFunctions;

export interface IssueReport {
  readonly tokens: number;
  readonly non200: number;
  readonly wallMs: number;
  /** Cache counters over this call (differences), and its size afterwards. */
  readonly cache: SecretCacheStats;
  /** After a full GC. */
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

const definitions = new Map((await importCompiledDefinitions(benchAppRoot()).catch(failStart)).map((d) => [d.name, d]));
const mixedReality = definitions.get('mixedRealityToken');
if (!mixedReality) failStart(new Error('no compiled mixedRealityToken function'));
// The compiled services module: the same instance the compiled handlers use.
const services = (await import(
  pathToFileURL(join(benchAppRoot(), 'dist', 'shared', 'services.js')).href
)) as typeof import('../../shared/services.js');

async function cacheStats(): Promise<SecretCacheStats> {
  const { secrets } = await services.getServices();
  if (!('stats' in secrets)) throw new Error('the secret store is not the Key Vault cache: is KEY_VAULT_URL set?');
  return (secrets as CachedSecretStore).stats();
}

async function issue(request: ParentRequest): Promise<IssueReport> {
  const { pattern, accounts, tokens, concurrency, seed } = request as unknown as {
    pattern: 'cycle' | 'random';
    accounts: number;
    tokens: number;
    concurrency: number;
    seed: string;
  };
  const before = await cacheStats();
  const started = performance.now();
  let next = 0;
  let non200 = 0;
  const worker = async (): Promise<void> => {
    while (next < tokens) {
      const n = next++;
      const index = pattern === 'cycle' ? n % accounts : Math.floor(Math.random() * accounts);
      const { accountId, keys } = spreadAccount(index, seed);
      const httpRequest = new HttpRequest({
        method: 'GET',
        url: `http://127.0.0.1:7071/accounts/${accountId}/token`,
        headers: { authorization: `Bearer ${accountId}:${keys[n % 2]}` },
        params: { accountId },
      });
      const context = new InvocationContext({
        invocationId: randomUUID(),
        functionName: 'mixedRealityToken',
        logHandler: () => {},
      });
      const response = (await mixedReality!.handler(httpRequest, context)) as HttpResponseInit;
      if ((response.status ?? 200) !== 200) non200 += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallMs = performance.now() - started;
  const after = await cacheStats();
  const cache = Object.fromEntries(
    Object.entries(after)
      .filter(([, value]) => typeof value === 'number')
      .map(([name, value]) => [name, name === 'size' ? value : value - (before[name as keyof SecretCacheStats] ?? 0)]),
  ) as unknown as SecretCacheStats;
  (globalThis as { gc?: () => void }).gc?.();
  const memory = process.memoryUsage();
  return { tokens, non200, wallMs, cache, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed };
}

// The vault's name index (docs/key-vault.md#index) is listed once before any phase: its cost is a listing per
// refresh interval, not a per-token read, and docs/scale.md accounts for it (4,000 list calls for this
// 100,000-secret vault, which would otherwise run on into the warm phase).
const { secrets } = await services.getServices();
if ('index' in secrets) await (secrets as { index: { refreshNow(): Promise<void> } }).index.refreshNow();

answerParent({ pid: process.pid }, { issue });
