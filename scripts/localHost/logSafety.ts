/**
 * What the local host writes to its log must never carry a key or a token. Keys and tokens are long runs of
 * base64/base64url/hex, which mix letters and digits; names (`mixedRealityToken`), error codes and GUIDs
 * (request and account ids) are kept so the log stays useful.
 */
const RUN = /[A-Za-z0-9+/_=.%-]{16,}/g;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Replaces secret-looking runs with `[redacted]`, folds line breaks, and bounds the length.
 *
 * @example
 * maskSecretLike('refused key 0f3c9a7b5d1e2f4a6b8c0d2e4f6a8b0c'); // 'refused key [redacted]'
 */
export function maskSecretLike(text: string, maxLength = 1_000): string {
  const masked = text
    .replace(/[\r\n]+/g, ' ')
    .replace(RUN, (run) => (GUID.test(run) || !/[0-9]/.test(run) || !/[A-Za-z]/.test(run) ? run : '[redacted]'));
  return masked.length > maxLength ? `${masked.slice(0, maxLength)}…` : masked;
}

/**
 * A request path for the log, masked segment by segment (a path's `/` separates names, it is not part of a key).
 * The caller must already have removed the query string.
 *
 * @example
 * maskPath('/sts/v1.0/issueToken'); // '/sts/v1.0/issueToken'
 */
export function maskPath(path: string, maxLength = 200): string {
  const masked = path.split('/').map((segment) => maskSecretLike(segment, Infinity)).join('/');
  return masked.length > maxLength ? `${masked.slice(0, maxLength)}…` : masked;
}
