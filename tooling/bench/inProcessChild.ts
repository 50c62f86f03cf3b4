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
 * many are queued, as they are under load.
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

  const flows: InProcessResults['flows'] = {};
  const stagesByFlow: Partial<Record<FlowId, readonly StageCost[]>> = {};
  for (const [flow, spec] of Object.entries(requests) as [FlowId, Omit<BenchRequest, 'looksIssued'>][]) {
    // A flow's id is its function's name (the catalogue's key).
    const definition = definitions.get(flow);
    if (!definition) throw new Error(`no compiled function ${flow}`);
    const prepare = (count: number) =>
      Array.from({ length: count }, () => ({
        request: new HttpRequest({
          method: spec.method,
          url: `http://127.0.0.1:7071${spec.path}`,
          headers: { ...spec.headers, 'x-forwarded-for': '127.0.0.1' },
          params: spec.params,
          ...(spec.body === undefined ? {} : { body: { string: spec.body } }),
        }),
        context: new InvocationContext({
          invocationId: randomUUID(),
          functionName: definition.name,
          logHandler: () => {},
        }),
      }));
    let non200 = 0;
    const call = async (handler: HttpHandler, prepared: ReturnType<typeof prepare>, inFlight: number) => {
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
    await call(definition.handler, prepare(Math.max(200, iterations / 5)), CONCURRENT); // warm-up: JIT, services, caches
    non200 = 0;
    // Requests are prepared a batch at a time, outside the timed calls: thousands of them held alive at once
    // would be promoted to the old generation and charge their garbage collection to the handler. Each batch is
    // then settled (see settlePrepared) before its calls are timed.
    const inBatches = async (inFlight: number): Promise<PerOperation> => {
      const parts: PerOperation[] = [];
      for (let done = 0; done < iterations; done += BATCH) {
        const batch = prepare(Math.min(BATCH, iterations - done));
        settlePrepared();
        parts.push(await timed(batch.length, () => call(definition.handler, batch, inFlight)));
      }
      return combine(parts, BATCH, iterations);
    };
    const sequential = await inBatches(1);
    const concurrent = await inBatches(CONCURRENT);
    flows[flow] = { sequential, concurrent, non200 };
    if (request.profile === true) {
      // Prepared a batch at a time as in the timed calls, so the profile sees the same heap.
      const batches = Array.from({ length: Math.ceil(iterations / BATCH) }, (_, index) =>
        Math.min(BATCH, iterations - index * BATCH),
      );
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 50 });
      // One profile per batch, started once the batch is prepared and settled, as the timed calls are.
      const profiles: CpuProfileData[] = [];
      for (const size of batches) {
        const batch = prepare(size);
        settlePrepared();
        await session.post('Profiler.start');
        await call(definition.handler, batch, CONCURRENT);
        profiles.push((await session.post('Profiler.stop')).profile as unknown as CpuProfileData);
      }
      session.disconnect();
      const shares = tokenStageShares(profiles, /\/tooling\/bench\/inProcessChild\.ts$/);
      // The profile sees the main thread only: its shares split the main thread's CPU; the rest is other threads'.
      const mainMicros = concurrent.cpuMicros * concurrent.mainThreadShare;
      stagesByFlow[flow] = [...shares].map(([stage, share]) =>
        stage === 'other threads (parallel GC, compiler)'
          ? { stage, share: 1 - concurrent.mainThreadShare, micros: concurrent.cpuMicros - mainMicros }
          : { stage, share: share * concurrent.mainThreadShare, micros: share * mainMicros },
      );
    }
  }

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
  const repeat = async (work: () => unknown, inFlight: number) => {
    let done = 0;
    const lane = async () => {
      while (done < iterations) {
        done += 1;
        await work();
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
  };
  const primitive = async (work: () => unknown): Promise<InProcessResults['primitives'][string]> => {
    await repeat(work, CONCURRENT); // warm-up
    return {
      sequential: await timed(iterations, () => repeat(work, 1)),
      concurrent: await timed(iterations, () => repeat(work, CONCURRENT)),
    };
  };
  const primitives: InProcessResults['primitives'] = {
    'ES256 sign, node:crypto sync': await primitive(() =>
      sign('sha256', signingInput, { key: key.privateKey, dsaEncoding: 'ieee-p1363' }),
    ),
    'ES256 sign, node:crypto async (pool)': await primitive(() =>
      signAsync('sha256', signingInput, { key: key.privateKey, dsaEncoding: 'ieee-p1363' }),
    ),
    'ES256 JWT, jose SignJWT': await primitive(() =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' }).sign(joseKey),
    ),
    'HMAC-SHA256 (400 bytes)': await primitive(() => createHmac('sha256', hmacKey).update(swtInput).digest()),
    'SHA-256 of a key': await primitive(() =>
      createHash('sha256').update('0123456789abcdef0123456789abcdef', 'utf8').digest(),
    ),
  };
  return {
    iterations,
    concurrency: CONCURRENT,
    flows,
    primitives,
    ...(request.profile === true ? { stagesByFlow } : {}),
  };
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
