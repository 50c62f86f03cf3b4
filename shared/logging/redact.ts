/**
 * Log hygiene, in one place: nothing that could be a key or a token reaches a log line. Keys and tokens are
 * long runs of base64, base64url or hex, which mix letters and digits; names (`mixedRealityToken`), error
 * codes (`ERR_STS_UNAVAILABLE`) and GUIDs (request and account ids) are kept so the log stays useful.
 */
const RUN = /[A-Za-z0-9+/_=.%-]{16,}/g;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isSecretLike(run: string): boolean {
  return !GUID.test(run) && /[0-9]/.test(run) && /[A-Za-z]/.test(run);
}

/**
 * Replaces secret-looking runs with `[redacted]`, folds line breaks, and bounds the length.
 *
 * @example
 * redact('refused key 0f3c9a7b5d1e2f4a6b8c0d2e4f6a8b0c'); // 'refused key [redacted]'
 */
export function redact(text: string, maxLength = 300): string {
  const cleaned = text.replace(/[\r\n]+/g, ' ').replace(RUN, (run) => (isSecretLike(run) ? '[redacted]' : run));
  return cleaned.length > maxLength ? `${cleaned.slice(0, maxLength)}…` : cleaned;
}

/**
 * A request path for a log line, redacted segment by segment (`/` separates names; it is not part of a
 * key). The caller removes the query string first: queries may carry `Subscription-Key`.
 *
 * @example
 * redactPath('/sts/v1.0/issueToken'); // '/sts/v1.0/issueToken'
 */
export function redactPath(path: string, maxLength = 200): string {
  const cleaned = path
    .split('/')
    .map((segment) => redact(segment, Number.POSITIVE_INFINITY))
    .join('/');
  return cleaned.length > maxLength ? `${cleaned.slice(0, maxLength)}…` : cleaned;
}

/** An error as one safe log fragment: its name, stable code if any, and redacted message. No stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return redact(`${error.name}${typeof code === 'string' ? ` ${code}` : ''}: ${error.message}`);
  }
  return redact(String(error));
}
