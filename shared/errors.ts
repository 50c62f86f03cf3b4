/**
 * Typed errors with stable codes. Flow logic throws these; `shared/http/errorShapes.ts` renders them in
 * the shape of the flow's real API. Only `publicMessage` ever reaches a client, and it never contains a key.
 */

/**
 * The base of every error this app throws on purpose, as jose's `JOSEError`: a stable `code` per class, so
 * callers and logs tell failures apart by code (`error.code === 'ERR_STS_UNAVAILABLE'`), never by message.
 * Errors of libraries (a socket error, an SDK's RestError) are not wrapped in it unless they mean something.
 */
export abstract class StsBaseError extends Error {
  /** Stable, `ERR_STS_` + what failed; one per class (or, for {@link StsError}, one per answer). */
  abstract readonly code: string;
}

/**
 * What each refusal code means on the wire: the status, and the public text where it does not depend on the
 * flow (the flows' own texts are those of the real APIs, word for word, and passed in).
 */
const answers = {
  ERR_STS_INVALID_REQUEST: { status: 400 },
  ERR_STS_INVALID_CREDENTIALS: { status: 401 },
  ERR_STS_FORBIDDEN: { status: 403 },
  ERR_STS_PAYLOAD_TOO_LARGE: { status: 413 },
  ERR_STS_URL_TOO_LONG: { status: 414 },
  ERR_STS_RATE_LIMITED: { status: 429, text: 'Too many failed attempts. Retry later.' },
  ERR_STS_HEADERS_TOO_LARGE: { status: 431 },
  ERR_STS_UNAVAILABLE: { status: 503, text: 'The token service is temporarily unavailable. Retry later.' },
} as const satisfies Record<string, { status: number; text?: string }>;

/** A refusal a client sees; the code decides the HTTP status (`answers` above). */
export type StsErrorCode = keyof typeof answers;

/** The status a refusal code is answered with. */
export function statusOf(code: StsErrorCode): number {
  return answers[code].status;
}

/** Why the Microsoft Entra token of a caller was refused (the texts the client sees are the flow's). */
export type EntraRefusalReason =
  | 'entra_malformed_token'
  | 'entra_algorithm_not_allowed'
  | 'entra_unknown_signing_key'
  | 'entra_bad_signature'
  | 'entra_foreign_issuer'
  | 'entra_wrong_audience'
  | 'entra_token_expired'
  | 'entra_token_not_yet_valid'
  | 'entra_no_principal';

/**
 * Why a request was refused, for the ledger and logs (never shown to the client verbatim). Closed: a new
 * reason is added here, so every reader of the ledger sees the whole list in one place.
 */
export type RefusalReason =
  | 'malformed_request'
  | 'missing_credentials'
  | 'malformed_credentials'
  | 'unknown_credential'
  | 'wrong_key'
  | 'credential_disabled'
  | 'credential_mismatch'
  | 'principal_not_allowed'
  | 'scope_not_allowed'
  | 'feature_not_allowed'
  | 'rate_limited'
  | 'dependency_unavailable'
  | 'payload_too_large'
  | 'url_too_long'
  | 'too_many_query_parameters'
  | 'headers_too_large'
  | EntraRefusalReason;

export interface StsErrorOptions {
  readonly retryAfterSeconds?: number;
  readonly reason?: RefusalReason;
  /** The credential a refusal concerns (account id, resource name, issuer), for the ledger; never a key. */
  readonly credentialId?: string;
  /** The Entra principal (`<tenant id>/<object id>`) a refusal concerns, for the ledger; never a token. */
  readonly principal?: string;
  readonly cause?: unknown;
}

/** A refusal, rendered in the shape of the flow's real API (`shared/http/errorShapes.ts`). */
export class StsError extends StsBaseError {
  readonly status: number;
  /** The text the client sees, word for word. */
  readonly publicMessage: string;
  readonly retryAfterSeconds: number | undefined;
  readonly reason: RefusalReason;
  readonly credentialId: string | undefined;
  readonly principal: string | undefined;

  /** `publicMessage` may be left out for the codes whose text is fixed (429, 503). */
  constructor(
    readonly code: StsErrorCode,
    publicMessage: string | undefined,
    options: StsErrorOptions = {},
  ) {
    const answer: { status: number; text?: string } = answers[code];
    const text = publicMessage ?? answer.text ?? '';
    super(text, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StsError';
    this.status = answer.status;
    this.publicMessage = text;
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
    case 'ERR_STS_URL_TOO_LONG':
      return 'url_too_long';
    case 'ERR_STS_HEADERS_TOO_LARGE':
      return 'headers_too_large';
    default:
      return 'malformed_request';
  }
}

export const badRequest = (message: string, options?: StsErrorOptions): StsError =>
  new StsError('ERR_STS_INVALID_REQUEST', message, options);

export const invalidCredentials = (message: string, options?: StsErrorOptions): StsError =>
  new StsError('ERR_STS_INVALID_CREDENTIALS', message, options);

export const forbidden = (message: string, options?: StsErrorOptions): StsError =>
  new StsError('ERR_STS_FORBIDDEN', message, options);

export const payloadTooLarge = (maxBytes: number): StsError =>
  new StsError('ERR_STS_PAYLOAD_TOO_LARGE', `Request body exceeds ${maxBytes} bytes.`);

export const rateLimited = (
  retryAfterSeconds: number,
  options: Omit<StsErrorOptions, 'retryAfterSeconds'> = {},
): StsError => new StsError('ERR_STS_RATE_LIMITED', undefined, { ...options, retryAfterSeconds });

export const serviceUnavailable = (
  retryAfterSeconds: number,
  options: Omit<StsErrorOptions, 'retryAfterSeconds'> = {},
): StsError =>
  new StsError('ERR_STS_UNAVAILABLE', undefined, {
    reason: 'dependency_unavailable',
    ...options,
    retryAfterSeconds,
  });

/**
 * Thrown by a dependency (secret store, ledger, upstream) that cannot answer now. Handlers turn it into a
 * 503 with `Retry-After` in the flow's shape; it never reaches a client as a 500.
 */
/**
 * Why a dependency was not asked or refused, where that is known: the service throttled us (`throttled`), or
 * this instance's own read budget was spent before asking it (`budget`). Telemetry and alerts group on it.
 */
export type DependencyCondition = 'throttled' | 'budget';

export class DependencyUnavailableError extends StsBaseError {
  readonly code = 'ERR_STS_DEPENDENCY_UNAVAILABLE';
  readonly condition: DependencyCondition | undefined;
  constructor(
    readonly dependency: 'secret-store' | 'ledger' | 'upstream' | 'entra-authority',
    readonly retryAfterSeconds: number,
    message: string,
    options?: { cause?: unknown; condition?: DependencyCondition },
  ) {
    super(message, options);
    this.name = 'DependencyUnavailableError';
    this.condition = options?.condition;
  }
}
