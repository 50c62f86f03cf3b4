import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** Every part of the benchmark, in the order they run. */
export const BENCH_SECTIONS = ['inprocess', 'coldstart', 'throughput', 'realworker', 'ledger', 'vault'] as const;
export type BenchSection = (typeof BENCH_SECTIONS)[number];

/** What one run measures and for how long. */
export interface BenchPlan {
  readonly profileName: 'full' | 'quick';
  readonly sections: ReadonlySet<BenchSection>;
  /** Load: connection counts, seconds per run, repetitions, warm-up seconds per target. */
  readonly connections: readonly number[];
  readonly durationSeconds: number;
  readonly repetitions: number;
  readonly warmupSeconds: number;
  /** Handler calls per flow for the in-process figure (and signatures for the raw costs). */
  readonly inProcessIterations: number;
  /** Process starts per cold-start figure. */
  readonly coldStarts: number;
  /** Distinct accounts in the vault for the spread, and tokens issued over them (fill, then measure). */
  readonly spreadAccounts: number;
  readonly spreadTokens: number;
  /** Record a CPU profile of the app host (and the jose baseline) under load on the Mixed Reality flow. */
  readonly profile: boolean;
  readonly profileSeconds: number;
  /** Keep the local host's per-request log line (off by default: it is a development access log). */
  readonly hostLog: boolean;
  /**
   * The stub-host harness that drives the real Functions Node.js worker (`--real-worker`, else `BENCH_REAL_WORKER`);
   * undefined: the optional real-worker section is skipped (tooling/bench/realWorker.ts).
   */
  readonly realWorkerHarness: string | undefined;
}

export const BENCH_USAGE = `Usage: npm run bench -- [options]

Builds the app, then measures it against minimal baselines in the same run (docs/performance.md) and prints a table;
the figures are also written to bench-results/<timestamp>.json. Loopback only; about 8 minutes by default.

Options:
  --quick               a short run (1 repetition, 2 s per load run, smaller counts): about 2 minutes
  --only <list>         comma-separated sections: ${BENCH_SECTIONS.join(', ')}
  --skip <list>         sections to leave out
  --connections <list>  connection counts for the load runs (default 10,64)
  --duration <s>        seconds per load run (default 4; quick 2)
  --reps <n>            repetitions of every load run (default 3; quick 1)
  --warmup <s>          warm-up seconds per target before the repetitions (default 3; quick 1)
  --spread <n>          tokens issued over the 100,000-account spread (default 24000: half fill the cache, half measure; quick 4000)
  --profile             also a CPU profile of the app host and the jose baseline under load, and each
                        flow's token by stage in process (where each microsecond goes)
  --host-log            keep the local host's per-request log line (discarded) in the app's figures
  --real-worker <dir>   the stub-host harness that runs the real Functions Node.js worker (optional, not part of
                        the project; also BENCH_REAL_WORKER): adds the real-worker section, skipped without it
  --help                this text`;

/** Environment variable naming the real-worker harness folder when `--real-worker` is not given. */
export const REAL_WORKER_ENV = 'BENCH_REAL_WORKER';

/** The harness folder to use, or undefined when none was named (the section is then skipped). */
function realWorkerHarness(option: string | undefined): string | undefined {
  const named = option ?? process.env[REAL_WORKER_ENV];
  return named ? resolve(named) : undefined;
}

/** Reads the command line into a plan; throws with a message for a bad option. */
export function parseBenchOptions(argv: readonly string[]): BenchPlan | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      skip: { type: 'string' },
      connections: { type: 'string' },
      duration: { type: 'string' },
      reps: { type: 'string' },
      warmup: { type: 'string' },
      spread: { type: 'string' },
      profile: { type: 'boolean' },
      'host-log': { type: 'boolean' },
      'real-worker': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const quick = values.quick ?? false;

  const sectionList = (text: string, option: string): BenchSection[] =>
    text.split(',').map((name) => {
      const section = BENCH_SECTIONS.find((known) => known === name.trim().toLowerCase());
      if (!section) throw new Error(`${option}: unknown section "${name}" (known: ${BENCH_SECTIONS.join(', ')})`);
      return section;
    });
  let sections = new Set<BenchSection>(values.only ? sectionList(values.only, '--only') : BENCH_SECTIONS);
  if (values.skip) for (const section of sectionList(values.skip, '--skip')) sections.delete(section);
  sections = new Set(BENCH_SECTIONS.filter((section) => sections.has(section)));

  const whole = (text: string | undefined, option: string, fallback: number, min: number, max: number): number => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max)
      throw new Error(`${option} must be a whole number from ${min} to ${max}`);
    return value;
  };
  const connections = values.connections
    ? values.connections.split(',').map((part) => whole(part.trim(), '--connections', 0, 1, 1_000))
    : [10, 64];

  return {
    profileName: quick ? 'quick' : 'full',
    sections,
    connections,
    durationSeconds: whole(values.duration, '--duration', quick ? 2 : 4, 1, 120),
    repetitions: whole(values.reps, '--reps', quick ? 1 : 3, 1, 20),
    warmupSeconds: whole(values.warmup, '--warmup', quick ? 1 : 3, 0, 60),
    inProcessIterations: quick ? 2_000 : 6_000,
    coldStarts: quick ? 3 : 7,
    spreadAccounts: 100_000,
    spreadTokens: whole(values.spread, '--spread', quick ? 4_000 : 24_000, 100, 1_000_000),
    profile: values.profile ?? false,
    profileSeconds: quick ? 3 : 6,
    hostLog: values['host-log'] ?? false,
    realWorkerHarness: realWorkerHarness(values['real-worker']),
  };
}
