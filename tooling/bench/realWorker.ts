import { spawn, type ChildProcess } from 'node:child_process';
import { access, copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { projectRoot } from '../../tools/localHost/projectPaths.js';
import type { BenchChild } from './benchChild.js';
import type { BenchFixtures } from './benchFixtures.js';
import type { BenchPlan } from './benchOptions.js';
import {
  runLoadMatrix,
  verifyTargets,
  type LoadSummary,
  type LoadTarget,
  type ServerAnnouncement,
} from './loadMatrix.js';
import type { ProcessUsage } from './parentChannel.js';
import { processCpuMicros } from './procStat.js';
import { startLoadWorker } from './throughput.js';

/**
 * The optional real-runtime figure (docs/performance.md#real-worker): the Mixed Reality flow inside the real
 * Azure Functions Node.js worker, next to a no-op function on the same route answering a fixed body, both
 * driven by a stub Functions host that speaks the worker's gRPC protocol and turns HTTP requests into
 * invocations. Neither the worker nor the stub host is part of this project (the worker is someone else's
 * code and is never committed): the section runs only when a harness folder is named with `--real-worker DIR`
 * (or `BENCH_REAL_WORKER`), holding `run.sh` and `stub-host.mjs`; the worker itself is found by the harness
 * (its `vendor/` folder, or `STUB_WORKER_DIR` / `STUB_PROTO_DIR`). Elsewhere the section says it was skipped.
 *
 * CPU per request is the worker process's (read from `/proc/<pid>/stat`, Linux only), the stub host's is
 * shown beside it; both apps run side by side and are loaded in turn, interleaved, like every other section.
 */

export const REAL_WORKER_TARGET = {
  sts: 'real-worker:mixedReality',
  noop: 'real-worker:noop',
  floor: 'real-worker:floor',
  stsPaced: 'real-worker:mixedReality:paced',
  noopPaced: 'real-worker:noop:paced',
  floorPaced: 'real-worker:floor:paced',
} as const;

const PACED_ID = {
  [REAL_WORKER_TARGET.sts]: REAL_WORKER_TARGET.stsPaced,
  [REAL_WORKER_TARGET.noop]: REAL_WORKER_TARGET.noopPaced,
  [REAL_WORKER_TARGET.floor]: REAL_WORKER_TARGET.floorPaced,
} as const;

/** Connections of the paced runs, and their rate as a share of the app's own throughput at that count. */
const PACED_CONNECTIONS = 10;
const PACED_SHARE = 0.5;

export interface RealWorkerResults {
  readonly harness: string;
  readonly workerVersion: string;
  /** As fast as each app answers: req/s, and CPU per request at that rate. */
  readonly summaries: readonly LoadSummary[];
  /**
   * Both apps at one fixed rate (half the app's own throughput at 10 connections): CPU per request with the
   * same number of requests per event-loop turn. The worker's CPU per request falls as its rate rises (gRPC
   * frames and socket writes are shared by the requests of one turn), so an app answering more slowly looks
   * dearer per request when each runs flat out on a shared machine; at one rate that effect is gone.
   */
  readonly paced: readonly LoadSummary[];
  readonly pacedRate: number;
}

interface StubHost {
  readonly url: string;
  readonly workerPid: number;
  readonly stubPid: number;
  readonly workerVersion: string;
  stop(): Promise<void>;
}

/** A no-op function app: the same route and method as the Mixed Reality flow, a fixed body, the same HTTP streaming. */
const NOOP_FUNCTION = `import azureFunctions from '@azure/functions';
const { app } = azureFunctions;
app.setup({ enableHttpStream: true });
const body = JSON.stringify({ AccessToken: 'bench.noop.token' });
app.http('noop', {
  route: 'accounts/{accountId}/token',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: async () => ({ status: 200, headers: { 'Content-Type': 'application/json; charset=utf-8' }, body }),
});
`;

/**
 * The token's floor: what no Mixed Reality token can do without, on the same route with the same HTTP
 * streaming. One ES256 signature (`node:crypto`, P-256, IEEE P1363) over a header and payload of the app's claim
 * names and sizes, and the app's answer: the same body and the same eight headers (the no-store set, `MS-CV`,
 * `Content-Type`, `Content-Length`), which the wire contract fixes. No credential check, no limiter, no ledger, no
 * telemetry: the app's cost over this floor is its own work; the floor's over the no-op is the token's.
 */
const FLOOR_FUNCTION = `import { generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import azureFunctions from '@azure/functions';
const { app } = azureFunctions;
app.setup({ enableHttpStream: true });
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const segment = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const header = segment({ alg: 'ES256', kid: randomBytes(32).toString('base64url').slice(0, 43), typ: 'JWT' });
app.http('floor', {
  route: 'accounts/{accountId}/token',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: async (request) => {
    const id = request.params.accountId;
    const now = Math.floor(Date.now() / 1000);
    const input = header + '.' + segment({
      aid: id, cai: id, tid: '00000000-0000-0000-0000-000000000000', apr: 'eastus2',
      iss: 'https://sts.bench.example/', aud: 'https://sts.mixedreality.azure.com', iat: now, nbf: now,
      exp: now + 86400, jti: randomUUID(),
    });
    const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const body = '{"AccessToken":"' + input + '.' + signature.toString('base64url') + '"}';
    return {
      status: 200,
      headers: {
        'Cache-Control': 'no-store, no-cache',
        Pragma: 'no-cache',
        Expires: '-1',
        'X-Content-Type-Options': 'nosniff',
        'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
        'MS-CV': randomBytes(16).toString('base64').slice(0, 22) + '.0',
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': String(Buffer.byteLength(body)),
      },
      body,
    };
  },
});
`;

export async function measureRealWorker(
  harness: string,
  plan: BenchPlan,
  fixtures: BenchFixtures,
  log: (line: string) => void,
): Promise<RealWorkerResults> {
  await access(join(harness, 'run.sh')).catch(() => {
    throw new Error(`${harness} has no run.sh: --real-worker names the stub-host harness folder`);
  });
  // The benchmark's snapshot of the app is a function app once it has host.json.
  await copyFile(join(projectRoot, 'host.json'), join(fixtures.appRoot, 'host.json'));
  const noopRoot = await writeFunctionApp('noop', NOOP_FUNCTION);
  const floorRoot = await writeFunctionApp('floor', FLOOR_FUNCTION);

  const hosts: StubHost[] = [];
  const worker = await startLoadWorker(fixtures);
  try {
    // STUB_FRONT_END_XFF: X-Forwarded-For as App Service's front end adds it, so the app sees a client address as in Azure.
    const env = fixtures.childEnv({
      STUB_NO_LOCAL_SETTINGS: '1',
      STUB_WORKER_NODE: process.execPath,
      STUB_FRONT_END_XFF: '1',
    });
    const sts = await startStubHost(harness, fixtures.appRoot, env);
    hosts.push(sts);
    const noop = await startStubHost(harness, noopRoot, env);
    hosts.push(noop);
    const floor = await startStubHost(harness, floorRoot, env);
    hosts.push(floor);
    log(
      `  real worker ${sts.workerVersion}: app at ${sts.url} (worker pid ${sts.workerPid}), no-op at ${noop.url} (worker pid ${noop.workerPid}), ` +
        `signature floor at ${floor.url} (worker pid ${floor.workerPid})`,
    );
    const request = fixtures.requests.mixedRealityToken;
    const targets: LoadTarget[] = [
      {
        id: REAL_WORKER_TARGET.sts,
        label: 'real worker  Mixed Reality',
        server: asBenchChild(sts),
        request,
        auxiliaryCpuMicros: () => processCpuMicros(sts.stubPid),
      },
      {
        id: REAL_WORKER_TARGET.noop,
        label: 'real worker  no-op function',
        server: asBenchChild(noop),
        request: { ...request, looksIssued: (body) => body.includes('bench.noop.token') },
        auxiliaryCpuMicros: () => processCpuMicros(noop.stubPid),
      },
      {
        id: REAL_WORKER_TARGET.floor,
        label: 'real worker  signature floor',
        server: asBenchChild(floor),
        request: { ...request, looksIssued: (body) => body.startsWith('{"AccessToken":"ey') },
        auxiliaryCpuMicros: () => processCpuMicros(floor.stubPid),
      },
    ];
    await verifyTargets(targets);
    const summaries = await runLoadMatrix(worker, targets, plan, log);
    const appRate = summaries.find(
      (s) => s.targetId === REAL_WORKER_TARGET.sts && s.connections === PACED_CONNECTIONS,
    )?.requestsPerSecond;
    const pacedRate = Math.max(
      50,
      Math.round(PACED_SHARE * (appRate ?? Math.min(...summaries.map((s) => s.requestsPerSecond)))),
    );
    const pacedTargets = targets.map((target) => ({
      ...target,
      id: PACED_ID[target.id as keyof typeof PACED_ID],
      label: `${target.label}, ${pacedRate} req/s`,
    }));
    const paced = await runLoadMatrix(
      worker,
      pacedTargets,
      { ...plan, connections: [PACED_CONNECTIONS], warmupSeconds: 0, overallRate: pacedRate },
      log,
    );
    return { harness, workerVersion: sts.workerVersion, summaries, paced, pacedRate };
  } finally {
    await Promise.all([worker.stop(), ...hosts.map((host) => host.stop())]);
    await rm(noopRoot, { recursive: true, force: true });
    await rm(floorRoot, { recursive: true, force: true });
  }
}

/** A one-file function app under the git-ignored `bench-results/`: the project's host.json and `<name>.js`. */
async function writeFunctionApp(name: string, source: string): Promise<string> {
  const root = join(projectRoot, 'bench-results', `.${name}-${process.pid}`);
  await mkdir(root, { recursive: true });
  await copyFile(join(projectRoot, 'host.json'), join(root, 'host.json'));
  await writeFile(
    join(root, 'package.json'),
    `${JSON.stringify({ name: `bench-${name}`, type: 'module', main: `${name}.js` })}\n`,
  );
  await writeFile(join(root, `${name}.js`), source);
  return root;
}

/** The stub host seen as a benchmark server: its URL, and the worker process's CPU as its usage. */
function asBenchChild(host: StubHost): BenchChild<ServerAnnouncement> {
  return {
    pid: host.workerPid,
    ready: { url: host.url },
    request: async <T>(type: string): Promise<T> => {
      if (type !== 'usage') throw new Error(`the real worker answers no "${type}" request`);
      const cpuMicros = await processCpuMicros(host.workerPid);
      if (cpuMicros === undefined) throw new Error('cannot read the worker process CPU time (/proc)');
      const usage: ProcessUsage = { cpuMicros, rssBytes: Number.NaN, heapUsedBytes: Number.NaN };
      return usage as T;
    },
    stop: () => host.stop(),
  };
}

/** Starts `run.sh APP 0` in the foreground (it installs the stub's own dependencies once) and waits for its ready line. */
async function startStubHost(harness: string, appRoot: string, env: NodeJS.ProcessEnv): Promise<StubHost> {
  const child = spawn('bash', [join(harness, 'run.sh'), appRoot, '0'], {
    cwd: harness,
    env: { ...env, RW_FOREGROUND: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-2_000);
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const ready = await new Promise<RegExpExecArray>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`the stub host was not ready within 120 s: ${tail}`)), 120_000);
    lines.on('line', (line) => {
      const match = /^REAL-WORKER READY (\S+) .*worker=(\S+) workerPid=(\d+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolveReady(match);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the stub host exited (${code}) before it was ready: ${tail}`));
    });
  });
  return {
    url: String(ready[1]),
    workerVersion: String(ready[2]),
    workerPid: Number(ready[3]),
    stubPid: child.pid ?? 0,
    stop: () => stopChild(child),
  };
}

/** SIGTERM (the stub host terminates the worker with a grace period), SIGKILL after 10 s. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveStop();
    });
    child.kill('SIGTERM');
  });
}
