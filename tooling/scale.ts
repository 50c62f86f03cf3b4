import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../tools/localHost/projectPaths.js';
import { numberOption, readRunArguments } from './load/loadRunOptions.js';
import { runScale, type ScaleOptions, type ScaleReport } from './scale/scaleRun.js';

/**
 * `npm run scale -- [options]`: the scale simulation (docs/scale.md#simulation). App instances as separate
 * local-host processes share one throttling Key Vault test server and one Azurite ledger; honest clients
 * present right keys of many accounts, fresh instances join mid-run, and a crowd of attacker addresses
 * presents made-up credentials. Prints the right-key success rate and p99, the 503s honest clients got, the
 * vault's transactions against its budget and each instance's RSS; writes the figures to
 * `bench-results/scale-<timestamp>.json`. Exits 1 when a right key failed or a made-up name was read.
 */
const USAGE = `Usage: npm run scale -- [options]

Options:
  --instances <n>        instances at the start (default 6)
  --late <n>             fresh instances joining a third of the way in (default 2)
  --seconds <s>          length of the driven phase (default 30, at most 60)
  --attackers <n>        attacker source addresses (default 250)
  --attack-concurrency <n>  attacker requests in flight (default 48)
  --credentials <n>      honest accounts in the vault (default 40)
  --honest <n>           honest clients (default 16), each pausing --pause-ms between requests (default 50)
  --pause-ms <ms>
  --vault-budget <n>     vault transactions per 10 s before 429 (default 1000: Azure's 4,000 scaled to this machine)
  --index-refresh <s>    the instances' STS_SECRET_INDEX_REFRESH_SECONDS (default 10, so refreshes happen in the run)
  --ledger <mode>        required (default), best-effort or off; with a temporary Azurite
  --help                 this text`;

async function main(argv: readonly string[]): Promise<number> {
  const parsed = readRunArguments(
    argv,
    {
      instances: { type: 'string' },
      late: { type: 'string' },
      seconds: { type: 'string' },
      attackers: { type: 'string' },
      'attack-concurrency': { type: 'string' },
      credentials: { type: 'string' },
      honest: { type: 'string' },
      'pause-ms': { type: 'string' },
      'vault-budget': { type: 'string' },
      'index-refresh': { type: 'string' },
    },
    USAGE,
  );
  if ('exitCode' in parsed) return parsed.exitCode;
  const { values } = parsed;
  const number = (name: string, fallback: number, min: number, max: number): number =>
    numberOption(values, name, fallback, min, max);
  let options: ScaleOptions;
  try {
    options = {
      instances: number('instances', 6, 1, 32),
      lateInstances: number('late', 2, 0, 16),
      seconds: number('seconds', 30, 5, 60),
      attackerAddresses: number('attackers', 250, 1, 2_500),
      attackerConcurrency: number('attack-concurrency', 48, 1, 512),
      credentials: number('credentials', 40, 1, 10_000),
      honestClients: number('honest', 16, 1, 256),
      honestPauseMs: number('pause-ms', 50, 0, 10_000),
      vaultBudget: number('vault-budget', 1_000, 1, 100_000),
      indexRefreshSeconds: number('index-refresh', 10, 5, 3_600),
      ledger: values.ledger === undefined ? 'required' : parsed.ledger,
    };
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const loadAtStart = loadavg();
  const report = await runScale(options, (line) => process.stderr.write(`${line}\n`));
  const loadAtEnd = loadavg();
  console.log(render(report, { cpus: cpus().length, loadAtStart, loadAtEnd }));
  const dir = join(projectRoot, 'bench-results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `scale-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(
    file,
    `${JSON.stringify({ ...report, machine: { cpus: cpus().length, loadAtStart, loadAtEnd } }, null, 2)}\n`,
  );
  console.log(`\nFigures written to ${file}`);
  return report.honest.ok === report.honest.requests && report.vault.readsOfUnknownNames === 0 ? 0 : 1;
}

function render(report: ScaleReport, machine: { cpus: number; loadAtStart: number[]; loadAtEnd: number[] }): string {
  const { honest, attack, vault, options } = report;
  const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;
  const ms = (x: number): string => `${x.toFixed(0)} ms`;
  const lines = [
    `Scale simulation: ${options.instances} + ${options.lateInstances} instances, ${report.durationSeconds.toFixed(0)} s, ledger ${options.ledger}`,
    `machine: ${machine.cpus} CPUs, load average ${machine.loadAtStart[0]?.toFixed(1)} at start, ${machine.loadAtEnd[0]?.toFixed(1)} at end`,
    '',
    `right keys         ${honest.requests} requests, ${pct(honest.successRate)} served (goal 100 %)`,
    `  latency          p50 ${ms(honest.p50Ms)}, p99 ${ms(honest.p99Ms)}, max ${ms(honest.maxMs)}`,
    `  first on an instance  ${honest.firstOnInstance} requests, p99 ${ms(honest.firstOnInstanceP99Ms)}`,
    `  503s             ${honest.status503} (goal 0); other failures ${JSON.stringify(honest.otherFailures)}`,
    `attack             ${attack.requests} requests from ${options.attackerAddresses} addresses (${attack.perSecond.toFixed(0)}/s): ${JSON.stringify(attack.statuses)}`,
    `vault              ${vault.secretReads} reads + ${vault.listCalls} list pages = ${vault.transactionsPerSecond.toFixed(1)}/s;` +
      ` busiest 10 s ${vault.busiest10sTransactions} of a budget of ${vault.budgetPer10s}; ${vault.throttled} throttled`,
    `  reads of made-up names  ${vault.readsOfUnknownNames} (goal 0)`,
    '',
    'instance      joined   right keys   served  RSS join   RSS max   RSS end',
    ...report.instances.map(
      (i) =>
        `${i.label.padEnd(12)} ${`+${i.joinedAtSeconds.toFixed(0)} s`.padStart(7)} ${String(i.honestRequests).padStart(11)} ${String(i.honestOk).padStart(8)}` +
        ` ${`${i.joinRssMiB.toFixed(0)} MiB`.padStart(9)} ${`${i.maxRssMiB.toFixed(0)} MiB`.padStart(9)} ${`${i.finalRssMiB.toFixed(0)} MiB`.padStart(9)}`,
    ),
    '',
    'instance warnings (stderr, by gist):',
    ...Object.entries(report.instanceWarnings).map(([gist, count]) => `  ${String(count).padStart(5)}  ${gist}`),
  ];
  return lines.join('\n');
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
