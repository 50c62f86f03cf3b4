import { numberOption, readRunArguments } from './load/loadRunOptions.js';
import { nextFuzzRequest } from './fuzz/fuzzCases.js';
import { runFuzz, type FuzzReport } from './fuzz/fuzzRun.js';
import { Random } from './fuzz/random.js';
import { serializeRequest } from './fuzz/rawHttp.js';

/**
 * `npm run fuzz -- [options]`: an HTTP fuzzer against the local host (docs/hardening.md). It starts its own host child
 * on a free loopback port with a temporary store of demo credentials, sends random and mutated requests to
 * every route (mixed with valid ones), and prints its figures. Exits 1 on any finding.
 */
const USAGE = `Usage: npm run fuzz -- [options]

Bounded in count and in time, whichever comes first; loopback (127.0.0.1) only.

Options:
  --requests <n>      requests to send (default 100000)
  --minutes <m>       time limit in minutes (default 10)
  --concurrency <n>   requests in flight (default 16)
  --seed <n>          random seed, to replay a run (default: random)
  --timeout-ms <n>    per-request timeout; no answer by then is a hang (default 10000)
  --ledger <mode>     off (default), best-effort or required, with a temporary Azurite
  --relax-limits      raise the failed-attempt limits out of reach (default: the configured limits, as in Azure)
  --show <index>      print request #index of --seed (with placeholder credentials) instead of running
  --help              this text`;

async function main(argv: readonly string[]): Promise<number> {
  const parsed = readRunArguments(
    argv,
    {
      requests: { type: 'string' },
      minutes: { type: 'string' },
      concurrency: { type: 'string' },
      seed: { type: 'string' },
      'timeout-ms': { type: 'string' },
      'relax-limits': { type: 'boolean' },
      show: { type: 'string' },
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
      requests: Math.floor(number('requests', 100_000, 1, 10_000_000)),
      durationMs: number('minutes', 10, 0.05, 24 * 60) * 60_000,
      concurrency: Math.floor(number('concurrency', 16, 1, 256)),
      seed: Math.floor(number('seed', Math.floor(Math.random() * 2 ** 31), 0, 2 ** 32 - 1)),
      timeoutMs: Math.floor(number('timeout-ms', 10_000, 100, 120_000)),
      ledger,
      relaxLimits: values['relax-limits'] === true,
      progress: (line: string) => console.log(line),
    } as const;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }

  if (values.show !== undefined) {
    console.log(showRequest(options.seed, Number(values.show)));
    return 0;
  }
  console.log(
    `Fuzzing: up to ${options.requests} requests or ${options.durationMs / 60_000} minutes, concurrency ${options.concurrency}, ledger ${options.ledger}`,
  );
  const report = await runFuzz(options);
  console.log(formatReport(report));
  return Object.keys(report.findingCounts).length === 0 ? 0 : 1;
}

/** Request #index of a seed's sequence, as it goes on the wire (placeholder credentials, bytes escaped). */
function showRequest(seed: number, index: number): string {
  const random = new Random(seed);
  const placeholder = {
    storePath: '',
    mixedReality: {
      accountId: '11111111-2222-3333-4444-555555555555',
      accountKey: 'MR-KEY-PLACEHOLDER-0000000000000000000000000=',
    },
    isvFace: { name: 'demo-face-isv', key: 'isvkey0000000000000000000000000000' },
    speech: {
      name: 'demo-speech',
      key: 'speechkey000000000000000000000000',
      resourceId:
        '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sts-demo/providers/Microsoft.CognitiveServices/accounts/demo-speech',
    },
    wrap: {
      name: 'owner',
      key: 'WRAP-KEY-PLACEHOLDER-000000000000000000000=',
      scope: 'http://demo.servicebus.windows.net/',
    },
  };
  let request = nextFuzzRequest(random, placeholder);
  for (let i = 0; i < index; i += 1) request = nextFuzzRequest(random, placeholder);
  const bytes = serializeRequest(request, '127.0.0.1:7071').toString('latin1');
  const shown = bytes.length > 3_000 ? `${bytes.slice(0, 3_000)}… (${bytes.length} bytes)` : bytes;
  return `#${index} ${request.route} [${request.mutations.join(', ')}] via ${request.needsRaw ? 'raw socket' : 'undici'}, credential ${String(request.credentialIntact)}\n${JSON.stringify(shown)}`;
}

/** The figures, as printed at the end of a run. */
function formatReport(report: FuzzReport): string {
  const seconds = report.durationMs / 1000;
  const outcomes = ['2xx', '3xx', '4xx', '5xx', 'closed', 'timeout', 'error'];
  const lines = [
    '',
    `Requests: ${report.requests} in ${seconds.toFixed(1)} s (${Math.round(report.requests / seconds)} req/s), seed ${report.seed}`,
    `Transport: ${report.byTransport.undici ?? 0} via undici, ${report.byTransport.raw ?? 0} as raw bytes`,
    `By outcome: ${outcomes.map((o) => `${o} ${report.byOutcome[o] ?? 0}`).join(', ')}`,
    `By status: ${Object.entries(report.byStatus)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([s, n]) => `${s}×${n}`)
      .join(' ')}`,
    'By route:',
    `  ${'route'.padEnd(20)}${outcomes.map((o) => o.padStart(9)).join('')}`,
    ...Object.entries(report.byRoute)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([route, row]) => `  ${route.padEnd(20)}${outcomes.map((o) => String(row[o] ?? 0).padStart(9)).join('')}`),
    `Tokens issued and tracked for leaks: ${report.tokensIssued}; host log lines scanned: ${report.logLines}; host ${report.hostExit}`,
  ];
  const total = Object.values(report.findingCounts).reduce((a, b) => a + b, 0);
  if (total === 0) {
    lines.push('Findings: none (0 5xx, 0 hangs, 0 crashes, 0 leaks, 0 auth bypasses)');
  } else {
    lines.push(
      `Findings: ${total} (${Object.entries(report.findingCounts)
        .map(([kind, n]) => `${kind} ${n}`)
        .join(', ')})`,
    );
    for (const finding of report.findings)
      lines.push(`  - ${finding.kind}: ${finding.detail}${finding.request ? `\n      ${finding.request}` : ''}`);
  }
  return lines.join('\n');
}

process.exitCode = await main(process.argv.slice(2));
