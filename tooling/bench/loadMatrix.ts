import type { BenchChild } from './benchChild.js';
import type { BenchRequest } from './benchFixtures.js';
import type { LoadRunRequest, LoadRunResult } from './loadWorker.js';
import type { ProcessUsage } from './parentChannel.js';
import { median } from './statistics.js';

/**
 * Load runs: every target (a server process and the request it is loaded with) at every connection count,
 * repeated, interleaved so that a noisy moment on the shared machine hits app and baselines alike. The
 * server's CPU time is read over IPC before and after each run; CPU per request = the difference divided by
 * the responses received.
 */

export interface ServerAnnouncement {
  readonly url: string;
}

export interface LoadTarget {
  readonly id: string;
  readonly label: string;
  readonly server: BenchChild<ServerAnnouncement>;
  readonly request: BenchRequest;
  /** CPU µs so far of a helper process serving this target (Azurite for the ledger), if it is to be counted. */
  readonly auxiliaryCpuMicros?: () => Promise<number | undefined>;
}

export interface LoadSettings {
  readonly connections: readonly number[];
  readonly durationSeconds: number;
  readonly repetitions: number;
  readonly warmupSeconds: number;
  /** A fixed request rate (req/s over all connections) instead of as fast as answered. */
  readonly overallRate?: number;
}

/** The medians of one target at one connection count, over the repetitions. */
export interface LoadSummary {
  readonly targetId: string;
  readonly label: string;
  readonly connections: number;
  readonly repetitions: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuMicrosPerRequest: number;
  /** Median CPU µs per request of the target's helper process (NaN when it has none). */
  readonly auxiliaryCpuMicrosPerRequest: number;
  /** Summed over the repetitions. */
  readonly responses: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  /** Responses by status code, summed over the repetitions. */
  readonly statusCodes: Record<string, number>;
  /** Each repetition's req/s, to show the spread. */
  readonly requestsPerSecondByRep: readonly number[];
}

/** Sends each target's request once and checks it is answered 200 with a token (else the bench stops). */
export async function verifyTargets(targets: readonly LoadTarget[]): Promise<void> {
  for (const target of targets) {
    const { request } = target;
    const response = await fetch(`${target.server.ready.url}${request.path}`, {
      method: request.method,
      headers: Object.fromEntries(Object.entries(request.headers).filter(([name]) => name !== 'content-length')),
      ...(request.body === undefined ? {} : { body: request.body }),
    });
    const body = await response.text();
    if (response.status !== 200 || !request.looksIssued(body)) {
      throw new Error(
        `${target.label}: the benchmark request is not answered with a token (status ${response.status})`,
      );
    }
  }
}

/**
 * Warms every target up, then runs the matrix and summarises it. `log` gets one line per run.
 *
 * @example
 * const summaries = await runLoadMatrix(worker, targets, plan, console.log);
 */
export async function runLoadMatrix(
  worker: BenchChild<unknown>,
  targets: readonly LoadTarget[],
  settings: LoadSettings,
  log: (line: string) => void,
): Promise<LoadSummary[]> {
  const heaviest = Math.max(...settings.connections);
  if (settings.warmupSeconds > 0) {
    for (const target of targets) {
      await worker.request<LoadRunResult>('run', runRequest(target, heaviest, settings.warmupSeconds));
    }
  }

  const samples = new Map<
    string,
    { result: LoadRunResult; cpuMicrosPerRequest: number; auxiliaryCpuMicrosPerRequest: number }[]
  >();
  for (let rep = 1; rep <= settings.repetitions; rep += 1) {
    // Alternate the order, so no target always runs right after the same neighbour.
    const ordered = rep % 2 === 1 ? targets : [...targets].reverse();
    for (const connections of settings.connections) {
      for (const target of ordered) {
        const before = await target.server.request<ProcessUsage>('usage');
        const auxiliaryBefore = await target.auxiliaryCpuMicros?.();
        const result = await worker.request<LoadRunResult>(
          'run',
          runRequest(target, connections, settings.durationSeconds, settings.overallRate),
        );
        const after = await target.server.request<ProcessUsage>('usage');
        const auxiliaryAfter = await target.auxiliaryCpuMicros?.();
        const perResponse = (micros: number | undefined) =>
          micros !== undefined && result.responses > 0 ? micros / result.responses : Number.NaN;
        const cpuMicrosPerRequest = perResponse(after.cpuMicros - before.cpuMicros);
        const auxiliaryCpuMicrosPerRequest =
          auxiliaryBefore === undefined || auxiliaryAfter === undefined
            ? Number.NaN
            : perResponse(auxiliaryAfter - auxiliaryBefore);
        const key = `${target.id}@${connections}`;
        samples.set(key, [...(samples.get(key) ?? []), { result, cpuMicrosPerRequest, auxiliaryCpuMicrosPerRequest }]);
        log(
          `  rep ${rep}/${settings.repetitions} ${target.label.padEnd(34)} c=${String(connections).padStart(3)} ` +
            `${result.requestsPerSecond.toFixed(0).padStart(6)} req/s  p99 ${result.p99Ms.toFixed(2)} ms  ` +
            `${cpuMicrosPerRequest.toFixed(0)} µs CPU/req${result.non2xx + result.errors > 0 ? `  non-2xx ${result.non2xx} errors ${result.errors}` : ''}`,
        );
      }
    }
  }

  const summaries: LoadSummary[] = [];
  for (const target of targets) {
    for (const connections of settings.connections) {
      const runs = samples.get(`${target.id}@${connections}`) ?? [];
      summaries.push({
        targetId: target.id,
        label: target.label,
        connections,
        repetitions: runs.length,
        requestsPerSecond: median(runs.map((r) => r.result.requestsPerSecond)),
        p50Ms: median(runs.map((r) => r.result.p50Ms)),
        p99Ms: median(runs.map((r) => r.result.p99Ms)),
        cpuMicrosPerRequest: median(runs.map((r) => r.cpuMicrosPerRequest)),
        auxiliaryCpuMicrosPerRequest: median(runs.map((r) => r.auxiliaryCpuMicrosPerRequest)),
        responses: runs.reduce((sum, r) => sum + r.result.responses, 0),
        non2xx: runs.reduce((sum, r) => sum + r.result.non2xx, 0),
        errors: runs.reduce((sum, r) => sum + r.result.errors, 0),
        timeouts: runs.reduce((sum, r) => sum + r.result.timeouts, 0),
        statusCodes: sumCounts(runs.map((r) => r.result.statusCodes)),
        requestsPerSecondByRep: runs.map((r) => Math.round(r.result.requestsPerSecond)),
      });
    }
  }
  return summaries;
}

function sumCounts(counts: readonly Record<string, number>[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const count of counts) for (const [code, n] of Object.entries(count)) total[code] = (total[code] ?? 0) + n;
  return total;
}

function runRequest(
  target: LoadTarget,
  connections: number,
  durationSeconds: number,
  overallRate?: number,
): Record<string, unknown> {
  const { request } = target;
  const spec: LoadRunRequest = {
    url: `${target.server.ready.url}${request.path}`,
    method: request.method,
    headers: request.headers,
    ...(request.body === undefined ? {} : { body: request.body }),
    connections,
    durationSeconds,
    ...(overallRate === undefined ? {} : { overallRate }),
  };
  return { ...spec };
}
