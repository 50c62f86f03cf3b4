import type { ColdStartResults } from './coldStart.js';
import type { InProcessResults } from './inProcessChild.js';
import type { FlowId } from './benchFixtures.js';
import { REAL_WORKER_TARGET, type RealWorkerResults } from './realWorker.js';
import { LEDGER_TARGET, type LedgerResults } from './ledgerComparison.js';
import type { LoadSummary } from './loadMatrix.js';
import { ratio } from './statistics.js';
import { TARGET, type ThroughputResults } from './throughput.js';
import type { VaultTrafficResults } from './vaultTraffic.js';

/**
 * Turns the measurements into what a reader needs: app ÷ baseline ratios from the same run, the
 * targets marked met or missed, and aligned tables for the terminal.
 */

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly platform: string;
  readonly loadAverageAtStart: readonly number[];
  readonly loadAverageAtEnd: readonly number[];
}

export interface BenchMeasurements {
  inProcess?: InProcessResults;
  coldStart?: ColdStartResults;
  throughput?: ThroughputResults;
  ledger?: LedgerResults;
  vault?: VaultTrafficResults;
  /** Optional: only where the real Functions worker is provided (tooling/bench/realWorker.ts). */
  realWorker?: RealWorkerResults;
}

/** One flow against one baseline at one connection count; each value is app ÷ baseline. */
export interface BaselineRatio {
  readonly flow: string;
  readonly baseline: string;
  readonly connections: number;
  readonly requestsPerSecond: number;
  readonly cpuPerRequest: number;
  readonly p99: number;
}

export interface TargetCheck {
  readonly target: string;
  readonly goal: string;
  readonly value: string;
  /** undefined when the section that measures it did not run. */
  readonly met: boolean | undefined;
}

const PAIRS: readonly { flow: string; app: string; baseline: string; baselineId: string }[] = [
  { flow: 'Mixed Reality', app: TARGET.appMixedReality, baseline: 'jose', baselineId: TARGET.joseMixedReality },
  {
    flow: 'Mixed Reality',
    app: TARGET.appMixedReality,
    baseline: 'node:crypto',
    baselineId: TARGET.cryptoMixedReality,
  },
  { flow: 'issueToken', app: TARGET.appIssueToken, baseline: 'jose', baselineId: TARGET.joseIssueToken },
  { flow: 'issueToken', app: TARGET.appIssueToken, baseline: 'node:crypto', baselineId: TARGET.cryptoIssueToken },
  {
    flow: 'issueLimitedAccessToken',
    app: TARGET.appLimitedAccessToken,
    baseline: 'jose issueToken (nearest)',
    baselineId: TARGET.joseIssueToken,
  },
  { flow: 'WRAP', app: TARGET.appWrap, baseline: 'SWT', baselineId: TARGET.swtWrap },
];

/** App ÷ baseline for every pair and connection count measured. */
export function baselineRatios(throughput: ThroughputResults | undefined): BaselineRatio[] {
  if (!throughput) return [];
  const find = (id: string, connections: number) =>
    throughput.summaries.find((s) => s.targetId === id && s.connections === connections);
  const ratios: BaselineRatio[] = [];
  for (const pair of PAIRS) {
    for (const summary of throughput.summaries.filter((s) => s.targetId === pair.app)) {
      const base = find(pair.baselineId, summary.connections);
      if (!base) continue;
      ratios.push({
        flow: pair.flow,
        baseline: pair.baseline,
        connections: summary.connections,
        requestsPerSecond: ratio(summary.requestsPerSecond, base.requestsPerSecond),
        cpuPerRequest: ratio(summary.cpuMicrosPerRequest, base.cpuMicrosPerRequest),
        p99: ratio(summary.p99Ms, base.p99Ms),
      });
    }
  }
  return ratios;
}

/** Where a flow's CPU per request goes, at one connection count (µs). */
export interface CpuBreakdown {
  readonly flow: string;
  readonly connections: number;
  /** The matching baseline, whole request. */
  readonly baseline: number;
  /** The local host with a no-op handler (GET or POST like the flow). */
  readonly hostFloor: number;
  readonly app: number;
  /** app − host floor: what the flow's handler adds inside the host. */
  readonly handlerInHost: number;
  /** The handler alone in process, 32 calls in flight (no HTTP, no host). */
  readonly handlerInProcess: number;
}

const BREAKDOWN: readonly { flow: string; inProcess: FlowId; app: string; baselineId: string; floorId: string }[] = [
  {
    flow: 'Mixed Reality',
    inProcess: 'mixedRealityToken',
    app: TARGET.appMixedReality,
    baselineId: TARGET.joseMixedReality,
    floorId: TARGET.floorGet,
  },
  {
    flow: 'issueToken',
    inProcess: 'issueToken',
    app: TARGET.appIssueToken,
    baselineId: TARGET.joseIssueToken,
    floorId: TARGET.floorPost,
  },
  {
    flow: 'issueLimitedAccessToken',
    inProcess: 'issueLimitedAccessToken',
    app: TARGET.appLimitedAccessToken,
    baselineId: TARGET.joseIssueToken,
    floorId: TARGET.floorPost,
  },
  { flow: 'WRAP', inProcess: 'wrapToken', app: TARGET.appWrap, baselineId: TARGET.swtWrap, floorId: TARGET.floorPost },
];

/** The CPU per request of each flow split into hosting and handler, at every connection count measured. */
export function cpuBreakdown(measurements: BenchMeasurements): CpuBreakdown[] {
  const { throughput, inProcess } = measurements;
  if (!throughput) return [];
  const cpu = (id: string, connections: number) =>
    throughput.summaries.find((s) => s.targetId === id && s.connections === connections)?.cpuMicrosPerRequest ??
    Number.NaN;
  const rows: CpuBreakdown[] = [];
  for (const entry of BREAKDOWN) {
    for (const connections of [...new Set(throughput.summaries.map((s) => s.connections))]) {
      const app = cpu(entry.app, connections);
      const hostFloor = cpu(entry.floorId, connections);
      rows.push({
        flow: entry.flow,
        connections,
        baseline: cpu(entry.baselineId, connections),
        hostFloor,
        app,
        handlerInHost: app - hostFloor,
        handlerInProcess: inProcess?.flows[entry.inProcess]?.concurrent.cpuMicros ?? Number.NaN,
      });
    }
  }
  return rows;
}

/** CPU per call, 32 in flight, of each flow in process, and the primitive that is its own work (the goal's unit). */
const IN_PROCESS_GOALS: readonly {
  flow: string;
  inProcess: FlowId;
  primitive: string;
  primitiveLabel: string;
  goal: number;
}[] = [
  {
    flow: 'Mixed Reality',
    inProcess: 'mixedRealityToken',
    primitive: 'ES256 sign, node:crypto sync',
    primitiveLabel: 'one ES256 signature',
    goal: 2,
  },
  {
    flow: 'issueToken',
    inProcess: 'issueToken',
    primitive: 'ES256 sign, node:crypto sync',
    primitiveLabel: 'one ES256 signature',
    goal: 2,
  },
  {
    flow: 'issueLimitedAccessToken',
    inProcess: 'issueLimitedAccessToken',
    primitive: 'ES256 sign, node:crypto sync',
    primitiveLabel: 'one ES256 signature',
    goal: 2,
  },
  { flow: 'WRAP', inProcess: 'wrapToken', primitive: 'HMAC-SHA256 (400 bytes)', primitiveLabel: 'one HMAC', goal: 10 },
];

/** The performance targets (docs/performance.md#targets), checked against this run's figures. */
export function checkTargets(measurements: BenchMeasurements, ratios: readonly BaselineRatio[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const times = (value: number | undefined) =>
    value === undefined || Number.isNaN(value) ? 'n/a' : `${value.toFixed(2)}×`;
  const atLeast = (value: number | undefined, goal: number) =>
    value === undefined || Number.isNaN(value) ? undefined : value >= goal;
  const atMost = (value: number | undefined, goal: number) =>
    value === undefined || Number.isNaN(value) ? undefined : value <= goal;

  // The real Functions worker (optional section): the app's own cost over a no-op function on the same route.
  const realWorker = measurements.realWorker?.summaries ?? [];
  const paced = measurements.realWorker?.paced ?? [];
  const pacedSts = paced.find((s) => s.targetId === REAL_WORKER_TARGET.stsPaced);
  const pacedNoop = paced.find((s) => s.targetId === REAL_WORKER_TARGET.noopPaced);
  const pacedCpu =
    pacedSts && pacedNoop ? ratio(pacedSts.cpuMicrosPerRequest, pacedNoop.cpuMicrosPerRequest) : undefined;
  checks.push({
    target: `Real worker: worker CPU per token vs no-op function, same rate${pacedSts ? ` (${measurements.realWorker?.pacedRate} req/s)` : ''}`,
    goal: '≤ 1.25×',
    value: times(pacedCpu),
    met: atMost(pacedCpu, 1.25),
  });
  const workerCounts = [...new Set(realWorker.map((s) => s.connections))].sort((a, b) => a - b);
  for (const connections of workerCounts.length > 0 ? workerCounts : [64]) {
    const sts = realWorker.find((s) => s.targetId === REAL_WORKER_TARGET.sts && s.connections === connections);
    const noop = realWorker.find((s) => s.targetId === REAL_WORKER_TARGET.noop && s.connections === connections);
    const cpu = sts && noop ? ratio(sts.cpuMicrosPerRequest, noop.cpuMicrosPerRequest) : undefined;
    const rps = sts && noop ? ratio(sts.requestsPerSecond, noop.requestsPerSecond) : undefined;
    checks.push({
      target: `Real worker: worker CPU per token vs no-op function, flat out, ${connections} conns`,
      goal: '≤ 1.25×',
      value: times(cpu),
      met: atMost(cpu, 1.25),
    });
    checks.push({
      target: `Real worker: req/s vs no-op function, ${connections} conns`,
      goal: '≥ 0.80×',
      value: times(rps),
      met: atLeast(rps, 0.8),
    });
  }

  // In process: each handler against the primitive that is its own work.
  const inProcess = measurements.inProcess;
  for (const entry of IN_PROCESS_GOALS) {
    const flow = inProcess?.flows[entry.inProcess]?.concurrent.cpuMicros;
    const primitive = inProcess?.primitives[entry.primitive]?.concurrent.cpuMicros;
    const value = flow === undefined || primitive === undefined ? undefined : ratio(flow, primitive);
    checks.push({
      target: `In process: ${entry.flow} CPU per token vs ${entry.primitiveLabel}`,
      goal: `≤ ${entry.goal.toFixed(2)}×`,
      value: times(value),
      met: atMost(value, entry.goal),
    });
  }

  // The local host against the jose baseline, at the heaviest load measured (64 connections by default).
  const connectionCounts = [...new Set(ratios.map((r) => r.connections))].sort((a, b) => a - b);
  const heavy = connectionCounts.includes(64) ? 64 : connectionCounts.at(-1);
  const mrJose = ratios.find(
    (r) => r.flow === 'Mixed Reality' && r.baseline === 'jose' && r.connections === heavy,
  )?.requestsPerSecond;
  checks.push({
    target: `Local host: Mixed Reality req/s vs jose baseline, ${heavy ?? 64} conns`,
    goal: '≥ 0.70×',
    value: times(mrJose),
    met: atLeast(mrJose, 0.7),
  });

  // Ledger required (every 200 committed first) against off.
  const ledger = measurements.ledger?.summaries ?? [];
  const ledgerCounts = [...new Set(ledger.map((s) => s.connections))].sort((a, b) => a - b);
  const ledgerHeavy = ledgerCounts.includes(64) ? 64 : ledgerCounts.at(-1);
  const off = ledger.find((s) => s.targetId === LEDGER_TARGET.off && s.connections === ledgerHeavy);
  const required = ledger.find((s) => s.targetId === LEDGER_TARGET.required && s.connections === ledgerHeavy);
  const ledgerRatio = off && required ? ratio(required.requestsPerSecond, off.requestsPerSecond) : undefined;
  checks.push({
    target: `Ledger required: req/s vs off, ${ledgerHeavy ?? 64} conns`,
    goal: '≥ 0.80×',
    value: times(ledgerRatio),
    met: atLeast(ledgerRatio, 0.8),
  });

  const overhead = measurements.coldStart?.moduleLoadOverheadMs;
  checks.push({
    target: 'Cold start: app modules loaded, over a bare node start (deployment artifact)',
    goal: '≤ +40 ms',
    value: overhead === undefined ? 'n/a' : `+${overhead.toFixed(1)} ms`,
    met: atMost(overhead, 40),
  });
  const keyVaultToken = measurements.coldStart?.firstTokenKeyVault.readyMs;
  const overBare = measurements.coldStart?.firstTokenKeyVaultOverBare;
  checks.push({
    target: 'Cold start: first Key Vault token vs a bare node start (deployment artifact)',
    goal: '≤ 3.00×',
    value:
      keyVaultToken === undefined || overBare === undefined
        ? 'n/a'
        : `${overBare.toFixed(2)}× (${keyVaultToken.toFixed(1)} ms)`,
    met: atMost(overBare, 3),
  });
  const warm = measurements.vault?.phases.find((p) => p.label.startsWith('warm'));
  checks.push({
    target: 'Vault reads per 1,000 warm tokens',
    goal: '0',
    value: warm ? warm.vaultReadsPer1000Tokens.toFixed(1) : 'n/a',
    met: warm ? warm.vaultReads === 0 : undefined,
  });
  return checks;
}

/** Renders rows as an aligned text table (numbers right-aligned). */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const numeric = headers.map(
    (_, column) =>
      rows.length > 0 && rows.every((row) => /^[-\d.,×%]+( ?(ms|µs|MB|×))?$|^n\/a$/.test(row[column] ?? '')),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (numeric[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const fixed = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
const megabytes = (bytes: number) => `${(bytes / 1_048_576).toFixed(0)} MB`;
const times = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : 'n/a');

/** A table of load runs; `auxiliaryColumn` names the extra CPU column (the stub host's, Azurite's) when there is one. */
function loadTable(summaries: readonly LoadSummary[], auxiliaryColumn?: string): string {
  const header = ['target', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req'];
  if (auxiliaryColumn) header.push(auxiliaryColumn);
  header.push('non-2xx', 'errors', 'req/s by rep');
  return formatTable(header, loadRows(summaries, auxiliaryColumn !== undefined));
}

function loadRows(summaries: readonly LoadSummary[], withAuxiliary: boolean): string[][] {
  return summaries.map((s) => [
    s.label,
    String(s.connections),
    fixed(s.requestsPerSecond),
    fixed(s.p50Ms, 2),
    fixed(s.p99Ms, 2),
    fixed(s.cpuMicrosPerRequest),
    ...(withAuxiliary ? [fixed(s.auxiliaryCpuMicrosPerRequest)] : []),
    s.non2xx === 0
      ? '0'
      : `${s.non2xx} (${Object.keys(s.statusCodes)
          .filter((code) => !code.startsWith('2'))
          .join(',')})`,
    String(s.errors + s.timeouts),
    s.requestsPerSecondByRep.join(' / '),
  ]);
}

/** The whole report as terminal text. */
export function renderReport(
  header: string,
  machine: MachineInfo,
  measurements: BenchMeasurements,
  ratios: readonly BaselineRatio[],
  checks: readonly TargetCheck[],
  notes: readonly string[],
): string {
  const out: string[] = [
    header,
    `machine: ${machine.cpus} × ${machine.cpuModel}, node ${machine.node}, load average at start ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}, at end ${machine.loadAverageAtEnd.map((l) => l.toFixed(2)).join(' ')}`,
    '',
  ];
  const { throughput, ledger, inProcess, coldStart, vault, realWorker } = measurements;

  if (throughput) {
    out.push('Throughput through the local host and baselines (medians; CPU = server process µs per request)');
    out.push(loadTable(throughput.summaries), '');
    out.push('Ratios, app ÷ baseline in the same run (req/s: higher is better; CPU/request and p99: lower is better)');
    out.push(
      formatTable(
        ['flow', 'baseline', 'conns', 'req/s', 'CPU/req', 'p99'],
        ratios.map((r) => [
          r.flow,
          r.baseline,
          String(r.connections),
          times(r.requestsPerSecond),
          times(r.cpuPerRequest),
          times(r.p99),
        ]),
      ),
      '',
    );
    out.push(
      'Where the CPU per request goes (µs; baseline: jose for JWT flows, SWT for WRAP; host floor: the local host with a no-op handler)',
    );
    out.push(
      formatTable(
        ['flow', 'conns', 'baseline', 'host floor', 'app', 'app − floor', 'handler in process'],
        cpuBreakdown(measurements).map((b) => [
          b.flow,
          String(b.connections),
          fixed(b.baseline),
          fixed(b.hostFloor),
          fixed(b.app),
          fixed(b.handlerInHost),
          fixed(b.handlerInProcess),
        ]),
      ),
      '',
    );
    for (const profile of throughput.profiles) {
      out.push(
        `CPU profile ${profile.path} (${fixed(profile.sampledMs)} ms sampled, main thread busy ${fixed(profile.busyPercent)} %)`,
      );
      out.push(
        formatTable(
          ['self %', 'incl %', 'function (by self time)'],
          profile.bySelf.slice(0, 12).map((h) => [fixed(h.selfPercent, 1), fixed(h.inclusivePercent, 1), h.name]),
        ),
      );
      out.push(
        formatTable(
          ['self %', 'area'],
          profile.areas.slice(0, 10).map((a) => [fixed(a.selfPercent, 1), a.area]),
        ),
        '',
      );
    }
  }
  if (realWorker) {
    out.push(
      `Real Functions Node.js worker ${realWorker.workerVersion} under a stub host (optional): the app vs a no-op function on the same route; ` +
        'CPU = the worker process, "stub µs/req" = the stub host',
    );
    out.push(loadTable([...realWorker.summaries, ...realWorker.paced], 'stub µs/req'));
    const pacedSts = realWorker.paced.find((s) => s.targetId === REAL_WORKER_TARGET.stsPaced);
    const pacedNoop = realWorker.paced.find((s) => s.targetId === REAL_WORKER_TARGET.noopPaced);
    if (pacedSts && pacedNoop) {
      out.push(
        `  same rate (${realWorker.pacedRate} req/s): app ÷ no-op = ${times(ratio(pacedSts.cpuMicrosPerRequest, pacedNoop.cpuMicrosPerRequest))} worker CPU per request ` +
          `(+${fixed(pacedSts.cpuMicrosPerRequest - pacedNoop.cpuMicrosPerRequest)} µs)`,
      );
    }
    const pacedFloor = realWorker.paced.find((s) => s.targetId === REAL_WORKER_TARGET.floorPaced);
    if (pacedSts && pacedNoop && pacedFloor) {
      // The floor (one signature and the contract's answer) splits the gap: the token's share, and the app's own.
      out.push(
        `  same rate: signature floor ÷ no-op = ${times(ratio(pacedFloor.cpuMicrosPerRequest, pacedNoop.cpuMicrosPerRequest))} ` +
          `(+${fixed(pacedFloor.cpuMicrosPerRequest - pacedNoop.cpuMicrosPerRequest)} µs, the token's own: a signature and the answer the contract fixes); ` +
          `app ÷ floor = ${times(ratio(pacedSts.cpuMicrosPerRequest, pacedFloor.cpuMicrosPerRequest))} ` +
          `(+${fixed(pacedSts.cpuMicrosPerRequest - pacedFloor.cpuMicrosPerRequest)} µs, the app's own checks and bookkeeping)`,
      );
    }
    for (const connections of [...new Set(realWorker.summaries.map((s) => s.connections))]) {
      const sts = realWorker.summaries.find(
        (s) => s.targetId === REAL_WORKER_TARGET.sts && s.connections === connections,
      );
      const noop = realWorker.summaries.find(
        (s) => s.targetId === REAL_WORKER_TARGET.noop && s.connections === connections,
      );
      if (sts && noop) {
        out.push(
          `  ${connections} conns: app ÷ no-op = ${times(ratio(sts.cpuMicrosPerRequest, noop.cpuMicrosPerRequest))} worker CPU per request ` +
            `(+${fixed(sts.cpuMicrosPerRequest - noop.cpuMicrosPerRequest)} µs), ${times(ratio(sts.requestsPerSecond, noop.requestsPerSecond))} req/s, ` +
            `${times(ratio(sts.p99Ms, noop.p99Ms))} p99`,
        );
      }
    }
    out.push('');
  }
  if (ledger) {
    out.push('Ledger off vs required (Azurite), Mixed Reality flow; "Azurite µs/req" = Azurite\'s CPU per token');
    out.push(loadTable(ledger.summaries, 'Azurite µs/req'));
    for (const connections of [...new Set(ledger.summaries.map((s) => s.connections))]) {
      const off = ledger.summaries.find((s) => s.targetId === LEDGER_TARGET.off && s.connections === connections);
      const on = ledger.summaries.find((s) => s.targetId === LEDGER_TARGET.required && s.connections === connections);
      if (off && on)
        out.push(
          `  ${connections} conns: required ÷ off = ${times(ratio(on.requestsPerSecond, off.requestsPerSecond))} req/s, ${times(ratio(on.p99Ms, off.p99Ms))} p99`,
        );
    }
    out.push('');
  }
  if (inProcess) {
    out.push(
      `In process: handlers called directly with prepared HttpRequests (no HTTP), ${inProcess.iterations} calls each, one at a time ` +
        `and ${inProcess.concurrency} in flight, medians of ${inProcess.rounds} interleaved rounds; CPU counts every thread (the signing pool too)`,
    );
    const row = (
      name: string,
      m: {
        sequential: { cpuMicros: number; wallMicros: number; mainThreadShare: number };
        concurrent: { cpuMicros: number; mainThreadShare: number };
      },
    ) => [
      name,
      fixed(m.sequential.cpuMicros, 1),
      fixed(m.sequential.wallMicros, 1),
      fixed(100 * m.sequential.mainThreadShare),
      fixed(m.concurrent.cpuMicros, 1),
      fixed(100 * m.concurrent.mainThreadShare),
    ];
    out.push(
      formatTable(
        [
          'what',
          'CPU µs/op',
          'wall µs/op',
          'main thread %',
          `CPU µs/op ×${inProcess.concurrency}`,
          `main thread % ×${inProcess.concurrency}`,
        ],
        [
          ...Object.entries(inProcess.flows).map(([flow, f]) =>
            row(`flow ${flow}${f.non200 > 0 ? ` (${f.non200} non-200!)` : ''}`, f),
          ),
          ...Object.entries(inProcess.primitives).map(([name, p]) => row(name, p)),
        ],
      ),
      '',
    );
    for (const [flow, stages] of Object.entries(inProcess.stagesByFlow ?? {})) {
      if (!stages) continue;
      out.push(
        `Where a ${flow} token's CPU goes in process (${inProcess.concurrency} in flight; shares of a CPU profile × the CPU per token above)`,
      );
      out.push(
        formatTable(
          ['stage', 'µs', 'share'],
          stages.map((s) => [s.stage, fixed(s.micros, 1), `${fixed(100 * s.share, 1)} %`]),
        ),
        '',
      );
    }
  }
  if (coldStart) {
    out.push(
      `Cold start (${coldStart.bare.starts} starts each, medians; ms since the process started, as measured inside it)`,
    );
    out.push(
      formatTable(
        ['what', 'ms', 'CPU ms', 'modules loaded at', 'spawn→answer ms', 'RSS'],
        [
          coldStart.bare,
          coldStart.bareWithTestCa,
          coldStart.modulesLoaded,
          coldStart.firstTokenEmbedded,
          coldStart.firstTokenKeyVault,
        ].map((f) => [
          f.label,
          fixed(f.readyMs, 1),
          f.cpuMs === undefined ? 'n/a' : fixed(f.cpuMs, 1),
          f.modulesLoadedMs === undefined ? '' : `${fixed(f.modulesLoadedMs, 1)} ms`,
          fixed(f.wallMs, 1),
          megabytes(f.rssBytes),
        ]),
      ),
    );
    out.push(
      `  deployment artifact: ${(coldStart.artifactBytes / 1_048_576).toFixed(1)} MB; modules over a bare start: ${fixed(coldStart.moduleLoadOverheadMs, 1)} ms; first Key Vault token ${fixed(coldStart.firstTokenKeyVaultOverBare, 2)}× a bare start`,
    );
    for (const census of coldStart.census) {
      out.push(
        `  ${census.label}: ${census.modules} modules from ${census.packages.length} packages; Azure SDKs: ${census.azureSdks.length > 0 ? census.azureSdks.join(', ') : 'none'}`,
      );
    }
    out.push('');
  }
  if (vault) {
    out.push(
      `Vault traffic (Key Vault test server; Mixed Reality handler in process, 32 concurrent; cache bound ${vault.cacheMaxEntries.toLocaleString('en-US')} entries → ` +
        `expected ${fixed(vault.expectedSpreadReadsPer1000)} reads per 1,000 once full)`,
    );
    out.push(
      formatTable(
        ['phase', 'tokens', 'vault reads', 'per 1,000', 'cache hits', 'evictions', 'cached', 'tokens/s', 'RSS', 'heap'],
        vault.phases.map((p) => [
          p.label,
          String(p.tokens),
          String(p.vaultReads),
          fixed(p.vaultReadsPer1000Tokens, 1),
          String(p.cacheHits),
          String(p.cacheEvictions),
          String(p.cacheEntries),
          fixed(p.tokensPerSecond),
          megabytes(p.rssBytes),
          megabytes(p.heapUsedBytes),
        ]),
      ),
      '',
    );
  }
  out.push('Targets (docs/performance.md#targets)');
  out.push(
    formatTable(
      ['', 'target', 'goal', 'this run'],
      checks.map((c) => [c.met === undefined ? '[ n/a ]' : c.met ? '[ met ]' : '[MISSED]', c.target, c.goal, c.value]),
    ),
  );
  if (notes.length > 0) out.push('', ...notes);
  return out.join('\n');
}
