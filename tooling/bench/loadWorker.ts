import autocannon from 'autocannon';
import { answerParent, type ParentRequest } from './parentChannel.js';
import { percentileOfSorted } from './statistics.js';

/**
 * The load generator: a separate process (so its CPU never counts as the server's) running `autocannon` on
 * request. Latencies are kept exactly (every response's time in ms, from autocannon's `response` event)
 * rather than from autocannon's whole-millisecond histogram, which is too coarse for sub-ms loopback answers.
 */

/** One load run, as the orchestrator asks for it. */
export interface LoadRunRequest {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly connections: number;
  readonly durationSeconds: number;
  /** Requests per second over all connections (autocannon `overallRate`); unset: as fast as answered. */
  readonly overallRate?: number;
}

export interface LoadRunResult {
  /** Responses received (any status). */
  readonly responses: number;
  readonly ok2xx: number;
  readonly non2xx: number;
  /** Connection errors and timeouts. */
  readonly errors: number;
  readonly timeouts: number;
  readonly elapsedSeconds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly statusCodes: Record<string, number>;
}

async function run(request: ParentRequest): Promise<LoadRunResult> {
  const spec = request as unknown as ParentRequest & LoadRunRequest;
  let latencies = new Float64Array(65_536);
  let count = 0;
  let finish: (value: autocannon.Result) => void = () => {};
  let fail: (error: Error) => void = () => {};
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const options: autocannon.Options = {
    url: spec.url,
    method: spec.method,
    headers: spec.headers,
    ...(spec.body === undefined ? {} : { body: spec.body }),
    connections: spec.connections,
    duration: spec.durationSeconds,
    pipelining: 1,
    timeout: 10,
    ...(spec.overallRate === undefined ? {} : { overallRate: spec.overallRate }),
  };
  const instance = autocannon(options, (error: Error | null, result: autocannon.Result) =>
    error ? fail(error) : finish(result),
  );
  instance.on('response', (_client, _status, _bytes, responseTime) => {
    if (count === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[count++] = responseTime;
  });
  const result = await done;
  const sorted = latencies.subarray(0, count).sort();
  const statusCodes: Record<string, number> = {};
  for (const [code, stats] of Object.entries(result.statusCodeStats ?? {}))
    statusCodes[code] = (stats as { count: number }).count;
  const elapsedSeconds = result.duration > 0 ? result.duration : spec.durationSeconds;
  return {
    responses: count,
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    elapsedSeconds,
    requestsPerSecond: count / elapsedSeconds,
    p50Ms: percentileOfSorted(sorted, 50),
    p99Ms: percentileOfSorted(sorted, 99),
    statusCodes,
  };
}

answerParent({ pid: process.pid }, { run });
