/**
 * Reading the expiry of a token fetched from an upstream STS, without verifying it (we cannot: the
 * upstream's signing keys are not ours, and the client that uses the token is the one that relies on it).
 */

/** JWS compact: three dot-separated segments of base64 or base64url, optionally padded. */
const JWT_SHAPE = /^[A-Za-z0-9_+/-]+={0,2}\.[A-Za-z0-9_+/-]+={0,2}\.[A-Za-z0-9_+/-]*={0,2}$/;

/**
 * The `exp` of a JWT (RFC 7519 §4.1.4) as a Date, or undefined when the text is not a compact JWT or has no
 * usable `exp`. Accepts both base64 alphabets, with or without padding (docs/contracts/cross-cutting.md#jwt-encoding), and `exp`
 * written as an integer or as a string of digits (docs/contracts/open-points.md#mr-string-exp).
 *
 * @example
 * jwtExpiry(accessToken)?.toISOString(); // '2025-04-21T12:09:40.000Z'
 */
export function jwtExpiry(token: string): Date | undefined {
  const payload = jwtClaims(token);
  if (!payload) return undefined;
  const exp = payload.exp;
  const seconds = typeof exp === 'number' ? exp : typeof exp === 'string' && /^\d{1,12}$/.test(exp) ? Number(exp) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) return undefined;
  return new Date(Math.floor(seconds) * 1000);
}

/**
 * The payload of a compact JWT as an object, read without verifying it (both base64 alphabets, padded or
 * not); undefined when the text is not a JWT or its payload is not a JSON object.
 *
 * @example
 * jwtClaims(accessToken)?.aud; // 'urn:ms.speechservices.eastus'
 */
export function jwtClaims(token: string): Readonly<Record<string, unknown>> | undefined {
  if (token.length > 16_384 || !JWT_SHAPE.test(token)) return undefined;
  const payloadSegment = token.split('.')[1];
  if (payloadSegment === undefined) return undefined;
  let payload: unknown;
  try {
    const standard = payloadSegment.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
    payload = JSON.parse(Buffer.from(standard, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return undefined;
  return payload as Record<string, unknown>;
}

/** True when `token` looks like a compact JWT (the only shape flows 1-3 may pass on to a client). */
export function isCompactJwt(token: string): boolean {
  return token.length <= 16_384 && JWT_SHAPE.test(token);
}
