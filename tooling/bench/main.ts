import { access, mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { projectRoot } from '../../tools/localHost/projectPaths.js';
import { stopAllChildren } from './benchChild.js';
import { createBenchFixtures } from './benchFixtures.js';
import { BENCH_USAGE, parseBenchOptions, type BenchPlan, type BenchSection } from './benchOptions.js';
import { measureColdStart } from './coldStart.js';
import { measureInProcess } from './inProcess.js';
import { measureLedger } from './ledgerComparison.js';
import {
  baselineRatios,
  checkTargets,
  cpuBreakdown,
  renderReport,
  type BenchMeasurements,
  type MachineInfo,
} from './report.js';
import { measureRealWorker } from './realWorker.js';
import { measureThroughput } from './throughput.js';
import { measureVaultTraffic } from './vaultTraffic.js';

/**
 * `npm run bench` (docs/performance.md): builds the app (the npm script does), then measures it against baselines in the
 * same run and prints the table; the figures also go to `bench-results/<timestamp>.json` (git-ignored).
 * Progress goes to stderr, the report to stdout. The exit code says whether the benchmark ran, never whether
 * a target was met.
 */

const resultsDir = join(projectRoot, 'bench-results');

async function main(argv: readonly string[]): Promise<number> {
  let plan: BenchPlan | 'help';
  try {
    plan = parseBenchOptions(argv);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${BENCH_USAGE}`);
    return 2;
  }
  if (plan === 'help') {
    console.log(BENCH_USAGE);
    return 0;
  }
  try {
    await access(join(projectRoot, 'dist', 'functions', 'mixedRealityToken.js'));
  } catch {
    console.error('dist/ is missing: run `npm run build` first (`npm run bench` does).');
    return 1;
  }

  const startedAt = new Date();
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  const machine: MachineInfo = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverageAtStart: loadavg(),
    loadAverageAtEnd: [],
  };
  progress(`STS benchmark (${plan.profileName}): ${[...plan.sections].join(', ')}`);
  const fixtures = await createBenchFixtures();
  const interrupted = () => {
    progress('Interrupted: stopping the benchmark processes…');
    void stopAllChildren()
      .then(() => fixtures.remove())
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  const measurements: BenchMeasurements = {};
  const failures: { section: BenchSection; message: string }[] = [];
  const notes: string[] = [];
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const section = async (name: BenchSection, title: string, work: () => Promise<void>) => {
    if (!plan.sections.has(name)) return;
    const began = performance.now();
    progress(`\n▶ ${title}`);
    try {
      await work();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      failures.push({ section: name, message });
      progress(`  ✗ ${name} failed: ${message}`);
      await stopAllChildren();
    }
    progress(`  (${((performance.now() - began) / 1000).toFixed(0)} s)`);
  };

  try {
    await section('inprocess', 'In-process CPU per token', async () => {
      measurements.inProcess = await measureInProcess(fixtures, plan.inProcessIterations, plan.profile);
    });
    await section('coldstart', 'Cold start', async () => {
      measurements.coldStart = await measureColdStart(fixtures, plan.coldStarts, progress);
    });
    await section('throughput', 'Throughput: app through the local host vs baselines', async () => {
      measurements.throughput = await measureThroughput(
        plan,
        fixtures,
        join(resultsDir, `${stamp}-profiles`),
        progress,
      );
    });
    const harness = plan.realWorkerHarness;
    if (harness !== undefined) {
      await section('realworker', 'Real Functions worker: Mixed Reality vs a no-op function (optional)', async () => {
        measurements.realWorker = await measureRealWorker(harness, plan, fixtures, progress);
      });
    } else if (plan.sections.has('realworker')) {
      notes.push(
        'Real worker: skipped (optional; --real-worker <harness dir> runs it, docs/performance.md#real-worker).',
      );
    }
    await section('ledger', 'Ledger off vs required (Azurite)', async () => {
      measurements.ledger = await measureLedger(plan, fixtures, progress);
    });
    await section('vault', 'Vault traffic', async () => {
      measurements.vault = await measureVaultTraffic(
        fixtures,
        { accounts: plan.spreadAccounts, spreadTokens: plan.spreadTokens },
        progress,
      );
    });
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await stopAllChildren();
    await fixtures.remove();
  }

  const finishedAt = new Date();
  const finalMachine = { ...machine, loadAverageAtEnd: loadavg() };
  const ratios = baselineRatios(measurements.throughput);
  const checks = checkTargets(measurements, ratios);
  if (!plan.hostLog) notes.push('The local host ran without its per-request log line (--host-log keeps it).');
  if (machine.loadAverageAtStart[0] !== undefined && machine.loadAverageAtStart[0] > machine.cpus / 2) {
    notes.push(
      `The machine was busy when the run started (load average ${machine.loadAverageAtStart[0].toFixed(2)} on ${machine.cpus} CPUs): absolute figures are low; the ratios still compare like with like.`,
    );
  }
  if (plan.sections.has('ledger') && !measurements.ledger)
    notes.push('Ledger on/off: not measured (see the failure below).');
  for (const failure of failures) notes.push(`FAILED ${failure.section}: ${failure.message}`);

  const elapsedSeconds = (finishedAt.getTime() - startedAt.getTime()) / 1000;
  const header = `STS benchmark, ${plan.profileName} run of ${startedAt.toISOString()} (${elapsedSeconds.toFixed(0)} s; load runs: ${plan.repetitions} × ${plan.durationSeconds} s at ${plan.connections.join(' and ')} connections after ${plan.warmupSeconds} s warm-up)`;
  console.log(renderReport(header, finalMachine, measurements, ratios, checks, notes));

  await mkdir(resultsDir, { recursive: true });
  const resultPath = join(resultsDir, `${stamp}.json`);
  const json = {
    command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    elapsedSeconds,
    machine: finalMachine,
    plan: { ...plan, sections: [...plan.sections] },
    ...measurements,
    ratios,
    cpuBreakdown: cpuBreakdown(measurements),
    targets: checks,
    notes,
    failures,
  };
  await writeFile(
    resultPath,
    `${JSON.stringify(json, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`,
  );
  console.log(`\nFigures written to ${relative(process.cwd(), resultPath) || resultPath}`);
  return failures.length > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
