import { DependencyUnavailableError } from '../errors.js';

/**
 * Knows how Key Vault and `@azure/identity` failures look, and what each means for a caller: the secret is
 * absent (404 `SecretNotFound`, 403 `SecretDisabled`), or the vault cannot answer now (throttling, 5xx,
 * timeouts, network, managed-identity failures, and anything else on a read path) — a
 * `DependencyUnavailableError` that the HTTP layer turns into a 503 with `Retry-After`.
 */

/** Default `Retry-After` (seconds) when the vault did not name one. */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;
/** Upper bound for a vault-provided `Retry-After`, so one odd header cannot park a credential for long. */
export const MAX_RETRY_AFTER_SECONDS = 60;

/** The parts of an SDK `RestError` we read (duck-typed: the SDK module is loaded lazily). */
interface RestErrorLike {
  readonly name?: string;
  readonly statusCode?: number;
  readonly code?: string;
  readonly message?: string;
  readonly response?: { readonly headers?: { get(name: string): string | undefined } };
  readonly details?: unknown;
}

export type VaultFailure =
  | { readonly kind: 'absent' }
  | {
      readonly kind: 'unavailable';
      readonly retryAfterSeconds: number;
      readonly description: string;
      /** The vault answered 429. */
      readonly throttled?: boolean;
    }
  | { readonly kind: 'rejected'; readonly status: number | undefined; readonly description: string };

/**
 * Classifies an error thrown by the SDK or the credential (docs/key-vault.md#faults: faults handled, never leaked).
 *
 * @example
 * classifyVaultError(restError404); // { kind: 'absent' }
 * classifyVaultError(restError429); // { kind: 'unavailable', retryAfterSeconds: <Retry-After>, description }
 */
export function classifyVaultError(error: unknown): VaultFailure {
  const e = (error ?? {}) as RestErrorLike;
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const inner = innerErrorCode(e.details);
  if (status === 404) return { kind: 'absent' };
  if (status === 403 && (inner === 'SecretDisabled' || /disabled/i.test(e.message ?? ''))) return { kind: 'absent' };

  const retryAfter = retryAfterSeconds(e.response?.headers?.get('retry-after'));
  if (status === 429) {
    return {
      kind: 'unavailable',
      retryAfterSeconds: retryAfter ?? DEFAULT_RETRY_AFTER_SECONDS,
      description: 'Key Vault throttled the request (429)',
      throttled: true,
    };
  }
  if (status !== undefined && (status >= 500 || status === 408)) {
    return {
      kind: 'unavailable',
      retryAfterSeconds: retryAfter ?? DEFAULT_RETRY_AFTER_SECONDS,
      description: `Key Vault answered ${status}${code ? ` ${code}` : ''}`,
    };
  }
  if (status === undefined) {
    // No HTTP answer: timeout/abort, network failure, or the credential could not get a token.
    return { kind: 'unavailable', retryAfterSeconds: DEFAULT_RETRY_AFTER_SECONDS, description: describeTransport(e) };
  }
  // 400/401/403: the vault answered but refused (wrong identity, missing RBAC role, bad request).
  return { kind: 'rejected', status, description: `Key Vault refused the request: ${status}${code ? ` ${code}` : ''}` };
}

/** The error a read path throws for anything but "absent": the client gets 503 + `Retry-After`. */
export function toDependencyUnavailable(
  failure: Exclude<VaultFailure, { kind: 'absent' }>,
  cause: unknown,
): DependencyUnavailableError {
  const retryAfter = failure.kind === 'unavailable' ? failure.retryAfterSeconds : DEFAULT_RETRY_AFTER_SECONDS;
  const condition = failure.kind === 'unavailable' && failure.throttled === true ? 'throttled' : undefined;
  return new DependencyUnavailableError('secret-store', retryAfter, failure.description, { cause, condition });
}

/** `Retry-After` as seconds (delta or HTTP date), clamped to 1..{@link MAX_RETRY_AFTER_SECONDS}. */
export function retryAfterSeconds(header: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  let seconds: number;
  if (/^\d+$/.test(trimmed)) seconds = Number(trimmed);
  else {
    const at = Date.parse(trimmed);
    if (!Number.isFinite(at)) return undefined;
    seconds = Math.ceil((at - nowMs) / 1000);
  }
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, seconds));
}

function innerErrorCode(details: unknown): string | undefined {
  // The SDK deserialises the body as { error: { code, message, innerError: { code } } }.
  const error = (
    details as { error?: { innerError?: { code?: unknown }; innererror?: { code?: unknown } } } | undefined
  )?.error;
  const code = error?.innerError?.code ?? error?.innererror?.code;
  return typeof code === 'string' ? code : undefined;
}

function describeTransport(e: RestErrorLike): string {
  switch (e.name) {
    case 'AbortError':
    case 'TimeoutError':
      return 'Key Vault did not answer in time';
    case 'TokenAcquisitionTimeoutError':
      return 'The managed identity did not issue a token in time';
    case 'ManagedIdentityTokenError':
      return `The managed identity could not get a token for Key Vault (${e.message})`;
    case 'CredentialUnavailableError':
    case 'AuthenticationError':
    case 'AuthenticationRequiredError':
    case 'AggregateAuthenticationError':
      return `The Azure identity could not get a token for Key Vault (${e.name})`;
    default:
      return `Key Vault is unreachable (${e.code ?? e.name ?? 'error'})`;
  }
}
