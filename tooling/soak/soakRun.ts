import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import type { DemoCredentials } from '../../tools/demoCredentials.js';
import { startHostChild, type HostChild } from '../load/localHostChild.js';
import { startLocalAzurite, type LocalAzurite } from '../../tools/localAzurite.js';
import { flowNames, type FlowName, tokenFlowNames } from '../../shared/flowCatalogue.js';
import { demoRequests } from '../flows/demoRequests.js';

/**
 * One soak run: the local host in a child process, driven from this process with valid requests across all
 * flows at a fixed rate (about 70 % of the capacity measured first, or a given rate), its RSS sampled from
 * outside every few seconds. Bounded in time; loopback only.
 */

export interface SoakOptions {
  readonly durationMs: number;
  /** Requests per second to drive; undefined = measure capacity first and drive `fraction` of it. */
  readonly rate: number | undefined;
  readonly fraction: number;
  readonly capacitySeconds: number;
  readonly sampleEveryMs: number;
  /** Share of the run counted as warm-up (RSS drift is measured after it). */
  readonly warmupFraction: number;
  readonly ledger: 'off' | 'best-effort' | 'required';
  readonly progress: (line: string) => void;
}

export interface RssSample {
  readonly atMs: number;
  readonly rssBytes: number;
}

export interface SoakReport {
  readonly capacity: number | undefined;
  readonly targetRate: number;
  readonly achievedRate: number;
  readonly durationMs: number;
  readonly requests: number;
  readonly byFlow: Readonly<Record<string, number>>;
  /** Host-side failures: a status other than 200, a network error, a timeout, an error in the host's log. */
  readonly errors: Readonly<Record<string, number>>;
  /** Requests the generator did not send because MAX_IN_FLIGHT were unanswered: the rate was not sustained. */
  readonly notSent: number;
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number };
  readonly samples: readonly RssSample[];
  readonly warmupMs: number;
  /** Mean RSS of the first samples after warm-up, of the last samples, and the relative growth between them. */
  readonly rssBaselineBytes: number;
  readonly rssEndBytes: number;
  readonly rssMaxBytes: number;
  readonly rssDrift: number;
  readonly hostExit: string;
}

type Flow = FlowName;
interface SoakRequest {
  readonly flow: Flow;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

/** The mix, from the catalogue: each token flow twice, each other function (the documents) once. */
const MIX: readonly Flow[] = [
  ...tokenFlowNames,
  ...tokenFlowNames,
  ...flowNames.filter((flow) => !(tokenFlowNames as FlowName[]).includes(flow)),
];
const REQUEST_TIMEOUT_MS = 10_000;
const MAX_IN_FLIGHT = 512;
/** Samples averaged at each end for the drift figure. */
const EDGE_SAMPLES = 6;

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  let azurite: LocalAzurite | undefined;
  let azuriteDir: string | undefined;
  const env: Record<string, string> = {};
  if (options.ledger !== 'off') {
    azuriteDir = await mkdtemp(join(tmpdir(), 'sts-soak-azurite-'));
    azurite = await startLocalAzurite({ dataDir: azuriteDir, startTimeoutMs: 60_000 });
    env.STS_LEDGER_MODE = options.ledger;
    env.STS_LEDGER_CONNECTION_STRING = azurite.connectionString;
  }
  const hostErrors: string[] = [];
  let host: HostChild | undefined;
  try {
    host = await startHostChild({
      env,
      onLine: (stream, line) => {
        if (stream === 'stderr' || /^\[error\]|failed/.test(line)) hostErrors.push(line);
      },
    });
    const running = host;
    options.progress(`local host child pid ${running.pid} on ${running.url}`);
    const requests = MIX.map((flow) => requestFor(flow, running.credentials));
    const pool = new Pool(running.url, {
      connections: 64,
      pipelining: 1,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    });

    let counter = 0;
    const send = async (): Promise<{ flow: Flow; ok: boolean; error?: string; ms: number }> => {
      const request = requests[counter++ % requests.length] as SoakRequest;
      const started = performance.now();
      try {
        const response = await pool.request({
          path: request.path,
          method: request.method,
          headers: request.headers,
          body: request.body ?? null,
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        await response.body.arrayBuffer();
        const ok = response.statusCode === 200;
        return {
          flow: request.flow,
          ok,
          ...(ok ? {} : { error: `status ${response.statusCode}` }),
          ms: performance.now() - started,
        };
      } catch (error) {
        return {
          flow: request.flow,
          ok: false,
          error: (error as { code?: string }).code ?? (error as Error).name,
          ms: performance.now() - started,
        };
      }
    };

    let capacity: number | undefined;
    let targetRate = options.rate ?? 0;
    if (options.rate === undefined) {
      capacity = await measureCapacity(send, options.capacitySeconds * 1000);
      targetRate = Math.max(1, Math.round(capacity * options.fraction));
      options.progress(
        `capacity ${capacity.toFixed(0)} req/s (closed loop, 16 in flight); driving ${targetRate} req/s (${Math.round(options.fraction * 100)} %)`,
      );
    } else {
      options.progress(`driving ${targetRate} req/s`);
    }

    const byFlow: Record<string, number> = {};
    const errors: Record<string, number> = {};
    const latencies: number[] = [];
    const samples: RssSample[] = [];
    const started = Date.now();
    let sent = 0;
    let done = 0;
    let inFlight = 0;
    let notSent = 0;
    const pending = new Set<Promise<void>>();

    const sampler = setInterval(() => {
      void running.rssBytes().then((rss) => {
        if (rss !== undefined) samples.push({ atMs: Date.now() - started, rssBytes: rss });
      });
    }, options.sampleEveryMs);
    let lastProgress = started;

    while (Date.now() - started < options.durationMs && running.exitStatus() === undefined) {
      const due = Math.floor(((Date.now() - started) / 1000) * targetRate);
      while (sent < due) {
        sent += 1;
        if (inFlight >= MAX_IN_FLIGHT) {
          notSent += 1;
          continue;
        }
        inFlight += 1;
        const work = send().then((result) => {
          inFlight -= 1;
          done += 1;
          byFlow[result.flow] = (byFlow[result.flow] ?? 0) + 1;
          latencies.push(result.ms);
          if (!result.ok)
            errors[`${result.flow}: ${result.error ?? 'error'}`] =
              (errors[`${result.flow}: ${result.error ?? 'error'}`] ?? 0) + 1;
        });
        pending.add(work);
        void work.finally(() => pending.delete(work));
      }
      if (Date.now() - lastProgress >= 30_000) {
        lastProgress = Date.now();
        const last = samples.at(-1);
        const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
        options.progress(
          `  ${Math.round((lastProgress - started) / 1000)} s: ${done} answered, ${errorCount} errors, ${notSent} not sent, RSS ${last ? mb(last.rssBytes) : '?'}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const durationMs = Date.now() - started;
    await Promise.all(pending);
    clearInterval(sampler);
    await pool.close();
    if (running.exitStatus() !== undefined) errors[`host exited (${running.exitStatus()})`] = 1;
    for (const line of hostErrors)
      errors[`host log: ${line.slice(0, 80)}`] = (errors[`host log: ${line.slice(0, 80)}`] ?? 0) + 1;
    await running.stop();

    const warmupMs = durationMs * options.warmupFraction;
    const measured = samples.filter((s) => s.atMs >= warmupMs);
    const head = measured.slice(0, EDGE_SAMPLES);
    const tail = measured.slice(-EDGE_SAMPLES);
    const rssBaselineBytes = mean(head.map((s) => s.rssBytes));
    const rssEndBytes = mean(tail.map((s) => s.rssBytes));
    latencies.sort((a, b) => a - b);
    return {
      capacity,
      targetRate,
      achievedRate: done / (durationMs / 1000),
      durationMs,
      requests: done,
      byFlow,
      errors,
      notSent,
      latencyMs: {
        p50: percentile(latencies, 0.5),
        p95: percentile(latencies, 0.95),
        p99: percentile(latencies, 0.99),
        max: latencies.at(-1) ?? 0,
      },
      samples,
      warmupMs,
      rssBaselineBytes,
      rssEndBytes,
      rssMaxBytes: Math.max(0, ...samples.map((s) => s.rssBytes)),
      rssDrift: rssBaselineBytes > 0 ? (rssEndBytes - rssBaselineBytes) / rssBaselineBytes : Number.NaN,
      hostExit: running.exitStatus() ?? 'unknown',
    };
  } finally {
    if (host && host.exitStatus() === undefined) await host.stop();
    await azurite?.stop();
    if (azuriteDir) await rm(azuriteDir, { recursive: true, force: true });
  }
}

/** Completed requests per second with 16 in flight, the first fifth of the window discarded as warm-up. */
async function measureCapacity(send: () => Promise<unknown>, windowMs: number): Promise<number> {
  const started = Date.now();
  const warmEnd = started + windowMs / 5;
  let counted = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() - started < windowMs) {
      await send();
      if (Date.now() >= warmEnd) counted += 1;
    }
  };
  await Promise.all(Array.from({ length: 16 }, () => worker()));
  return counted / ((Date.now() - warmEnd) / 1000);
}

function requestFor(flow: Flow, credentials: DemoCredentials): SoakRequest {
  const { method, path, headers, body } = demoRequests[flow](credentials);
  return { flow, method, path, headers: { ...headers }, ...(body === undefined ? {} : { body }) };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

export function mb(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MB`;
}
