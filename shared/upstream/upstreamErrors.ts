import { StsBaseError } from '../errors.js';
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
 * | `configuration` | the upstream secret is missing or malformed, or the endpoint is not https | never              |
 */
export type UpstreamFailure = 'status' | 'connection' | 'timeout' | 'tls' | 'protocol' | 'configuration';

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

export class UpstreamError extends StsBaseError {
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
