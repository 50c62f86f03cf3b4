import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { LedgerMode } from '../../shared/config.js';
import type { MixedRealityAccount } from '../../shared/credentials/records.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { generateSigningJwk } from '../../shared/tokens/signingKeyMaterial.js';
import { startLocalAzurite, type LocalAzurite } from '../../tools/localAzurite.js';
import { createTestCertificateAuthority } from '../doubles/testCertificates.js';
import { startHostChild, type HostChild } from '../load/localHostChild.js';
import { startVaultProcess } from './vaultProcess.js';
import { tokenFlowNames } from '../../shared/flowCatalogue.js';
import type { DemoCredentials } from '../../tools/demoCredentials.js';
import { demoRequests } from '../flows/demoRequests.js';

/**
 * The scale simulation (docs/scale.md#simulation): app instances as separate processes (the local host, as
 * `npm run host` runs it) sharing one Key Vault test server (in a process of its own) that throttles as Key
 * Vault does (a transaction budget per sliding 10 s window, scaled down to this machine) and one Azurite ledger. Honest clients present
 * right keys of many accounts to every instance; fresh instances join mid-run (cold: their first request for
 * any credential is a first read); a crowd of attacker addresses presents made-up credentials in three flows
 * at the same time. Everything runs on loopback; every phase is bounded in time.
 */

export interface ScaleOptions {
  /** Instances started at the beginning. */
  readonly instances: number;
  /**
   * Cold instances joining a third of the way in: started with the others (process start is not what is
   * measured) but sent nothing until they join, so their name index and cache are empty when they do.
   */
  readonly lateInstances: number;
  readonly seconds: number;
  /** Attacker source addresses, 127.0.60.1 upwards (wrapping into 127.0.61.x). */
  readonly attackerAddresses: number;
  /** Attacker requests in flight at once. */
  readonly attackerConcurrency: number;
  /** Honest accounts in the vault. */
  readonly credentials: number;
  /** Honest clients, each one request at a time, pausing `honestPauseMs` between requests. */
  readonly honestClients: number;
  readonly honestPauseMs: number;
  /** The vault's transaction budget per 10 s (Azure: 4,000 per vault). */
  readonly vaultBudget: number;
  /** The instances' STS_SECRET_INDEX_REFRESH_SECONDS. */
  readonly indexRefreshSeconds: number;
  readonly ledger: LedgerMode;
}

export interface InstanceReport {
  readonly label: string;
  readonly joinedAtSeconds: number;
  readonly honestRequests: number;
  readonly honestOk: number;
  /** RSS when the instance joined the run (before any traffic), at its peak, and at the end. */
  readonly joinRssMiB: number;
  readonly maxRssMiB: number;
  readonly finalRssMiB: number;
}

export interface ScaleReport {
  readonly options: ScaleOptions;
  readonly durationSeconds: number;
  readonly honest: {
    readonly requests: number;
    readonly ok: number;
    readonly successRate: number;
    readonly status503: number;
    readonly otherFailures: Readonly<Record<string, number>>;
    readonly p50Ms: number;
    readonly p99Ms: number;
    readonly maxMs: number;
    /** Right keys presented to an instance for the first time (a first read on that instance). */
    readonly firstOnInstance: number;
    readonly firstOnInstanceP99Ms: number;
  };
  readonly attack: {
    readonly requests: number;
    readonly perSecond: number;
    readonly statuses: Readonly<Record<string, number>>;
  };
  readonly vault: {
    readonly budgetPer10s: number;
    readonly secretReads: number;
    readonly listCalls: number;
    /** Transactions (reads + list pages) per second: mean over the run and the busiest 10 s window. */
    readonly transactionsPerSecond: number;
    readonly busiest10sTransactions: number;
    readonly throttled: number;
    /** Reads of names the vault does not hold: must be 0. */
    readonly readsOfUnknownNames: number;
  };
  readonly instances: readonly InstanceReport[];
  /** Lines the instances wrote to stderr (their warnings), by gist, with counts. */
  readonly instanceWarnings: Readonly<Record<string, number>>;
}

interface Target {
  readonly label: string;
  readonly host: HostChild;
  joinedAtMs: number;
  /** Accounts this instance has been asked for at least once. */
  readonly seen: Set<number>;
  honestRequests: number;
  honestOk: number;
  joinRss: number;
  maxRss: number;
  finalRss: number;
}

const MIB = 1024 * 1024;

/** Runs the simulation and returns its figures; `log` gets progress lines. */
export async function runScale(options: ScaleOptions, log: (line: string) => void): Promise<ScaleReport> {
  const scratch = await mkdtemp(join(tmpdir(), 'sts-scale-'));
  const ca = await createTestCertificateAuthority(join(scratch, 'ca'));
  // In a process of its own, so the load generated here never delays the vault's answers.
  const vault = await startVaultProcess(ca.dir, options.vaultBudget);
  let azurite: LocalAzurite | undefined;
  const targets: Target[] = [];
  /** Started with the others but sent nothing until they join: their index and cache are empty (cold). */
  const waiting: Target[] = [];
  const agents: Agent[] = [];
  const warnings = new Map<string, number>();
  try {
    const seed = randomBytes(16).toString('hex');
    const accounts = Array.from({ length: options.credentials }, (_, index) => honestAccount(index, seed));
    await vault.seed([
      {
        name: vaultLayout.signingKey,
        value: JSON.stringify(generateSigningJwk('ES256')),
        contentType: 'application/jwk+json',
      },
      ...accounts.map((account) => ({
        name: vaultLayout.mixedRealityAccount(account.accountId),
        value: JSON.stringify(account),
        contentType: 'application/json',
      })),
    ]);
    const env: Record<string, string> = {
      ...vault.env,
      NODE_EXTRA_CA_CERTS: ca.certPath,
      STS_SECRET_INDEX_REFRESH_SECONDS: String(options.indexRefreshSeconds),
      STS_LEDGER_MODE: options.ledger,
    };
    if (options.ledger !== 'off') {
      azurite = await startLocalAzurite({ dataDir: join(scratch, 'azurite'), startTimeoutMs: 60_000 });
      env.STS_LEDGER_CONNECTION_STRING = azurite.connectionString;
    }

    const startedAtMs = Date.now();
    const start = async (label: string, join = true): Promise<Target> => {
      const host = await startHostChild({
        env,
        startTimeoutMs: 90_000,
        onLine: (stream, line) => {
          // The instances' warnings (vault, index, ledger episodes), counted by their first words.
          if (stream !== 'stderr' && !/warn/i.test(line)) return;
          const refusal = / refused (\d{3}) \S+ reason=(\S+)/.exec(line);
          const gist = refusal
            ? `refused ${refusal[1]} ${refusal[2]}`
            : line.replace(/\b[0-9a-f-]{8,}\b/g, '…').slice(0, 220);
          warnings.set(gist, (warnings.get(gist) ?? 0) + 1);
        },
      });
      const target: Target = {
        label,
        host,
        joinedAtMs: Date.now(),
        seen: new Set(),
        honestRequests: 0,
        honestOk: 0,
        joinRss: 0,
        maxRss: 0,
        finalRss: 0,
      };
      (join ? targets : waiting).push(target);
      log(`  ${label} listening at ${host.url} (+${((Date.now() - startedAtMs) / 1000).toFixed(1)} s)`);
      return target;
    };
    log(`Starting ${options.instances} instances…`);
    await Promise.all([
      ...Array.from({ length: options.instances }, (_, i) => start(`instance ${i + 1}`)),
      ...Array.from({ length: options.lateInstances }, (_, i) => start(`late ${i + 1}`, false)),
    ]);
    await vault.resetCounters();
    for (const target of [...targets, ...waiting]) target.joinRss = (await target.host.rssBytes()) ?? 0;

    const runStartMs = Date.now();
    const deadline = runStartMs + options.seconds * 1000;
    const honestLatencies: number[] = [];
    const firstLatencies: number[] = [];
    const honestFailures = new Map<string, number>();
    let honest503 = 0;
    const attackStatuses = new Map<string, number>();
    let attackRequests = 0;
    const transactionsPerSecond: number[] = [];
    const live = (): Target[] => targets.filter((t) => t.host.exitStatus() === undefined);

    const agentFor = (() => {
      const byAddress = new Map<string, Agent>();
      return (address: string): Agent => {
        let agent = byAddress.get(address);
        if (!agent) {
          agent = new Agent({ localAddress: address, connections: 4, keepAliveTimeout: 10_000 });
          byAddress.set(address, agent);
          agents.push(agent);
        }
        return agent;
      };
    })();

    const honestClient = async (client: number): Promise<void> => {
      const agent = agentFor(`127.0.50.${(client % 250) + 1}`);
      while (Date.now() < deadline) {
        const pool = live();
        const target = pool[Math.floor(Math.random() * pool.length)];
        if (!target) break;
        const index = Math.floor(Math.random() * accounts.length);
        const account = accounts[index] as MixedRealityAccount;
        const first = !target.seen.has(index);
        target.seen.add(index);
        const began = performance.now();
        let status: number | string;
        try {
          const response = await request(`${target.host.url}/accounts/${account.accountId}/token`, {
            method: 'GET',
            headers: { authorization: `Bearer ${account.accountId}:${account.keys[index % 2]}` },
            dispatcher: agent,
            headersTimeout: 30_000,
            bodyTimeout: 30_000,
          });
          await response.body.dump();
          status = response.statusCode;
        } catch (error) {
          status = (error as { code?: string }).code ?? 'error';
        }
        const elapsed = performance.now() - began;
        target.honestRequests += 1;
        honestLatencies.push(elapsed);
        if (first) firstLatencies.push(elapsed);
        if (status === 200) target.honestOk += 1;
        else {
          if (status === 503) honest503 += 1;
          honestFailures.set(String(status), (honestFailures.get(String(status)) ?? 0) + 1);
        }
        await sleep(options.honestPauseMs);
      }
    };

    const attacker = async (worker: number): Promise<void> => {
      let n = worker;
      while (Date.now() < deadline) {
        n += options.attackerConcurrency;
        const slot = n % options.attackerAddresses;
        const agent = agentFor(`127.0.${60 + Math.floor(slot / 250)}.${(slot % 250) + 1}`);
        const pool = live();
        const target = pool[n % Math.max(1, pool.length)];
        if (!target) break;
        let status: string;
        try {
          const { path, ...init } = strangerRequest(n);
          const response = await request(`${target.host.url}${path}`, {
            ...init,
            dispatcher: agent,
            headersTimeout: 30_000,
            bodyTimeout: 30_000,
          });
          await response.body.dump();
          status = String(response.statusCode);
        } catch (error) {
          status = (error as { code?: string }).code ?? 'error';
        }
        attackRequests += 1;
        attackStatuses.set(status, (attackStatuses.get(status) ?? 0) + 1);
      }
    };

    const sampler = async (): Promise<void> => {
      let before = (await vault.snapshot()).stats;
      while (Date.now() < deadline) {
        await sleep(1_000);
        const after = (await vault.snapshot()).stats;
        transactionsPerSecond.push(after.secretReads - before.secretReads + after.listCalls - before.listCalls);
        before = after;
        for (const target of live()) {
          const rss = (await target.host.rssBytes()) ?? 0;
          target.maxRss = Math.max(target.maxRss, rss);
        }
      }
    };

    const joiner = async (): Promise<void> => {
      await sleep((options.seconds * 1000) / 3);
      log(`${waiting.length} cold instances join the pool (+${((Date.now() - runStartMs) / 1000).toFixed(0)} s)…`);
      for (const target of waiting.splice(0)) {
        target.joinedAtMs = Date.now();
        target.joinRss = (await target.host.rssBytes()) ?? 0;
        targets.push(target);
      }
    };

    log(
      `Running ${options.seconds} s: ${options.honestClients} honest clients over ${options.credentials} accounts, ${options.attackerAddresses} attacker addresses…`,
    );
    await Promise.all([
      sampler(),
      joiner(),
      ...Array.from({ length: options.honestClients }, (_, i) => honestClient(i)),
      ...Array.from({ length: options.attackerConcurrency }, (_, i) => attacker(i)),
    ]);
    const durationSeconds = (Date.now() - runStartMs) / 1000;
    for (const target of targets) target.finalRss = (await target.host.rssBytes()) ?? 0;

    const final = await vault.snapshot();
    const existing = new Set(final.names.map((name) => name.toLowerCase()));
    const stats = final.stats;
    const windowSums = transactionsPerSecond.map((_, i) =>
      transactionsPerSecond.slice(Math.max(0, i - 9), i + 1).reduce((a, b) => a + b, 0),
    );
    const ok = targets.reduce((sum, t) => sum + t.honestOk, 0);
    return {
      options,
      durationSeconds,
      honest: {
        requests: honestLatencies.length,
        ok,
        successRate: honestLatencies.length === 0 ? 0 : ok / honestLatencies.length,
        status503: honest503,
        otherFailures: Object.fromEntries([...honestFailures].filter(([status]) => status !== '503')),
        p50Ms: percentile(honestLatencies, 0.5),
        p99Ms: percentile(honestLatencies, 0.99),
        maxMs: percentile(honestLatencies, 1),
        firstOnInstance: firstLatencies.length,
        firstOnInstanceP99Ms: percentile(firstLatencies, 0.99),
      },
      attack: {
        requests: attackRequests,
        perSecond: attackRequests / durationSeconds,
        statuses: Object.fromEntries([...attackStatuses].sort()),
      },
      vault: {
        budgetPer10s: options.vaultBudget,
        secretReads: stats.secretReads,
        listCalls: stats.listCalls,
        transactionsPerSecond: (stats.secretReads + stats.listCalls) / durationSeconds,
        busiest10sTransactions: Math.max(0, ...windowSums),
        throttled: stats.throttled,
        readsOfUnknownNames: final.namesRead.filter((name) => !existing.has(name)).length,
      },
      instances: targets.map((t) => ({
        label: t.label,
        joinedAtSeconds: Math.max(0, (t.joinedAtMs - runStartMs) / 1000),
        honestRequests: t.honestRequests,
        honestOk: t.honestOk,
        joinRssMiB: t.joinRss / MIB,
        maxRssMiB: t.maxRss / MIB,
        finalRssMiB: t.finalRss / MIB,
      })),
      instanceWarnings: Object.fromEntries(warnings),
    };
  } finally {
    await Promise.allSettled(agents.map((agent) => agent.close()));
    await Promise.allSettled([...targets, ...waiting].map((t) => t.host.stop(5_000)));
    await azurite?.stop();
    await vault.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Honest account `index`, derived from the run's seed (ids and keys nobody else can guess). */
function honestAccount(index: number, seed: string): MixedRealityAccount {
  const accountId = `${index.toString(16).padStart(8, '0')}-5ca1-4e00-8000-${seed.slice(0, 12)}`;
  const key = (slot: number): string => createHmac('sha256', seed).update(`${accountId}/${slot}`).digest('base64');
  return {
    kind: 'mixedRealityAccount',
    accountId,
    accountDomain: 'eastus2.mixedreality.azure.com',
    keys: [key(1), key(2)],
    enabled: true,
  };
}

/**
 * A made-up credential for each token flow of the catalogue in turn (an unknown Mixed Reality account,
 * Cognitive key, limited-access key, WRAP issuer), sent as that flow's demo request (tooling/flows/demoRequests.ts).
 */
function strangerRequest(n: number): {
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
} {
  const key = randomBytes(24).toString('base64');
  const madeUp: DemoCredentials = {
    storePath: '',
    mixedReality: { accountId: randomUUID(), accountKey: key },
    isvFace: { name: `x${n}`, key: randomBytes(16).toString('hex') },
    speech: { name: `x${n}`, key: randomBytes(16).toString('hex'), resourceId: `/subscriptions/${randomUUID()}` },
    wrap: { name: `x${n}`, key, scope: `http://ns${n % 997}.servicebus.windows.net/` },
  };
  const flow = tokenFlowNames[n % tokenFlowNames.length] ?? 'issueToken';
  const { path, method, headers, body } = demoRequests[flow](madeUp);
  return { path, method, headers: { ...headers }, ...(body === undefined ? {} : { body }) };
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
