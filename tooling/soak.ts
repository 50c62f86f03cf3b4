import { numberOption, readRunArguments } from './load/loadRunOptions.js';
import { mb, runSoak, type SoakReport } from './soak/soakRun.js';

/**
 * `npm run soak -- [options]`: a soak run (docs/hardening.md). Starts the local host in a child process with a
 * temporary store of demo credentials, measures its capacity briefly (unless `--rate` is given), then drives
 * about 70 % of it with valid requests across all flows from this process, sampling the host's RSS. Prints
 * errors, latency and RSS drift; exits 1 on any error or on RSS growth of 10 % or more after warm-up.
 */
const USAGE = `Usage: npm run soak -- [options]

Options:
  --minutes <m>          duration of the driven phase (default 10)
  --rate <n>             requests per second to drive (default: 70 % of the measured capacity)
  --fraction <f>         share of the capacity to drive when measuring (default 0.7)
  --capacity-seconds <s> length of the capacity measurement (default 15)
  --sample-seconds <s>   RSS sampling interval (default 5)
  --ledger <mode>        off (default), best-effort or required, with a temporary Azurite
  --help                 this text`;

async function main(argv: readonly string[]): Promise<number> {
  const parsed = readRunArguments(
    argv,
    {
      minutes: { type: 'string' },
      rate: { type: 'string' },
      fraction: { type: 'string' },
      'capacity-seconds': { type: 'string' },
      'sample-seconds': { type: 'string' },
    },
    USAGE,
  );
  if ('exitCode' in parsed) return parsed.exitCode;
  const { values, ledger } = parsed;
  const number = (name: string, fallback: number, min: number, max: number): number =>
    numberOption(values, name, fallback, min, max);
  let options;
  try {
    options = {
      durationMs: number('minutes', 10, 0.1, 24 * 60) * 60_000,
      rate: values.rate === undefined ? undefined : number('rate', 0, 1, 100_000),
      fraction: number('fraction', 0.7, 0.05, 1),
      capacitySeconds: number('capacity-seconds', 15, 3, 300),
      sampleEveryMs: number('sample-seconds', 5, 1, 600) * 1000,
      warmupFraction: 0.2,
      ledger,
      progress: (line: string) => console.log(line),
    } as const;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  console.log(`Soak: ${options.durationMs / 60_000} minutes, ledger ${options.ledger}`);
  const report = await runSoak(options);
  console.log(formatReport(report));
  return verdict(report).pass ? 0 : 1;
}

/** Share of the target requests that may go unsent during brief stalls (GC, a busy shared machine). */
const NOT_SENT_TOLERANCE = 0.01;

/** Pass: no host error, RSS drift under 10 %, and the target rate sustained (else the run proved less). */
function verdict(report: SoakReport): { pass: boolean; reasons: string[] } {
  const reasons: string[] = [];
  const errorCount = Object.values(report.errors).reduce((a, b) => a + b, 0);
  if (errorCount > 0) reasons.push(`${errorCount} errors`);
  if (!(report.rssDrift < 0.1)) reasons.push(`RSS drift ${(report.rssDrift * 100).toFixed(1)} %`);
  if (report.notSent > NOT_SENT_TOLERANCE * (report.requests + report.notSent)) {
    reasons.push(`rate not sustained: ${report.notSent} requests not sent (host or machine too busy)`);
  }
  return { pass: reasons.length === 0, reasons };
}

function formatReport(report: SoakReport): string {
  const seconds = report.durationMs / 1000;
  const errorCount = Object.values(report.errors).reduce((a, b) => a + b, 0);
  const perMinute: string[] = [];
  let nextMinute = 0;
  for (const sample of report.samples) {
    if (sample.atMs >= nextMinute) {
      perMinute.push(`${Math.round(sample.atMs / 1000)}s ${mb(sample.rssBytes)}`);
      nextMinute += 60_000;
    }
  }
  const lines = [
    '',
    report.capacity === undefined
      ? `Rate: ${report.targetRate} req/s (given)`
      : `Capacity: ${report.capacity.toFixed(0)} req/s; target ${report.targetRate} req/s`,
    `Driven: ${report.requests} requests in ${seconds.toFixed(0)} s (${report.achievedRate.toFixed(0)} req/s); by flow: ${Object.entries(
      report.byFlow,
    )
      .map(([f, n]) => `${f} ${n}`)
      .join(', ')}`,
    `Latency: p50 ${report.latencyMs.p50.toFixed(1)} ms, p95 ${report.latencyMs.p95.toFixed(1)} ms, p99 ${report.latencyMs.p99.toFixed(1)} ms, max ${report.latencyMs.max.toFixed(0)} ms`,
    `Errors: ${errorCount}${
      errorCount
        ? ` (${Object.entries(report.errors)
            .map(([k, n]) => `${k} ×${n}`)
            .join('; ')})`
        : ''
    }; not sent for want of a free slot: ${report.notSent} (${((100 * report.notSent) / Math.max(1, report.requests + report.notSent)).toFixed(2)} %, tolerance ${NOT_SENT_TOLERANCE * 100} %)`,
    `RSS (${report.samples.length} samples): after warm-up (${Math.round(report.warmupMs / 1000)} s) ${mb(report.rssBaselineBytes)}, at the end ${mb(report.rssEndBytes)}, max ${mb(report.rssMaxBytes)}; drift ${(report.rssDrift * 100).toFixed(1)} % (goal < 10 %)`,
    `RSS by minute: ${perMinute.join(', ')}`,
    `Host: ${report.hostExit}`,
    verdict(report).pass ? 'Result: PASS' : `Result: FAIL (${verdict(report).reasons.join('; ')})`,
  ];
  return lines.join('\n');
}

process.exitCode = await main(process.argv.slice(2));
