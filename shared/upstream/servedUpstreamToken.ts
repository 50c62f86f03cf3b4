import { createHash } from 'node:crypto';
import type { UpstreamSource } from '../credentials/records.js';
import type { IssuedJwt } from '../tokens/jwtIssuer.js';
import { encodeSwtComponent } from '../tokens/swt.js';
import { jwtClaims } from './tokenExpiry.js';
import type { ServedUpstreamToken } from './upstreamTokenCache.js';
import { remainingSeconds } from './upstreamTokens.js';

/**
 * Turning a token served from an upstream STS into what a flow returns for a token it signed itself, so the
 * function adapters write the same wire shape and the same ledger facts in both modes (docs/upstream.md).
 */

/** Where a flow's token came from, when not from our own signer: recorded in the issuance ledger row. */
export interface UpstreamProvenance {
  /** `fetched` (this request or one it joined called the upstream), `cached`, or `fallback` (upstream failing, still-valid token served). */
  readonly servedFrom: ServedUpstreamToken['servedFrom'];
}

/** A JWT from an upstream (flows 1-3) as the flows' `accessToken`, its audience, and its provenance. */
export interface ServedJwt {
  readonly accessToken: IssuedJwt;
  readonly audience: string;
  readonly upstream: UpstreamProvenance;
}

/**
 * Wraps a served upstream JWT for the flow result (docs/contracts/mixed-reality-sts.md#response, docs/contracts/cognitive-issue-token.md#response, docs/contracts/cognitive-limited-access-token.md#response): the token is passed on
 * untouched; `jti`, `iat` and `aud` are read from it without verification, for the ledger only. A token
 * without `jti` (the Cognitive token service writes none, docs/contracts/cognitive-issue-token.md#response) is named by a digest instead, so ledger rows
 * of clients that shared one upstream token still show it; a token without `aud` is recorded under the
 * upstream's origin.
 *
 * @example
 * const served = await deps.upstream.cognitiveToken(resource.upstream, { requestId });
 * return { ...servedJwt(served, resource.upstream, request.now), resource, keySlot };
 */
export function servedJwt(served: ServedUpstreamToken, source: UpstreamSource, now: Date): ServedJwt {
  const claims = jwtClaims(served.token) ?? {};
  const expiresAt = Math.floor(served.expiresAt.getTime() / 1000);
  const iat =
    typeof claims.iat === 'number' && Number.isInteger(claims.iat) ? claims.iat : Math.floor(now.getTime() / 1000);
  const aud: unknown = Array.isArray(claims.aud) ? (claims.aud as unknown[])[0] : claims.aud;
  return {
    accessToken: {
      token: served.token,
      jti: typeof claims.jti === 'string' && claims.jti !== '' ? claims.jti.slice(0, 128) : tokenDigest(served.token),
      issuedAt: iat,
      expiresAt,
    },
    audience: typeof aud === 'string' && aud !== '' ? aud.slice(0, 512) : originOf(source.endpoint),
    upstream: { servedFrom: served.servedFrom },
  };
}

/** A WRAP answer built from a served upstream SWT, with `ExpiresOn` for the ledger. */
export interface ServedWrapToken {
  /** `wrap_access_token=<SWT, form-encoded again>&wrap_access_token_expires_in=<seconds left>`. */
  readonly responseBody: string;
  /** Seconds since the epoch. */
  readonly expiresOn: number;
  readonly upstream: UpstreamProvenance;
}

/**
 * The WRAP response body for a served upstream SWT (docs/contracts/acs-wrap.md#response): exactly the two parameters, token
 * first, the SWT encoded once more as .NET does, and `expires_in` counting what is left of the upstream
 * token at `now` (a cached token has less left than a fresh one).
 *
 * @example
 * const served = await deps.upstream.wrapToken(issuer.upstream, { issuerName, scope }, { requestId });
 * return { ...servedWrapToken(served, now), issuer, keySlot, scope };
 */
export function servedWrapToken(served: ServedUpstreamToken, now: Date): ServedWrapToken {
  return {
    responseBody: `wrap_access_token=${encodeSwtComponent(served.token)}&wrap_access_token_expires_in=${remainingSeconds(served.expiresAt, now)}`,
    expiresOn: Math.floor(served.expiresAt.getTime() / 1000),
    upstream: { servedFrom: served.servedFrom },
  };
}

/**
 * The ledger facts that mark an issuance served from an upstream: `reason` = `upstream:fetched`,
 * `upstream:cached` or `upstream:fallback`. Empty for a token we signed. Spread into a flow's `issuance`.
 *
 * @example
 * issuance: { credentialId, keySlot, audience, jti, expiresAt, ...upstreamIssuanceFacts(result.upstream) }
 */
export function upstreamIssuanceFacts(upstream: UpstreamProvenance | undefined): { readonly source?: string } {
  return upstream ? { source: `upstream:${upstream.servedFrom}` } : {};
}

function tokenDigest(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 32)}`;
}

function originOf(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return 'upstream';
  }
}
