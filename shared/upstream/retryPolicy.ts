import type { UpstreamFailure } from './upstreamErrors.js';

/**
 * When the upstream client tries again, and how long it waits. Pure functions, so the policy is tested
 * without a network.
 */

/** Statuses worth another attempt: throttling and server-side failures. Every other 4xx is final. */
export function isRetryableStatus(status: number): boolean {
  if (status === 429) return true;
  // 501 Not Implemented and 505 are answers about the request itself, not a transient state.
  return status >= 500 && status <= 599 && status !== 501 && status !== 505;
}

/**
 * Parses `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns whole seconds (at least
 * 0), or undefined when the header is absent or unreadable.
 */
export function parseRetryAfter(value: string | readonly string[] | undefined, nowMs: number): number | undefined {
  const first: string | undefined = typeof value === 'string' ? value : value?.[0];
  const text = first?.trim();
  if (!text) return undefined;
  if (/^\d{1,9}$/.test(text)) return Number(text);
  // HTTP-dates always name the month (IMF-fixdate, RFC 850, asctime); `Date.parse('-3')` would be year -3.
  if (!/[A-Za-z]{3}/.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - nowMs) / 1000));
}

/**
 * Exponential backoff with full jitter: a random delay in [base·2^(n-1)/2, base·2^(n-1)], capped at `maxMs`.
 * Half of the window is kept so that retries never collapse to zero delay.
 */
export function backoffDelayMs(retryNumber: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, retryNumber - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
const CONNECTION_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/**
 * Classifies an error thrown while sending a request or reading its answer. Certificate failures are
 * never retried (a retry cannot fix them and must not be tempted to weaken verification).
 */
export function classifyTransportError(error: unknown): {
  readonly failure: UpstreamFailure;
  readonly retryable: boolean;
  readonly code: string;
} {
  const codes = errorCodes(error);
  const tls = codes.find(isTlsCode);
  if (tls) return { failure: 'tls', retryable: false, code: tls };
  const code = codes[0] ?? '';
  if (TIMEOUT_CODES.has(code)) return { failure: 'timeout', retryable: true, code };
  if (CONNECTION_CODES.has(code)) return { failure: 'connection', retryable: true, code };
  return { failure: 'connection', retryable: false, code: code || 'unknown' };
}

function isTlsCode(code: string): boolean {
  return (
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('CERT_') ||
    code.startsWith('UNABLE_TO_') ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    code === 'HOSTNAME_MISMATCH'
  );
}

/** The string `code`s on the error and its `cause` chain, outermost first (undici wraps socket errors). */
function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code.length > 0 && code !== 'UND_ERR') codes.push(code);
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}
