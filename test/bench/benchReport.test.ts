import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBenchOptions } from '../../tooling/bench/benchOptions.js';
import { summarizeCpuProfile } from '../../tooling/bench/cpuProfileSummary.js';
import type { LoadSummary } from '../../tooling/bench/loadMatrix.js';
import { baselineRatios, checkTargets, cpuBreakdown, formatTable } from '../../tooling/bench/report.js';
import { median, percentileOfSorted, ratio } from '../../tooling/bench/statistics.js';
import { REAL_WORKER_TARGET } from '../../tooling/bench/realWorker.js';
import { TARGET, type ThroughputResults } from '../../tooling/bench/throughput.js';
import { tokenStageShares } from '../../tooling/bench/tokenStages.js';

/**
 * `npm run bench` prints figures and never fails on them; what can be wrong is how it reads them: the
 * statistics, which baseline a flow is compared with, and whether a target is marked met or missed.
 */

function summary(
  targetId: string,
  connections: number,
  requestsPerSecond: number,
  cpuMicrosPerRequest: number,
  p99Ms: number,
): LoadSummary {
  return {
    targetId,
    label: targetId,
    connections,
    repetitions: 3,
    requestsPerSecond,
    p50Ms: p99Ms / 4,
    p99Ms,
    cpuMicrosPerRequest,
    auxiliaryCpuMicrosPerRequest: Number.NaN,
    responses: requestsPerSecond * 12,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    statusCodes: { '200': requestsPerSecond * 12 },
    requestsPerSecondByRep: [requestsPerSecond, requestsPerSecond, requestsPerSecond],
  };
}

describe('statistics', () => {
  it('takes the median of odd and even counts without reordering the input', () => {
    const values = [5, 1, 4, 2, 3];
    expect(median(values)).toBe(3);
    expect(values).toEqual([5, 1, 4, 2, 3]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('uses nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 200 }, (_, i) => i + 1);
    expect(percentileOfSorted(sorted, 50)).toBe(100);
    expect(percentileOfSorted(sorted, 99)).toBe(198);
    expect(percentileOfSorted([7], 99)).toBe(7);
    expect(percentileOfSorted(new Float64Array(0), 50)).toBeNaN();
  });

  it('refuses a ratio against nothing', () => {
    expect(ratio(3, 4)).toBe(0.75);
    expect(ratio(3, 0)).toBeNaN();
    expect(ratio(Number.NaN, 2)).toBeNaN();
  });
});

describe('ratios and targets', () => {
  const throughput: ThroughputResults = {
    profiles: [],
    summaries: [
      summary(TARGET.appMixedReality, 64, 9_000, 120, 13),
      summary(TARGET.joseMixedReality, 64, 10_000, 110, 10),
      summary(TARGET.cryptoMixedReality, 64, 12_000, 80, 9),
      summary(TARGET.appIssueToken, 64, 5_000, 200, 30),
      summary(TARGET.joseIssueToken, 64, 10_000, 100, 10),
      summary(TARGET.appWrap, 64, 7_000, 90, 20),
      summary(TARGET.swtWrap, 64, 10_000, 60, 10),
      summary(TARGET.floorGet, 64, 11_000, 70, 8),
      summary(TARGET.floorPost, 64, 9_000, 95, 9),
    ],
  };
  const ratios = baselineRatios(throughput);

  it('pairs each flow with its own baseline at the same connection count', () => {
    const mrJose = ratios.find((r) => r.flow === 'Mixed Reality' && r.baseline === 'jose');
    expect(mrJose).toMatchObject({ connections: 64, requestsPerSecond: 0.9, p99: 1.3 });
    expect(mrJose?.cpuPerRequest).toBeCloseTo(120 / 110);
    expect(ratios.find((r) => r.flow === 'WRAP')).toMatchObject({
      baseline: 'SWT',
      requestsPerSecond: 0.7,
      cpuPerRequest: 1.5,
      p99: 2,
    });
    // No limited access token run in this set: no made-up ratio for it.
    expect(ratios.some((r) => r.flow === 'issueLimitedAccessToken')).toBe(false);
  });

  it('marks targets met at exactly the goal, missed beyond it, and n/a when a section did not run', () => {
    const perOp = (cpuMicros: number) => ({ cpuMicros, wallMicros: cpuMicros, mainThreadShare: 1 });
    const inProcess = {
      iterations: 100,
      concurrency: 32,
      rounds: 5,
      flows: {
        mixedRealityToken: { sequential: perOp(70), concurrent: perOp(60), non200: 0 },
        wrapToken: { sequential: perOp(30), concurrent: perOp(25), non200: 0 },
      },
      primitives: {
        'ES256 sign, node:crypto sync': { sequential: perOp(30), concurrent: perOp(30) },
        'HMAC-SHA256 (400 bytes)': { sequential: perOp(2), concurrent: perOp(2) },
      },
    };
    const realWorker = {
      harness: '/somewhere',
      workerVersion: '3.9.0',
      summaries: [
        summary(REAL_WORKER_TARGET.sts, 64, 800, 300, 20),
        summary(REAL_WORKER_TARGET.noop, 64, 1_000, 240, 10),
      ],
      paced: [
        summary(REAL_WORKER_TARGET.stsPaced, 10, 400, 262, 5),
        summary(REAL_WORKER_TARGET.noopPaced, 10, 400, 200, 5),
      ],
      pacedRate: 400,
    };
    const withLocalHost = baselineRatios({
      profiles: [],
      summaries: [
        summary(TARGET.appMixedReality, 64, 6_999, 120, 13),
        summary(TARGET.joseMixedReality, 64, 10_000, 110, 10),
      ],
    });
    const checks = checkTargets({ inProcess, realWorker, coldStart: undefined, vault: undefined }, withLocalHost);
    const byName = (prefix: string) => checks.find((c) => c.target.startsWith(prefix));
    // The CPU target is read at one rate for both apps; flat out, the slower app's figure is shown beside it.
    expect(byName('Real worker: worker CPU per token vs no-op function, same rate (400 req/s)')).toMatchObject({
      met: false,
      value: '1.31×',
    });
    expect(byName('Real worker: worker CPU per token vs no-op function, flat out, 64')).toMatchObject({
      met: true,
      value: '1.25×',
    });
    expect(byName('Real worker: req/s')).toMatchObject({ met: true, value: '0.80×' });
    expect(byName('In process: Mixed Reality')).toMatchObject({ met: true, value: '2.00×' });
    expect(byName('In process: WRAP')).toMatchObject({ met: false, value: '12.50×' });
    // A flow that did not run has no made-up figure.
    expect(byName('In process: issueToken')).toMatchObject({ met: undefined, value: 'n/a' });
    expect(byName('Local host: Mixed Reality req/s vs jose')).toMatchObject({ met: false, value: '0.70×' });
    expect(byName('Ledger required')).toMatchObject({ met: undefined, value: 'n/a' });
    expect(byName('Cold start: app modules loaded')).toMatchObject({ met: undefined, value: 'n/a' });
    expect(byName('Vault reads per 1,000 warm tokens')).toMatchObject({ met: undefined });
    // Without the optional real-worker section, its targets say n/a rather than missed.
    const withoutWorker = checkTargets({ throughput }, ratios);
    expect(withoutWorker.find((c) => c.target.startsWith('Real worker: req/s'))).toMatchObject({
      met: undefined,
      value: 'n/a',
    });
    expect(withoutWorker.find((c) => c.target.startsWith('Local host: Mixed Reality'))).toMatchObject({
      met: true,
      value: '0.90×',
    });
  });

  it('splits CPU per request into the host floor and the handler', () => {
    const rows = cpuBreakdown({ throughput });
    expect(rows.find((r) => r.flow === 'Mixed Reality')).toMatchObject({
      baseline: 110,
      hostFloor: 70,
      app: 120,
      handlerInHost: 50,
    });
    expect(rows.find((r) => r.flow === 'WRAP')).toMatchObject({
      baseline: 60,
      hostFloor: 95,
      app: 90,
      handlerInHost: -5,
    });
  });
});

describe('formatTable', () => {
  it('right-aligns numeric columns and left-aligns text', () => {
    const text = formatTable(
      ['target', 'req/s'],
      [
        ['app', '900'],
        ['baseline', '10000'],
      ],
    );
    expect(text.split('\n')).toEqual(['target    req/s', '--------  -----', 'app         900', 'baseline  10000']);
  });
});

describe('options', () => {
  it('has a quick profile, section selection and clear errors', () => {
    const quick = parseBenchOptions(['--quick', '--skip', 'ledger,vault']);
    expect(quick).not.toBe('help');
    if (quick === 'help') return;
    expect(quick).toMatchObject({ profileName: 'quick', repetitions: 1, durationSeconds: 2, connections: [10, 64] });
    expect([...quick.sections]).toEqual(['inprocess', 'coldstart', 'throughput', 'realworker']);
    expect(quick.realWorkerHarness).toBeUndefined();
    const withWorker = parseBenchOptions(['--real-worker', '/somewhere/harness']);
    expect(withWorker !== 'help' && withWorker.realWorkerHarness).toBe('/somewhere/harness');
    const full = parseBenchOptions([]);
    if (full === 'help') throw new Error('unexpected help');
    expect(full.repetitions).toBeGreaterThanOrEqual(3);
    expect(() => parseBenchOptions(['--only', 'nonsense'])).toThrow(/unknown section "nonsense"/);
    expect(() => parseBenchOptions(['--reps', '0'])).toThrow(/--reps must be a whole number from 1 to 20/);
    expect(parseBenchOptions(['--help'])).toBe('help');
  });
});

describe('CPU profile summary', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sts-bench-profile-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('attributes self and inclusive time, and counts idle as not busy', async () => {
    const file = (url: string) => `file:///somewhere/${url}`;
    const profile = {
      nodes: [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 4] },
        {
          id: 2,
          callFrame: { functionName: 'handler', url: file('dist/shared/app/stsFunction.js'), lineNumber: 9 },
          children: [3],
        },
        { id: 3, callFrame: { functionName: 'sign', url: 'node:internal/crypto/sig', lineNumber: 0 } },
        { id: 4, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
      ],
      // Each sample lasts until the next one: handler 100, sign 300, idle 600 (the last sample's span is unknown).
      samples: [2, 3, 4, 2],
      timeDeltas: [0, 100, 300, 600],
    };
    const path = join(dir, 'p.cpuprofile');
    await writeFile(path, JSON.stringify(profile));
    const result = await summarizeCpuProfile(path);
    expect(result.sampledMs).toBeCloseTo(1);
    expect(result.busyPercent).toBeCloseTo(40);
    const handler = result.byInclusive.find((h) => h.name.startsWith('handler'));
    expect(handler).toMatchObject({ selfPercent: 10, inclusivePercent: 40 });
    expect(result.bySelf[0]).toMatchObject({ name: 'sign node:internal/crypto/sig:1', selfPercent: 30 });
    expect(result.areas.find((a) => a.area === 'node: internals')?.selfPercent).toBeCloseTo(30);
  });
});

/** A CPU profile node of a file under a made-up project root. */
const file = (url: string) => `file:///somewhere/${url}`;
const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({
  id,
  callFrame: { functionName, url },
  children,
});

describe('Mixed Reality token by stage', () => {
  it('gives each sample to the deepest stage on its stack, GC to its own line, and leaves the loop out', () => {
    const profile = {
      nodes: [
        frame(1, '(root)', '', [2, 7, 8]),
        frame(2, 'lane', file('tooling/bench/inProcessChild.ts'), [3]),
        frame(3, 'serve', file('dist/shared/app/stsFunction.js'), [4]),
        frame(4, 'issueMixedRealityToken', file('dist/shared/flows/mixedRealityToken.js'), [5]),
        frame(5, 'verifyAccountKey', file('dist/shared/credentials/credentialDirectory.js'), [6]),
        frame(6, 'secretDigest', file('dist/shared/security/constantTime.js')),
        frame(7, '(garbage collector)', ''),
        frame(8, 'runMicrotasks', ''),
      ],
      // lane alone 100 (left out), then of 900 µs: serve 100, parsing 100, lookup 100, digest 300, GC 200, microtasks 100.
      samples: [2, 3, 4, 5, 6, 7, 8, 2],
      timeDeltas: [0, 100, 100, 100, 100, 300, 200, 100],
    };
    const shares = tokenStageShares(profile, /\/tooling\/bench\/inProcessChild\.ts$/);
    const share = (prefix: string) => [...shares].find(([stage]) => stage.startsWith(prefix))?.[1];
    expect(share('key comparison')).toBeCloseTo(3 / 9);
    expect(share('credential lookup')).toBeCloseTo(1 / 9);
    expect(share('request parsing')).toBeCloseTo(1 / 9);
    expect(share('wrapper')).toBeCloseTo(1 / 9);
    expect(share('garbage collection')).toBeCloseTo(2 / 9);
    expect(share('runtime')).toBeCloseTo(1 / 9);
    expect(share('signing')).toBe(0);
  });

  it('counts profiles taken one batch at a time together, weighted by their busy time', () => {
    const batch = (leaf: number, micros: number) => ({
      nodes: [
        frame(1, '(root)', '', [2, 7]),
        frame(2, 'lane', file('tooling/bench/inProcessChild.ts'), [3]),
        frame(3, 'serve', file('dist/shared/app/stsFunction.js')),
        frame(7, '(garbage collector)', ''),
      ],
      samples: [leaf, 1],
      timeDeltas: [0, micros],
    });
    // 300 µs of wrapper in one batch, 100 µs of collection in the other.
    const shares = tokenStageShares([batch(3, 300), batch(7, 100)], /\/tooling\/bench\/inProcessChild\.ts$/);
    const share = (prefix: string) => [...shares].find(([stage]) => stage.startsWith(prefix))?.[1];
    expect(share('wrapper')).toBeCloseTo(3 / 4);
    expect(share('garbage collection')).toBeCloseTo(1 / 4);
  });
});

describe('WRAP token by stage', () => {
  it('gives the body reader and what it calls to body, the HMAC to signing and the SWT encoding to claims', () => {
    const profile = {
      nodes: [
        frame(1, '(root)', '', [2]),
        frame(2, 'serve', file('dist/shared/app/stsFunction.js'), [3, 5]),
        frame(3, 'readBoundedBody', file('dist/shared/http/boundedBody.js'), [4]),
        frame(4, 'read', 'node:internal/webstreams/readablestream'),
        frame(5, 'issueWrapToken', file('dist/shared/flows/wrapToken.js'), [6, 7]),
        frame(6, 'encodeSwtComponent', file('dist/shared/tokens/swt.js')),
        frame(7, 'hmacBase64', file('dist/shared/tokens/swt.js'), [8]),
        frame(8, 'digest', ''),
      ],
      // Of 400 µs: web stream under the reader 100, SWT encoding 100, HMAC digest 200.
      samples: [4, 6, 8, 8, 1],
      timeDeltas: [0, 100, 100, 100, 100],
    };
    const shares = tokenStageShares(profile, /\/tooling\/bench\/inProcessChild\.ts$/);
    const share = (prefix: string) => [...shares].find(([stage]) => stage.startsWith(prefix))?.[1];
    expect(share('body')).toBeCloseTo(1 / 4);
    expect(share('claims')).toBeCloseTo(1 / 4);
    expect(share('signing')).toBeCloseTo(2 / 4);
  });
});
