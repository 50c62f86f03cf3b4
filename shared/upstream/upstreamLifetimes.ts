import { UpstreamError } from './upstreamErrors.js';
import type { UpstreamToken } from './upstreamToken.js';

/**
 * How long an upstream token may be cached and served (docs/upstream.md#lifetimes). A token's own expiry wins
 * over its envelope's (`exp` in a JWT, `ExpiresOn` in an SWT, before `wrap_access_token_expires_in`), and
 * caching is capped at the lifetime the service documents, so a token claiming year 9999 is still refreshed on
 * the service's schedule.
 */

/** No token is served, fresh or cached, with less than this left. */
export const MIN_TOKEN_LEFT_SECONDS = 30;

/**
 * Documented lifetimes, in seconds: Mixed Reality STS tokens 24 h
 * (https://learn.microsoft.com/azure/remote-rendering/how-tos/authentication), Cognitive `issueToken` 10 minutes
 * (docs/contracts/cognitive-issue-token.md), ACS WRAP the longest documented answer, 3 h
 * (docs/contracts/acs-wrap.md#response). A limited access token lives as long as asked (`expiredTime`).
 */
export const DOCUMENTED_LIFETIME_SECONDS = {
  mixedReality: 86_400,
  cognitive: 600,
  acsWrap: 10_800,
} as const;

/**
 * The lifetimes a limited access token is fetched with: a request's `expiredTime` is rounded down to one of
 * these, so that clients asking for any of 86,341 values share at most nine tokens per target and flags, and
 * nobody gets a token that lives longer than asked.
 */
export const LIMITED_ACCESS_LIFETIMES_SECONDS = [60, 300, 600, 1_800, 3_600, 7_200, 14_400, 43_200, 86_400] as const;

/** The largest of {@link LIMITED_ACCESS_LIFETIMES_SECONDS} not above `requested` (60 at least). */
export function limitedAccessLifetime(requested: number): number {
  let chosen: number = LIMITED_ACCESS_LIFETIMES_SECONDS[0];
  for (const lifetime of LIMITED_ACCESS_LIFETIMES_SECONDS) if (lifetime <= requested) chosen = lifetime;
  return chosen;
}

/**
 * The token as cached: its expiry capped at `now + maxLifetimeSeconds`. Throws a `protocol` failure when less
 * than {@link MIN_TOKEN_LEFT_SECONDS} is left, so a nearly dead token is never served or cached.
 *
 * @example
 * capLifetime(fetched, new Date(), DOCUMENTED_LIFETIME_SECONDS.cognitive).expiresAt;
 */
export function capLifetime(
  token: UpstreamToken,
  now: Date,
  maxLifetimeSeconds: number,
  origin?: string,
): UpstreamToken {
  const capMs = now.getTime() + maxLifetimeSeconds * 1000;
  const expiresAt = new Date(Math.min(token.expiresAt.getTime(), capMs));
  if (expiresAt.getTime() - now.getTime() < MIN_TOKEN_LEFT_SECONDS * 1000) {
    throw new UpstreamError('protocol', `upstream token has less than ${MIN_TOKEN_LEFT_SECONDS} s left`, {
      origin,
      attempts: token.attempts,
    });
  }
  return { ...token, expiresAt };
}
