/**
 * Typed errors with stable codes. Flow logic throws these; `shared/http/errorShapes.ts` renders them in
 * the shape of the flow's real API. Only `publicMessage` ever reaches a client, and it never contains a key.
 */

export type StsErrorCode =
  | 'ERR_STS_INVALID_REQUEST'
  | 'ERR_STS_INVALID_CREDENTIALS'
  | 'ERR_STS_FORBIDDEN'
  | 'ERR_STS_PAYLOAD_TOO_LARGE'
  | 'ERR_STS_RATE_LIMITED'
  | 'ERR_STS_UNAVAILABLE';

/**
 * Why a request was refused, for the ledger and logs (never shown to the client verbatim).
 * Kept as an open string union so flows can add precise reasons without touching this file.
 */
export type RefusalReason =
  | 'malformed_request'
  | 'missing_credentials'
  | 'malformed_credentials'
  | 'unknown_credential'
  | 'wrong_key'
  | 'credential_disabled'
  | 'credential_mismatch'
  | 'scope_not_allowed'
  | 'feature_not_allowed'
  | 'rate_limited'
  | 'dependency_unavailable'
  | 'payload_too_large'
  | (string & {});

export interface StsErrorOptions {
  readonly retryAfterSeconds?: number;
  readonly reason?: RefusalReason;
  /** The credential a refusal concerns (account id, resource name, issuer), for the ledger; never a key. */
  readonly credentialId?: string;
  /** The Entra principal (`<tenant id>/<object id>`) a refusal concerns, for the ledger; never a token. */
  readonly principal?: string;
  readonly cause?: unknown;
}

export class StsError extends Error {
  readonly retryAfterSeconds: number | undefined;
  readonly reason: RefusalReason;
  readonly credentialId: string | undefined;
  readonly principal: string | undefined;

  constructor(
    readonly code: StsErrorCode,
    readonly status: number,
    /** The text the client sees, word for word. */
    readonly publicMessage: string,
    options: StsErrorOptions = {},
  ) {
    super(publicMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StsError';
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.reason = options.reason ?? defaultReason(code);
    this.credentialId = options.credentialId;
    this.principal = options.principal;
  }
}

function defaultReason(code: StsErrorCode): RefusalReason {
  switch (code) {
    case 'ERR_STS_INVALID_CREDENTIALS':
      return 'wrong_key';
    case 'ERR_STS_RATE_LIMITED':
      return 'rate_limited';
    case 'ERR_STS_UNAVAILABLE':
      return 'dependency_unavailable';
    case 'ERR_STS_PAYLOAD_TOO_LARGE':
      return 'payload_too_large';
    default:
      return 'malformed_request';
  }
}

export const badRequest = (message: string, options?: StsErrorOptions): StsError =>
  new StsError('ERR_STS_INVALID_REQUEST', 400, message, options);

export const invalidCredentials = (message: string, options?: StsErrorOptions): StsError =>
  new StsError('ERR_STS_INVALID_CREDENTIALS', 401, message, options);

export const forbidden = (message: string, options?: StsErrorOptions): StsError =>
  new StsError('ERR_STS_FORBIDDEN', 403, message, options);

export const payloadTooLarge = (maxBytes: number): StsError =>
  new StsError('ERR_STS_PAYLOAD_TOO_LARGE', 413, `Request body exceeds ${maxBytes} bytes.`, {
    reason: 'payload_too_large',
  });

export const rateLimited = (retryAfterSeconds: number, reason: RefusalReason = 'rate_limited'): StsError =>
  new StsError('ERR_STS_RATE_LIMITED', 429, 'Too many failed attempts. Retry later.', { retryAfterSeconds, reason });

export const serviceUnavailable = (retryAfterSeconds: number, options: Omit<StsErrorOptions, 'retryAfterSeconds'> = {}): StsError =>
  new StsError('ERR_STS_UNAVAILABLE', 503, 'The token service is temporarily unavailable. Retry later.', {
    reason: 'dependency_unavailable',
    ...options,
    retryAfterSeconds,
  });

/**
 * Thrown by a dependency (secret store, ledger, upstream) that cannot answer now. Handlers turn it into a
 * 503 with `Retry-After` in the flow's shape; it never reaches a client as a 500.
 */
export class DependencyUnavailableError extends Error {
  readonly code = 'ERR_STS_DEPENDENCY_UNAVAILABLE';
  constructor(
    readonly dependency: 'secret-store' | 'ledger' | 'upstream' | 'entra-authority',
    readonly retryAfterSeconds: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DependencyUnavailableError';
  }
}
