import { isCompactJwt, jwtExpiry } from './tokenExpiry.js';
import { UpstreamError } from './upstreamErrors.js';

/** A token fetched from an upstream STS, in the form the matching flow passes to its client. */
export interface UpstreamToken {
  /** The JWT (flows 1-3) or the single-encoded SWT (WRAP), exactly as the upstream issued it. */
  readonly token: string;
  /** When the upstream says it expires: the JWT `exp`, or fetch time + `wrap_access_token_expires_in`. */
  readonly expiresAt: Date;
  /** Requests the upstream client sent for it (1 unless retried). */
  readonly attempts: number;
}

/**
 * Checks that `text` is a compact JWT with an `exp` after `now` and wraps it as an {@link UpstreamToken};
 * anything else is a `protocol` failure (a garbled or wrong token is never passed on to a client).
 */
export function upstreamJwt(text: string, now: Date, origin: string, attempts: number): UpstreamToken {
  const token = text.trim();
  if (!isCompactJwt(token)) {
    throw new UpstreamError('protocol', 'upstream answer is not a compact JWT', { origin, attempts });
  }
  const expiresAt = jwtExpiry(token);
  if (!expiresAt) throw new UpstreamError('protocol', 'upstream token has no readable exp', { origin, attempts });
  if (expiresAt.getTime() <= now.getTime()) {
    throw new UpstreamError('protocol', 'upstream token is already expired', { origin, attempts });
  }
  return { token, expiresAt, attempts };
}
