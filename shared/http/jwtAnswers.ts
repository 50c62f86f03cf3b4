import type { HttpResponseInit } from '@azure/functions';
import type { IssuanceFacts } from '../ledger/ledger.js';
import type { IssuedJwt } from '../tokens/jwtIssuer.js';
import { upstreamIssuanceFacts, type UpstreamProvenance } from '../upstream/servedUpstreamToken.js';

/** What every JWT flow's result carries for the ledger. */
export interface JwtFlowResult {
  readonly accessToken: IssuedJwt;
  /** Absent when no key was presented (a Microsoft Entra caller). */
  readonly keySlot?: 1 | 2 | undefined;
  readonly audience: string;
  readonly upstream?: UpstreamProvenance | undefined;
}

/** The Cognitive token service's answer: the bare JWT as the body, never JSON (docs/contracts/cognitive-issue-token.md#response, docs/contracts/cognitive-limited-access-token.md#response). */
export function bareJwtResponse(token: string): HttpResponseInit {
  return { status: 200, headers: { 'Content-Type': 'application/jwt; charset=us-ascii' }, body: token };
}

/**
 * The ledger facts of an issued JWT: who (credential id, key slot), for what (audience, plus the flow's own
 * scope or flags), which token (`jti`, expiry), and where it came from in upstream mode.
 */
export function jwtIssuanceFacts(
  result: JwtFlowResult,
  credentialId: string,
  extra: Pick<IssuanceFacts, 'scope' | 'featureFlags'> = {},
): IssuanceFacts {
  return {
    credentialId,
    keySlot: result.keySlot,
    audience: result.audience,
    ...extra,
    jti: result.accessToken.jti,
    expiresAt: new Date(result.accessToken.expiresAt * 1000),
    ...upstreamIssuanceFacts(result.upstream),
  };
}
