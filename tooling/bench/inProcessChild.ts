import { createHash, createHmac, randomUUID, sign } from 'node:crypto';
import { Session } from 'node:inspector/promises';
import { promisify } from 'node:util';
import azureFunctions, { type HttpHandler, type HttpResponseInit } from '@azure/functions';
import { importJWK, SignJWT } from 'jose';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { encodeJwtSegmentJson } from '../../shared/tokens/jwtSegment.js';
import { parseSigningJwk } from '../../shared/tokens/signingKeyMaterial.js';
import { importCompiledDefinitions } from '../../tools/localHost/compiledFunctions.js';
import { benchAppRoot } from './appSnapshot.js';
import type { BenchRequest, FlowId } from './benchFixtures.js';
import { answerParent, failStart, type ParentRequest } from './parentChannel.js';
import { tokenStageShares, type CpuProfileData, type TokenStage } from './tokenStages.js';

/**
 * The in-process figure (docs/performance.md#what-it-measures): CPU per token of each flow's handler called directly, with no HTTP
 * (prepared `HttpRequest`s, `process.cpuUsage` around the calls, which counts every thread, the libuv pool
 * that signs included), next to the raw cost of the primitives: one ES256 signature (`node:crypto`, sync and
 * async), one `jose` SignJWT, one HMAC-SHA256, one SHA-256 digest.
 *
 * Each is measured one call at a time and with {@link CONCURRENT} calls in flight: work handed to the libuv
 * pool (an async signature) costs a thread hand-off per call when calls come one by one, and much less when
 * many are queued, as they are under load. Every flow and primitive is measured once per round, {@link ROUNDS}
 * rounds one after the other, and each figure is its median round.
 */

/** Calls in flight in the concurrent variant. */
const CONCURRENT = 32;

const { HttpRequest, InvocationContext } = azureFunctions;

/** CPU and wall time per operation, µs. */
export interface PerOperation {
  readonly cpuMicros: number;
  readonly wallMicros: number;
  /** Share of CPU time spent on the main thread (the rest: the libuv pool, GC helpers), 0..1. */
  readonly mainThreadShare: number;
}

export interface InProcessResults {
  readonly iterations: number;
  readonly concurrency: number;
  /** Rounds of every measurement; each figure is its median round. */
  readonly rounds: number;
  /** By flow: one call at a time, and `concurrency` in flight. */
  readonly flows: Record<
    string,
    { readonly sequential: PerOperation; readonly concurrent: PerOperation; readonly non200: number }
  >;
  readonly primitives: Record<string, { readonly sequential: PerOperation; readonly concurrent: PerOperation }>;
  /**
   * With `--profile`: each flow's token CPU by stage (tooling/bench/tokenStages.ts): each stage's share of a CPU
   * profile of the handler ({@link CONCURRENT} in flight) times the unprofiled main-thread CPU per token, and the
   * CPU of other threads (the profile cannot see them) as a stage of its own.
   */
  readonly stagesByFlow?: Readonly<Partial<Record<FlowId, readonly StageCost[]>>>;
}

/** One stage's part of a token's CPU (see {@link InProcessResults.stagesByFlow}). */
export interface StageCost {
  readonly stage: TokenStage;
  readonly share: number;
  readonly micros: number;
}

async function measure(request: ParentRequest): Promise<InProcessResults> {
  const iterations = Number(request.iterations);
  const requests = request.requests as Record<FlowId, Omit<BenchRequest, 'looksIssued'>>;
  const definitions = new Map((await importCompiledDefinitions(benchAppRoot())).map((d) => [d.name, d]));

  const flowRuns = (Object.entries(requests) as [FlowId, Omit<BenchRequest, 'looksIssued'>][]).map(([flow, spec]) => {
    // A flow's id is its function's name (the catalogue's key).
    const definition = definitions.get(flow);
    if (!definition) throw new Error(`no compiled function ${flow}`);
    return {
      flow,
      run: flowRun(definition.name, definition.handler, spec),
      sequential: [] as PerOperation[],
      concurrent: [] as PerOperation[],
    };
  });
  const primitiveRuns = Object.entries(await primitiveWork()).map(([name, work]) => ({
    name,
    work,
    sequential: [] as PerOperation[],
    concurrent: [] as PerOperation[],
  }));
  for (const { run } of flowRuns) await run.warmUp(Math.max(200, iterations / 5)); // JIT, services, caches
  for (const { work } of primitiveRuns) await repeat(work, iterations, CONCURRENT);
  // Every flow and primitive once per round, the rounds one after the other, and each figure the median of its
  // rounds: a busy moment of a shared machine then spoils one round of everything, not every round of one thing.
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const entry of flowRuns) {
      entry.sequential.push(await entry.run.timedCalls(iterations, 1));
      entry.concurrent.push(await entry.run.timedCalls(iterations, CONCURRENT));
    }
    for (const entry of primitiveRuns) {
      entry.sequential.push(await timed(iterations, () => repeat(entry.work, iterations, 1)));
      entry.concurrent.push(await timed(iterations, () => repeat(entry.work, iterations, CONCURRENT)));
    }
  }

  const flows: InProcessResults['flows'] = {};
  const stagesByFlow: Partial<Record<FlowId, readonly StageCost[]>> = {};
  for (const { flow, run, sequential, concurrent } of flowRuns) {
    const concurrentMedian = medianRun(concurrent);
    flows[flow] = { sequential: medianRun(sequential), concurrent: concurrentMedian, non200: run.non200() };
    if (request.profile === true) {
      const shares = tokenStageShares(await run.profiles(iterations), /\/tooling\/bench\/inProcessChild\.ts$/);
      // The profile sees the main thread only: its shares split the main thread's CPU; the rest is other threads'.
      const mainMicros = concurrentMedian.cpuMicros * concurrentMedian.mainThreadShare;
      stagesByFlow[flow] = [...shares].map(([stage, share]) =>
        stage === 'other threads (parallel GC, compiler)'
          ? { stage, share: 1 - concurrentMedian.mainThreadShare, micros: concurrentMedian.cpuMicros - mainMicros }
          : { stage, share: share * concurrentMedian.mainThreadShare, micros: share * mainMicros },
      );
    }
  }
  const primitives: InProcessResults['primitives'] = {};
  for (const { name, sequential, concurrent } of primitiveRuns) {
    primitives[name] = { sequential: medianRun(sequential), concurrent: medianRun(concurrent) };
  }
  return {
    iterations,
    concurrency: CONCURRENT,
    rounds: ROUNDS,
    flows,
    primitives,
    ...(request.profile === true ? { stagesByFlow } : {}),
  };
}

/** One flow's handler with its prepared requests: warm-up, timed calls in batches, CPU profiles. */
function flowRun(functionName: string, handler: HttpHandler, spec: Omit<BenchRequest, 'looksIssued'>) {
  const prepare = (count: number) =>
    Array.from({ length: count }, () => ({
      request: new HttpRequest({
        method: spec.method,
        url: `http://127.0.0.1:7071${spec.path}`,
        headers: { ...spec.headers, 'x-forwarded-for': '127.0.0.1' },
        params: spec.params,
        ...(spec.body === undefined ? {} : { body: { string: spec.body } }),
      }),
      context: new InvocationContext({ invocationId: randomUUID(), functionName, logHandler: () => {} }),
    }));
  let non200 = 0;
  const call = async (prepared: ReturnType<typeof prepare>, inFlight: number) => {
    let next = 0;
    const lane = async () => {
      while (next < prepared.length) {
        const { request: httpRequest, context } = prepared[next++] as (typeof prepared)[number];
        const response = (await handler(httpRequest, context)) as HttpResponseInit;
        if ((response.status ?? 200) !== 200) non200 += 1;
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
  };
  const batchSizes = (total: number) =>
    Array.from({ length: Math.ceil(total / BATCH) }, (_, index) => Math.min(BATCH, total - index * BATCH));
  return {
    warmUp: async (count: number) => {
      await call(prepare(count), CONCURRENT);
      non200 = 0;
    },
    // Requests are prepared a batch at a time, outside the timed calls: thousands of them held alive at once
    // would be promoted to the old generation and charge their garbage collection to the handler. Each batch is
    // then settled (see settlePrepared) before its calls are timed.
    timedCalls: async (total: number, inFlight: number): Promise<PerOperation> => {
      const parts: PerOperation[] = [];
      for (const size of batchSizes(total)) {
        const batch = prepare(size);
        settlePrepared();
        parts.push(await timed(size, () => call(batch, inFlight)));
      }
      return combine(parts, BATCH, total);
    },
    // One profile per batch, started once the batch is prepared and settled, as the timed calls are.
    profiles: async (total: number): Promise<CpuProfileData[]> => {
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 50 });
      const profiles: CpuProfileData[] = [];
      for (const size of batchSizes(total)) {
        const batch = prepare(size);
        settlePrepared();
        await session.post('Profiler.start');
        await call(batch, CONCURRENT);
        profiles.push((await session.post('Profiler.stop')).profile as unknown as CpuProfileData);
      }
      session.disconnect();
      return profiles;
    },
    non200: () => non200,
  };
}

/** The raw cost of the primitives a token is made of, by name (as the report prints them). */
async function primitiveWork(): Promise<Record<string, () => unknown>> {
  const store = new FileSecretStore(String(process.env.STS_LOCAL_STORE_PATH));
  const stored = await store.getSecret(vaultLayout.signingKey);
  if (!stored) throw new Error('no signing key in the store');
  const key = await parseSigningJwk(stored.value);
  const joseKey = await importJWK(key.privateKey.export({ format: 'jwk' }), 'ES256');
  const claims = {
    jti: randomUUID(),
    aid: randomUUID(),
    cai: randomUUID(),
    tid: '00000000-0000-0000-0000-000000000000',
    apr: 'eastus2',
    nbf: 1_770_000_000,
    exp: 1_770_086_400,
    iat: 1_770_000_000,
    iss: 'https://sts.bench.example/',
    aud: 'https://sts.bench.example/mixedreality',
  };
  const signingInput = Buffer.from(
    `${encodeJwtSegmentJson({ alg: 'ES256', kid: key.kid, typ: 'JWT' }).toString('base64url')}.${encodeJwtSegmentJson(claims).toString('base64url')}`,
    'ascii',
  );
  const signAsync = promisify(sign);
  const hmacKey = Buffer.alloc(32, 7);
  const swtInput = Buffer.from('a'.repeat(400), 'ascii');
  return {
    'ES256 sign, node:crypto sync': () =>
      sign('sha256', signingInput, { key: key.privateKey, dsaEncoding: 'ieee-p1363' }),
    'ES256 sign, node:crypto async (pool)': () =>
      signAsync('sha256', signingInput, { key: key.privateKey, dsaEncoding: 'ieee-p1363' }),
    'ES256 JWT, jose SignJWT': () =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' }).sign(joseKey),
    'HMAC-SHA256 (400 bytes)': () => createHmac('sha256', hmacKey).update(swtInput).digest(),
    'SHA-256 of a key': () => createHash('sha256').update('0123456789abcdef0123456789abcdef', 'utf8').digest(),
  };
}

/** `work` called `total` times, `inFlight` at a time. */
async function repeat(work: () => unknown, total: number, inFlight: number): Promise<void> {
  let done = 0;
  const lane = async () => {
    while (done < total) {
      done += 1;
      await work();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
}

/** Rounds of the in-process figures; each figure is the median of its rounds. */
const ROUNDS = 5;

/** The round with the median CPU per operation (its wall time and main-thread share with it). */
function medianRun(runs: readonly PerOperation[]): PerOperation {
  const sorted = [...runs].sort((a, b) => a.cpuMicros - b.cpuMicros);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  if (!median) throw new Error('no rounds measured');
  return median;
}

/** Requests prepared at a time for the timed handler calls. */
const BATCH = 500;

/** `gc` of `--expose-gc` (the section's child runs with it), with V8's options. */
type ExposedGc = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

/**
 * Moves a freshly prepared batch of requests to where it will stay while its calls run, before they are timed.
 * Each prepared `HttpRequest` holds an undici `Request`, and those survive young-generation collections however
 * short-lived (they are registered for finalization), so the batch is copied and promoted by the first
 * collections after it is made: without this, that copying lands inside the timed calls and is charged to the
 * handler, although in a host the request is the runtime's (the no-op function pays for it too). Two young
 * collections promote it; nothing the handler allocates exists yet.
 */
function settlePrepared(): void {
  const gc = (globalThis as { gc?: ExposedGc }).gc;
  if (!gc) throw new Error('the in-process section runs with --expose-gc');
  gc({ type: 'minor', execution: 'sync' });
  gc({ type: 'minor', execution: 'sync' });
}

/** Per-operation figures of consecutive parts of `total` operations, each `size` long but the last. */
function combine(parts: readonly PerOperation[], size: number, total: number): PerOperation {
  let cpu = 0;
  let wall = 0;
  let main = 0;
  parts.forEach((part, index) => {
    const count = Math.min(size, total - index * size);
    cpu += part.cpuMicros * count;
    wall += part.wallMicros * count;
    main += part.cpuMicros * part.mainThreadShare * count;
  });
  return { cpuMicros: cpu / total, wallMicros: wall / total, mainThreadShare: cpu > 0 ? main / cpu : 0 };
}

async function timed(operations: number, work: () => Promise<void>): Promise<PerOperation> {
  const cpuBefore = process.cpuUsage();
  const threadBefore = process.threadCpuUsage();
  const wallBefore = performance.now();
  await work();
  const wall = performance.now() - wallBefore;
  const cpu = process.cpuUsage(cpuBefore);
  const thread = process.threadCpuUsage();
  const mainThread = thread.user - threadBefore.user + (thread.system - threadBefore.system);
  const total = cpu.user + cpu.system;
  return {
    cpuMicros: total / operations,
    wallMicros: (wall * 1000) / operations,
    mainThreadShare: total > 0 ? Math.min(1, mainThread / total) : 0,
  };
}

try {
  answerParent({ pid: process.pid }, { measure });
} catch (error) {
  failStart(error);
}
