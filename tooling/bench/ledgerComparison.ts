import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalAzurite } from '../../tools/localAzurite.js';
import type { BenchFixtures } from './benchFixtures.js';
import type { BenchPlan } from './benchOptions.js';
import { runLoadMatrix, verifyTargets, type LoadSummary, type LoadTarget } from './loadMatrix.js';
import { processCpuMicros } from './procStat.js';
import { startLoadWorker, startServer } from './throughput.js';

/**
 * Ledger on vs off (docs/performance.md#what-it-measures): the Mixed Reality flow through two app hosts side by side,
 * one with `STS_LEDGER_MODE=off`, one with `required` against a real Azurite (from the npm package, a temp
 * data folder, loopback), loaded in turn like the throughput section. In `required` mode every 200 means its
 * row was committed (group commit into table transactions) before the token left.
 */

export const LEDGER_TARGET = { off: 'ledger-off:mixedReality', required: 'ledger-required:mixedReality' } as const;

export interface LedgerResults {
  readonly summaries: readonly LoadSummary[];
}

export async function measureLedger(
  plan: BenchPlan,
  fixtures: BenchFixtures,
  log: (line: string) => void,
): Promise<LedgerResults> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sts-bench-azurite-'));
  // In memory: Azurite on disk rewrites its whole database every 5 s, a cost growing with each row that a remote
  // table never puts on the app's cores (tools/localAzurite.ts).
  const azurite = await startLocalAzurite({ dataDir, startTimeoutMs: 60_000, persistence: 'memory' });
  try {
    const [off, required, worker] = await Promise.all([
      startServer('app', fixtures, plan),
      startServer('app', fixtures, plan, {
        STS_LEDGER_MODE: 'required',
        STS_LEDGER_CONNECTION_STRING: azurite.connectionString,
        STS_LEDGER_TABLE: 'benchissuance',
      }),
      startLoadWorker(fixtures),
    ]);
    try {
      // Azurite's own CPU is counted too (as the helper's CPU per request): the ledger's cost is not only ours.
      const azuritePid = azurite.pid;
      const targets: LoadTarget[] = [
        {
          id: LEDGER_TARGET.off,
          label: 'app  Mixed Reality, ledger off',
          server: off,
          request: fixtures.requests.mixedRealityToken,
        },
        {
          id: LEDGER_TARGET.required,
          label: 'app  Mixed Reality, ledger required',
          server: required,
          request: fixtures.requests.mixedRealityToken,
          ...(azuritePid === undefined ? {} : { auxiliaryCpuMicros: () => processCpuMicros(azuritePid) }),
        },
      ];
      await verifyTargets(targets);
      return { summaries: await runLoadMatrix(worker, targets, plan, log) };
    } finally {
      await Promise.all([off, required, worker].map((child) => child.stop()));
    }
  } finally {
    await azurite.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
