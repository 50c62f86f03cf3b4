/**
 * Why a call to an upstream STS failed. The message never contains a key, a token or a response body, so
 * these errors may be logged (through `describeError`) as they are.
 *
 * | failure         | meaning                                                                 | retried by the client |
 * |-----------------|-------------------------------------------------------------------------|-----------------------|
 * | `status`        | the upstream answered with a status other than success                  | 429 and 5xx (not 501) |
 * | `connection`    | connect refused, connection reset or closed mid-response                | yes                   |
 * | `timeout`       | connect, headers or body timeout, or the total time budget ran out      | yes (not the budget)  |
 * | `tls`           | the upstream's certificate did not verify                               | never                 |
 * | `protocol`      | a success whose body is not the documented shape (garbled or no `exp`)  | never                 |
 * | `configuration` | the upstream secret is missing, malformed or not an upstream key; the endpoint is not a documented host | never |
 * | `budget`        | this instance's call budget for the real key is spent: no request was sent | never                 |
 */
export type UpstreamFailure = 'status' | 'connection' | 'timeout' | 'tls' | 'protocol' | 'configuration' | 'budget';

export interface UpstreamErrorDetails {
  /** Origin of the upstream (`https://host:port`), never a path or query. */
  readonly origin?: string | undefined;
  /** HTTP status of the last answer, for `status` failures. */
  readonly status?: number | undefined;
  /** The upstream's `Retry-After`, in whole seconds, when it sent one. */
  readonly retryAfterSeconds?: number | undefined;
  /** How many requests were sent before giving up. */
  readonly attempts?: number | undefined;
  readonly cause?: unknown;
}

export class UpstreamError extends Error {
  readonly code = 'ERR_STS_UPSTREAM';
  readonly origin: string | undefined;
  readonly status: number | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly attempts: number;

  constructor(
    readonly failure: UpstreamFailure,
    message: string,
    details: UpstreamErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'UpstreamError';
    this.origin = details.origin;
    this.status = details.status;
    this.retryAfterSeconds = details.retryAfterSeconds;
    this.attempts = details.attempts ?? 0;
  }
}

/** True for an upstream `401`: the real key was refused (typically rotated), the case that earns a key re-read. */
export function isUpstreamKeyRefused(error: unknown): error is UpstreamError {
  return error instanceof UpstreamError && error.failure === 'status' && error.status === 401;
}

/**
 * True for a failure that says something about the real key or the upstream as a whole, not about one request's
 * parameters: 401/403 (the key), 429 and 5xx (the service), transport failures, a missing or refused secret or
 * endpoint. Such a failure cools down every cache entry of the key; any other (a 400 for one target, a garbled
 * answer) cools down only its own entry, so one client's bad request cannot stop the key serving others.
 */
export function isKeyWideFailure(error: UpstreamError): boolean {
  if (error.failure === 'protocol') return false;
  if (error.failure !== 'status') return true;
  const status = error.status ?? 0;
  return status === 401 || status === 403 || status === 429 || status >= 500;
}
