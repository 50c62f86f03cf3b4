import { randomBytes } from 'node:crypto';

/**
 * The headers every response carries, success or error: nothing a token service returns may be cached or
 * sniffed. (Discovery and JWKS override `Cache-Control` on purpose; see `publicCacheHeaders`.)
 */
export function securityHeaders(): Record<string, string> {
  return {
    'Cache-Control': 'no-store, no-cache',
    Pragma: 'no-cache',
    Expires: '-1',
    'X-Content-Type-Options': 'nosniff',
    'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
  };
}

/** Headers for public, cacheable documents (discovery, JWKS). */
export function publicCacheHeaders(maxAgeSeconds: number): Record<string, string> {
  return {
    'Cache-Control': `public, max-age=${maxAgeSeconds}`,
    'X-Content-Type-Options': 'nosniff',
    'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
  };
}

/** Random bytes drawn in blocks: one `randomBytes` call per 256 correlation vectors instead of per request. */
const CV_BYTES = 16;
const POOL_BYTES = CV_BYTES * 256;
let pool = randomBytes(POOL_BYTES);
let poolOffset = 0;

/** Mixed Reality correlation vector: 16 random bytes, base64 without padding (22 chars), then `.0`. */
export function newCorrelationVector(): string {
  if (poolOffset + CV_BYTES > POOL_BYTES) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + CV_BYTES);
  poolOffset += CV_BYTES;
  return `${bytes.toString('base64').slice(0, 22)}.0`;
}
