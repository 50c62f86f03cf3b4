import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { Pool } from '../outbound/undiciCore.js';
import { redact } from '../logging/redact.js';
import { OutboundRequestError, sendOutbound } from '../outbound/outboundRequest.js';
import { backoffDelayMs, classifyTransportError, isRetryableStatus, parseRetryAfter } from './retryPolicy.js';
import { UpstreamError } from './upstreamErrors.js';
import { assertUpstreamUrl, azureHostPolicy, type UpstreamHostPolicy, type UpstreamService } from './upstreamHosts.js';

/** One request to an upstream STS. Headers and body may carry a key: they are never logged. */
export interface UpstreamRequest {
  /** Absolute `https:` URL. */
  readonly url: URL;
  readonly method: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** A short name for log lines, e.g. `issueToken`. */
  readonly label: string;
  /** The service the URL must belong to: checked against the client's host policy before every attempt. */
  readonly service: UpstreamService;
  /**
   * Asked before every attempt, the first included: false when the real key's call budget is spent, and then
   * nothing more is sent (a `budget` failure before the first attempt, the last failure after a retryable one).
   */
  readonly admit?: () => boolean;
}

/** A successful (2xx) answer. The body is bounded by `maxResponseBytes`. */
export interface UpstreamResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Requests sent, the successful one included. */
  readonly attempts: number;
}

export interface UpstreamClientOptions {
  /** TCP + TLS handshake limit per attempt. Default 3 s. */
  readonly connectTimeoutMs?: number;
  /** Time to the response headers per attempt. Default 5 s. */
  readonly headersTimeoutMs?: number;
  /** Idle time between body chunks per attempt. Default 5 s. */
  readonly bodyTimeoutMs?: number;
  /** Keep-alive connections per upstream origin. Default 8. */
  readonly maxConnectionsPerOrigin?: number;
  /** Idle keep-alive sockets are closed after this long. Default 30 s. */
  readonly keepAliveTimeoutMs?: number;
  /** Requests per call, first one included. Default 3. */
  readonly maxAttempts?: number;
  /** Wall-clock budget for one call, all attempts and waits included. Default 10 s. */
  readonly totalBudgetMs?: number;
  /** First backoff window; doubles per retry up to `backoffMaxMs`. Defaults 200 ms and 2 s. */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** Larger answers are refused as `protocol` failures. Default 64 KiB (tokens are ~1-2 KiB). */
  readonly maxResponseBytes?: number;
  /**
   * Extra trust anchors (PEM) for the upstream's certificate, **for tests only**. Production trusts the
   * system store plus `NODE_EXTRA_CA_CERTS`, the standard way to add a CA; verification is never disabled.
   */
  readonly testTrustedCa?: string | readonly string[];
  /** Receives one redacted line per retry and per final failure. */
  readonly log?: (line: string) => void;
  /**
   * Where a key may go. Default {@link azureHostPolicy}, the documented Azure hosts; tests pass a policy that
   * admits their loopback stand-in. No setting reaches this: it is code, not configuration.
   */
  readonly hostPolicy?: UpstreamHostPolicy;
  /** Injected in tests: jitter source and wait. */
  readonly random?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface UpstreamClient {
  /**
   * Sends `request`, retrying 429, 5xx, connection errors and timeouts with exponential backoff and
   * jitter, honouring `Retry-After`, within the attempt count and the total time budget. Never retries any
   * other 4xx. Resolves with a 2xx answer; otherwise throws {@link UpstreamError}.
   */
  send(request: UpstreamRequest): Promise<UpstreamResponse>;
  /** Closes every pool (graceful shutdown, test teardown). */
  close(): Promise<void>;
}

/**
 * Creates the HTTP client for upstream STSs (docs/upstream.md): one keep-alive `undici` pool per origin, bounded
 * connections, connect/headers/body timeouts, bounded retries. TLS is verified as usual.
 *
 * @example
 * const client = createUpstreamClient({ log: (line) => context.warn(line) });
 * const answer = await client.send({ url: new URL('https://westus.api.cognitive.microsoft.com/sts/v1.0/issueToken'),
 *   method: 'POST', headers: { 'Ocp-Apim-Subscription-Key': key }, body: '', label: 'issueToken' });
 */
export function createUpstreamClient(options: UpstreamClientOptions = {}): UpstreamClient {
  const settings = {
    connectTimeoutMs: options.connectTimeoutMs ?? 3_000,
    headersTimeoutMs: options.headersTimeoutMs ?? 5_000,
    bodyTimeoutMs: options.bodyTimeoutMs ?? 5_000,
    maxConnectionsPerOrigin: options.maxConnectionsPerOrigin ?? 8,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 30_000,
    maxAttempts: Math.max(1, options.maxAttempts ?? 3),
    totalBudgetMs: options.totalBudgetMs ?? 10_000,
    backoffBaseMs: options.backoffBaseMs ?? 200,
    backoffMaxMs: options.backoffMaxMs ?? 2_000,
    maxResponseBytes: options.maxResponseBytes ?? 65_536,
  };
  const log = options.log ?? (() => {});
  const hostPolicy = options.hostPolicy ?? azureHostPolicy;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const extraCa = options.testTrustedCa === undefined ? undefined : ([] as string[]).concat(options.testTrustedCa);
  const pools = new Map<string, Pool>();
  let closed = false;

  const poolFor = (origin: string): Pool => {
    let pool = pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connections: settings.maxConnectionsPerOrigin,
        keepAliveTimeout: settings.keepAliveTimeoutMs,
        headersTimeout: settings.headersTimeoutMs,
        bodyTimeout: settings.bodyTimeoutMs,
        connect: { timeout: settings.connectTimeoutMs, ...(extraCa ? { ca: extraCa } : {}) },
      });
      pools.set(origin, pool);
    }
    return pool;
  };

  const attemptOnce = async (request: UpstreamRequest, pool: Pool, budgetMs: number): Promise<AttemptResult> => {
    try {
      const answer = await sendOutbound({
        url: request.url,
        method: request.method,
        headers: { accept: '*/*', ...request.headers },
        ...(request.body === undefined ? {} : { body: request.body }),
        timeoutMs: budgetMs,
        maxResponseBytes: settings.maxResponseBytes,
        dispatcher: pool,
        // A refusal's body is never read: only its status and Retry-After matter.
        readsBodyOf: isSuccess,
      });
      const status = answer.status;
      if (!isSuccess(status)) {
        return {
          kind: 'status',
          status,
          retryAfterSeconds: parseRetryAfter(answer.headers['retry-after'], Date.now()),
          retryable: isRetryableStatus(status),
        };
      }
      return { kind: 'ok', status, headers: answer.headers, body: answer.body };
    } catch (error) {
      if (!(error instanceof OutboundRequestError)) throw error;
      if (error.failure === 'timeout') return { kind: 'budget', error };
      if (error.failure === 'tooLarge') return { kind: 'tooLarge' };
      // undici's own error (a socket, TLS or headers/body timeout of the pool) is the cause: classify that.
      return { kind: 'transport', error: error.cause, ...classifyTransportError(error.cause) };
    }
  };

  const send = async (request: UpstreamRequest): Promise<UpstreamResponse> => {
    if (closed) throw new UpstreamError('configuration', 'upstream client is closed');
    // The last gate before a key leaves the process: the URL is checked again here, whoever built it.
    assertUpstreamUrl(request.service, request.url, hostPolicy);
    const origin = request.url.origin;
    if (request.admit && !request.admit()) {
      throw new UpstreamError('budget', 'call budget of this real key is spent', { origin, attempts: 0 });
    }
    const pool = poolFor(origin);
    const started = performance.now();
    const where = `upstream ${request.label} ${origin}`;

    for (let attempt = 1; ; attempt++) {
      const remaining = settings.totalBudgetMs - (performance.now() - started);
      const result = await attemptOnce(request, pool, Math.max(1, remaining));
      if (result.kind === 'ok') {
        return { status: result.status, headers: result.headers, body: result.body, attempts: attempt };
      }

      const failure = toUpstreamError(result, origin, attempt);
      const retryable = result.kind === 'status' || result.kind === 'transport' ? result.retryable : false;
      if (!retryable || attempt >= settings.maxAttempts) {
        log(redact(`${where} failed after ${attempt} attempt(s): ${failure.message}`));
        throw failure;
      }
      const backoff = backoffDelayMs(attempt, settings.backoffBaseMs, settings.backoffMaxMs, random);
      const retryAfterMs = failure.retryAfterSeconds === undefined ? 0 : failure.retryAfterSeconds * 1000;
      const wait = Math.max(backoff, retryAfterMs);
      const elapsed = performance.now() - started;
      if (elapsed + wait >= settings.totalBudgetMs) {
        // Waiting would overrun the budget: give up now and pass the upstream's Retry-After on.
        log(
          redact(
            `${where} failed after ${attempt} attempt(s), no time left to retry in ${wait} ms: ${failure.message}`,
          ),
        );
        throw failure;
      }
      if (request.admit && !request.admit()) {
        log(redact(`${where} failed after ${attempt} attempt(s), call budget of the key spent: ${failure.message}`));
        throw failure;
      }
      log(redact(`${where} attempt ${attempt} failed: ${failure.message}; retrying in ${wait} ms`));
      await sleep(wait);
    }
  };

  return {
    send,
    async close() {
      closed = true;
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((pool) => pool.close().catch(() => pool.destroy())));
    },
  };
}

type AttemptResult =
  | { readonly kind: 'ok'; readonly status: number; readonly headers: Record<string, string>; readonly body: string }
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly retryAfterSeconds: number | undefined;
      readonly retryable: boolean;
    }
  | {
      readonly kind: 'transport';
      readonly error: unknown;
      readonly failure: UpstreamError['failure'];
      readonly retryable: boolean;
      readonly code: string;
    }
  | { readonly kind: 'budget'; readonly error: unknown }
  | { readonly kind: 'tooLarge' };

function toUpstreamError(
  result: Exclude<AttemptResult, { kind: 'ok' }>,
  origin: string,
  attempts: number,
): UpstreamError {
  switch (result.kind) {
    case 'status':
      return new UpstreamError('status', `upstream answered ${result.status}`, {
        origin,
        status: result.status,
        retryAfterSeconds: result.retryAfterSeconds,
        attempts,
      });
    case 'transport':
      return new UpstreamError(result.failure, `upstream ${result.failure} error (${readableCode(result.code)})`, {
        origin,
        attempts,
        cause: result.error,
      });
    case 'budget':
      return new UpstreamError('timeout', 'upstream time budget exhausted', { origin, attempts, cause: result.error });
    case 'tooLarge':
      return new UpstreamError('protocol', 'upstream answer exceeds the size limit', { origin, attempts });
  }
}

/** `UND_ERR_HEADERS_TIMEOUT` → `headers timeout`: codes stay legible after log redaction (which hides long runs). */
function readableCode(code: string): string {
  return code
    .replace(/^(UND_ERR|ERR)_/, '')
    .replace(/_/g, ' ')
    .toLowerCase();
}

function isSuccess(status: number): boolean {
  return status >= 200 && status <= 299;
}
