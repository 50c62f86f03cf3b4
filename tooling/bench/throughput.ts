import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startBenchChild, type BenchChild } from './benchChild.js';
import type { BenchFixtures } from './benchFixtures.js';
import type { BenchPlan } from './benchOptions.js';
import { summarizeCpuProfile, type ProfileSummary } from './cpuProfileSummary.js';
import {
  runLoadMatrix,
  verifyTargets,
  type LoadSummary,
  type LoadTarget,
  type ServerAnnouncement,
} from './loadMatrix.js';
import type { LoadRunResult } from './loadWorker.js';

/**
 * Throughput, latency and CPU per request of the four flows through the local host, and of the baselines,
 * in one interleaved run (docs/performance.md#what-it-measures).
 */

export type ServerKind = 'app' | 'floor' | 'jose' | 'crypto' | 'swt';

export interface ThroughputResults {
  readonly summaries: readonly LoadSummary[];
  readonly profiles: readonly ProfileSummary[];
}

/** Target ids, used by the report to pair each flow with its baseline. */
export const TARGET = {
  appMixedReality: 'app:mixedReality',
  appIssueToken: 'app:issueToken',
  appLimitedAccessToken: 'app:limitedAccessToken',
  appWrap: 'app:wrap',
  joseMixedReality: 'jose:mixedReality',
  joseIssueToken: 'jose:issueToken',
  cryptoMixedReality: 'crypto:mixedReality',
  cryptoIssueToken: 'crypto:issueToken',
  swtWrap: 'swt:wrap',
  floorGet: 'floor:mixedReality',
  floorPost: 'floor:wrap',
} as const;

/** Starts one server process of `kind` (`extraEnv` on top of the fixtures' environment). */
export function startServer(
  kind: ServerKind,
  fixtures: BenchFixtures,
  plan: Pick<BenchPlan, 'hostLog'>,
  extraEnv: Record<string, string> = {},
): Promise<BenchChild<ServerAnnouncement>> {
  return startBenchChild<ServerAnnouncement>({
    script: 'serverChild.ts',
    args: [kind, ...(plan.hostLog && kind === 'app' ? ['--host-log'] : [])],
    env: fixtures.childEnv(extraEnv),
  });
}

/** Starts the load generator process. */
export function startLoadWorker(fixtures: BenchFixtures): Promise<BenchChild<unknown>> {
  return startBenchChild({ script: 'loadWorker.ts', env: fixtures.childEnv() });
}

/**
 * Runs the throughput section: app and baselines started side by side (idle servers cost nothing), each
 * checked once, warmed up, then loaded in turn. With `plan.profile`, a CPU profile of the app and the jose
 * baseline under the Mixed Reality load follows (written under `profileDir`).
 */
export async function measureThroughput(
  plan: BenchPlan,
  fixtures: BenchFixtures,
  profileDir: string,
  log: (line: string) => void,
): Promise<ThroughputResults> {
  const [app, floor, jose, crypto, swt, worker] = await Promise.all([
    startServer('app', fixtures, plan),
    startServer('floor', fixtures, plan),
    startServer('jose', fixtures, plan),
    startServer('crypto', fixtures, plan),
    startServer('swt', fixtures, plan),
    startLoadWorker(fixtures),
  ]);
  try {
    const { requests } = fixtures;
    const targets: LoadTarget[] = [
      {
        id: TARGET.appMixedReality,
        label: 'app  Mixed Reality (ES256)',
        server: app,
        request: requests.mixedRealityToken,
      },
      {
        id: TARGET.joseMixedReality,
        label: 'base jose    Mixed Reality',
        server: jose,
        request: requests.mixedRealityToken,
      },
      {
        id: TARGET.cryptoMixedReality,
        label: 'base crypto  Mixed Reality',
        server: crypto,
        request: requests.mixedRealityToken,
      },
      { id: TARGET.appIssueToken, label: 'app  issueToken (ES256)', server: app, request: requests.issueToken },
      { id: TARGET.joseIssueToken, label: 'base jose    issueToken', server: jose, request: requests.issueToken },
      { id: TARGET.cryptoIssueToken, label: 'base crypto  issueToken', server: crypto, request: requests.issueToken },
      {
        id: TARGET.appLimitedAccessToken,
        label: 'app  issueLimitedAccessToken',
        server: app,
        request: requests.issueLimitedAccessToken,
      },
      { id: TARGET.appWrap, label: 'app  WRAP (SWT)', server: app, request: requests.wrapToken },
      { id: TARGET.swtWrap, label: 'base swt     WRAP', server: swt, request: requests.wrapToken },
      {
        id: TARGET.floorGet,
        label: 'host floor   GET, no-op handler',
        server: floor,
        request: { ...requests.mixedRealityToken, looksIssued: () => true },
      },
      {
        id: TARGET.floorPost,
        label: 'host floor   POST, no-op handler',
        server: floor,
        request: { ...requests.wrapToken, looksIssued: () => true },
      },
    ];
    await verifyTargets(targets);
    const summaries = await runLoadMatrix(worker, targets, plan, log);

    const profiles: ProfileSummary[] = [];
    if (plan.profile) {
      await mkdir(profileDir, { recursive: true });
      for (const target of targets.slice(0, 2)) {
        const path = join(profileDir, `${target.id.replace(':', '-')}.cpuprofile`);
        await target.server.request('profile-start');
        const result = await worker.request<LoadRunResult>('run', {
          url: `${target.server.ready.url}${target.request.path}`,
          method: target.request.method,
          headers: target.request.headers,
          connections: Math.max(...plan.connections),
          durationSeconds: plan.profileSeconds,
        });
        await target.server.request('profile-stop', { path });
        log(`  profiled ${target.label}: ${result.requestsPerSecond.toFixed(0)} req/s under the profiler → ${path}`);
        profiles.push(await summarizeCpuProfile(path));
      }
    }
    return { summaries, profiles };
  } finally {
    await Promise.all([app, floor, jose, crypto, swt, worker].map((child) => child.stop()));
  }
}
