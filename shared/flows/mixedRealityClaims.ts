import type { MixedRealityAccount } from '../credentials/records.js';
import type { IssuedJwt } from '../tokens/jwtIssuer.js';
import type { FlowDependencies } from './flowDependencies.js';

/** Who the caller was: `tid` always (zeros for a key), `oid` for an Entra caller (docs/entra-id.md). */
export interface MixedRealityCallerClaims {
  readonly tid: string;
  readonly oid?: string;
}

/**
 * Signs a Mixed Reality token for `account` (claims listed in docs/entra-id.md): `aid`/`cai` (account id), the caller's
 * claims, `apr` (the account domain's first label), `rid` (ARM id, when known), and from the issuer `iss`,
 * `aud` (configured), `iat`/`nbf`/`exp` and `jti`. Key and Entra callers get the same token but for the caller claims.
 *
 * @example
 * const { accessToken } = await mintMixedRealityToken(account, { tid: ZERO_TENANT }, now, deps);
 */
export async function mintMixedRealityToken(
  account: MixedRealityAccount,
  caller: MixedRealityCallerClaims,
  now: Date,
  deps: Pick<FlowDependencies, 'config' | 'jwtIssuer'>,
): Promise<{ readonly accessToken: IssuedJwt; readonly audience: string }> {
  const audience = deps.config.mixedRealityAudience;
  const region = account.accountDomain.split('.')[0];
  const accessToken = await deps.jwtIssuer.issue(
    {
      aid: account.accountId,
      cai: account.accountId,
      tid: caller.tid,
      ...(caller.oid ? { oid: caller.oid } : {}),
      ...(region ? { apr: region } : {}),
      ...(account.resourceId ? { rid: account.resourceId } : {}),
    },
    { audience, lifetimeSeconds: deps.config.lifetimes.mixedRealitySeconds, now },
  );
  return { accessToken, audience };
}
