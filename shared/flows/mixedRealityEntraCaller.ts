import type { AllowedPrincipal, MixedRealityAccount } from '../credentials/records.js';
import {
  EntraTokenRefusal,
  type EntraPrincipal,
  type EntraRefusalReason,
  type EntraTokenValidator,
} from '../entra/entraTokenValidator.js';
import { invalidCredentials } from '../errors.js';
import { servedJwt } from '../upstream/servedUpstreamToken.js';
import type { FlowDependencies } from './flowDependencies.js';
import { mintMixedRealityToken } from './mixedRealityClaims.js';
import type { MixedRealityTokenRequest, MixedRealityTokenResult } from './mixedRealityToken.js';

/**
 * Public texts of the Entra refusals (they travel in `WWW-Authenticate`: ASCII, never the token). Token faults
 * are told apart, since the caller holds the token anyway; an unknown account, a disabled one and a principal
 * not on the account share one text, so a token reveals nothing about which accounts exist.
 */
export const entraCallerMessages = {
  principalNotAllowed: 'The caller is not allowed to obtain tokens for this account.',
  entra_malformed_token: 'The Microsoft Entra token is malformed.',
  entra_algorithm_not_allowed: 'The Microsoft Entra token must be signed with an asymmetric algorithm.',
  entra_unknown_signing_key: 'The Microsoft Entra token signature is invalid.',
  entra_bad_signature: 'The Microsoft Entra token signature is invalid.',
  entra_foreign_issuer: 'The Microsoft Entra token was issued by an authority this service does not trust.',
  entra_wrong_audience: 'The Microsoft Entra token is not meant for this service (audience).',
  entra_token_expired: 'The Microsoft Entra token has expired.',
  entra_token_not_yet_valid: 'The Microsoft Entra token is not valid yet.',
  entra_no_principal: 'The Microsoft Entra token names no tenant and object id.',
} as const satisfies Record<EntraRefusalReason | 'principalNotAllowed', string>;

/** The ledger's name of a principal: `<tenant id>/<object id>`. */
export const principalName = (principal: EntraPrincipal): string => `${principal.tenantId}/${principal.objectId}`;

/**
 * The keyless half of `GET /accounts/{accountId}/token` (docs/entra-id.md): validates the Entra token, then
 * authorizes its principal (`tid` + `oid`) against the account record's allowed principals, then answers as
 * the key flow does, with the caller in `tid` and `oid`. Refusals are 401 in the Mixed Reality shape, with the
 * account as `credentialId` and the principal for the ledger; they are counted as failed attempts per client
 * address, and a principal refused by an existing account also per credential (docs/failed-attempts.md).
 */
export async function issueMixedRealityTokenForEntraCaller(
  accountId: string,
  token: string,
  request: MixedRealityTokenRequest,
  deps: FlowDependencies,
  entra: EntraTokenValidator,
): Promise<MixedRealityTokenResult> {
  let principal: EntraPrincipal;
  try {
    principal = await entra.validate(token, request.now);
  } catch (error) {
    if (!(error instanceof EntraTokenRefusal)) throw error;
    throw invalidCredentials(entraCallerMessages[error.reason], { reason: error.reason, credentialId: accountId });
  }

  const account = await deps.credentials.mixedRealityAccount(accountId);
  const refusal = account ? accountRefusal(account, principal) : 'unknown_credential';
  if (refusal || !account) {
    throw invalidCredentials(entraCallerMessages.principalNotAllowed, {
      reason: refusal ?? 'unknown_credential',
      credentialId: accountId,
      principal: principalName(principal),
    });
  }

  if (account.upstream) {
    // Upstream mode: the token is the real STS's (fetched with the real key), so it cannot carry the caller.
    const context = { requestId: request.requestId, credentialId: `mr/${account.accountId}` };
    const served = await deps.upstream.mixedRealityToken(account.upstream, context);
    return { ...servedJwt(served, account.upstream, request.now), account, principal: principalName(principal) };
  }
  const { accessToken, audience } = await mintMixedRealityToken(
    account,
    { tid: principal.tenantId, oid: principal.objectId },
    request.now,
    deps,
  );
  return { accessToken, account, audience, principal: principalName(principal) };
}

function accountRefusal(
  account: MixedRealityAccount,
  principal: EntraPrincipal,
): 'principal_not_allowed' | 'credential_disabled' | undefined {
  if (!isPrincipalAllowed(account.allowedPrincipals ?? [], principal)) return 'principal_not_allowed';
  if (!account.enabled) return 'credential_disabled';
  return undefined;
}

/** Whether `principal` is on a record's list of allowed principals (Mixed Reality accounts, Cognitive resources). */
export function isPrincipalAllowed(allowed: readonly AllowedPrincipal[], principal: EntraPrincipal): boolean {
  // Records are written lower-case by the CLI; compared case-insensitively all the same (hand-edited records).
  return allowed.some(
    (entry) =>
      typeof entry?.tenantId === 'string' &&
      typeof entry.objectId === 'string' &&
      entry.tenantId.toLowerCase() === principal.tenantId &&
      entry.objectId.toLowerCase() === principal.objectId,
  );
}
