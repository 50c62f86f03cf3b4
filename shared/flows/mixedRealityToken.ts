import type { MixedRealityAccount } from '../credentials/records.js';
import { GUID_PATTERN } from '../credentials/vaultLayout.js';
import { badRequest, invalidCredentials } from '../errors.js';
import type { IssuedJwt } from '../tokens/jwtIssuer.js';
import { servedJwt, type UpstreamProvenance } from '../upstream/servedUpstreamToken.js';
import type { FlowDependencies } from './flowDependencies.js';
import { mintMixedRealityToken } from './mixedRealityClaims.js';

/** What the Mixed Reality STS reads from a request (docs/contracts/mixed-reality-sts.md#request). */
export interface MixedRealityTokenRequest {
  /** `{accountId}` from the path, as sent. */
  readonly accountId: string | undefined;
  /** The `Authorization` header, or null/undefined when absent. */
  readonly authorization: string | null | undefined;
  readonly now: Date;
  /** Passed to the upstream fetch it may trigger (ledger). */
  readonly requestId?: string;
}

/** A token issued for an account, with the facts the ledger records. */
export interface MixedRealityTokenResult {
  readonly accessToken: IssuedJwt;
  readonly account: MixedRealityAccount;
  /** Which account key was presented; absent for an Entra caller, who presents none. */
  readonly keySlot?: 1 | 2;
  readonly audience: string;
  /** Set when the token is the real STS's, served in upstream mode. */
  readonly upstream?: UpstreamProvenance;
  /**
   * Set when the caller proved a Microsoft Entra identity instead of a key: `<tenant id>/<object id>`, as the
   * ledger names it (docs/entra-id.md).
   */
  readonly principal?: string;
}

/** Public texts of the refusals (they travel in `WWW-Authenticate`, so ASCII, and never echo the request). */
export const mixedRealityMessages = {
  accountIdNotGuid: 'The account id in the path must be a GUID.',
  missingAuthorization: 'The Authorization header is missing.',
  malformedAuthorization: "The Authorization header must be 'Bearer {accountId}:{accountKey}'.",
  accountMismatch: 'The account id in the Authorization header does not match the account id in the path.',
  invalidCredentials: 'The account id or account key is invalid.',
} as const;

const ZERO_TENANT = '00000000-0000-0000-0000-000000000000';
/** Longer than any real `Bearer {guid}:{base64 key}` by far; anything longer is refused before a lookup. */
const MAX_AUTHORIZATION_LENGTH = 1_024;
const BEARER_CREDENTIALS = /^Bearer[ \t]+([^ \t].*)$/i;
const KEY_TEXT = /^[\x21-\x7e]+$/;
/** Entra access tokens are a few KiB; the header limit (`STS_MAX_HEADER_BYTES`) bounds them too. */
const MAX_ENTRA_AUTHORIZATION_LENGTH = 12 * 1024;
/** Three base64url segments; an empty signature is let through so `alg: none` is refused for what it is. */
const BEARER_JWT = /^Bearer[ \t]+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/i;

/**
 * Issues a Mixed Reality access token for `GET /accounts/{accountId}/token` (docs/contracts/mixed-reality-sts.md).
 *
 * Checks, in order: the path id is a GUID (else 400); `Authorization` is `Bearer {accountId}:{accountKey}`,
 * split at the first `:` (else 401); the header's id equals the path's, ignoring case (else 401); the key is
 * one of the account's two keys and the account is enabled (else 401, one message for unknown account, wrong
 * key and disabled account, so a caller learns nothing about which accounts exist). Then signs a JWT with
 * the claims of docs/contracts/mixed-reality-sts.md#token: `aid`/`cai` (account id), `tid` (zeros: key authentication has no tenant), `apr`
 * (region: the account domain's first label), `rid` (ARM id, when known) and, from the issuer, `iss`,
 * `aud` (configured), `iat`/`nbf`/`exp` (= now + 24 h by default) and `jti`.
 *
 * When `STS_ENTRA_AUTHORITY` is set, a bearer that is a JWT (three base64url segments) is a Microsoft Entra
 * access token instead, validated and authorized as docs/entra-id.md describes; the answer has the same shape.
 *
 * @example
 * const { accessToken } = await issueMixedRealityToken(
 *   { accountId: id, authorization: `Bearer ${id}:${key}`, now: new Date() }, services);
 * JSON.stringify({ AccessToken: accessToken.token });
 */
export async function issueMixedRealityToken(
  request: MixedRealityTokenRequest,
  deps: FlowDependencies,
): Promise<MixedRealityTokenResult> {
  const pathId = request.accountId ?? '';
  if (!GUID_PATTERN.test(pathId))
    throw badRequest(mixedRealityMessages.accountIdNotGuid, { reason: 'malformed_request' });
  const accountId = pathId.toLowerCase();

  const authorization = request.authorization?.trim() ?? '';
  if (authorization === '') {
    throw invalidCredentials(mixedRealityMessages.missingAuthorization, {
      reason: 'missing_credentials',
      credentialId: accountId,
    });
  }
  const entraToken =
    deps.entra && authorization.length <= MAX_ENTRA_AUTHORIZATION_LENGTH
      ? BEARER_JWT.exec(authorization)?.[1]
      : undefined;
  if (deps.entra && entraToken !== undefined) {
    // Loaded on the first Entra token: key callers never load the Entra modules (cold start).
    const { issueMixedRealityTokenForEntraCaller } = await import('./mixedRealityEntraCaller.js');
    return issueMixedRealityTokenForEntraCaller(accountId, entraToken, request, deps, deps.entra);
  }
  const credentials =
    authorization.length <= MAX_AUTHORIZATION_LENGTH ? BEARER_CREDENTIALS.exec(authorization)?.[1] : undefined;
  const colon = credentials?.indexOf(':') ?? -1;
  if (credentials === undefined || colon <= 0) {
    throw invalidCredentials(mixedRealityMessages.malformedAuthorization, {
      reason: 'malformed_credentials',
      credentialId: accountId,
    });
  }
  const headerId = credentials.slice(0, colon);
  const key = credentials.slice(colon + 1);
  if (!KEY_TEXT.test(key)) {
    throw invalidCredentials(mixedRealityMessages.malformedAuthorization, {
      reason: 'malformed_credentials',
      credentialId: accountId,
    });
  }
  if (headerId.toLowerCase() !== accountId) {
    throw invalidCredentials(mixedRealityMessages.accountMismatch, {
      reason: 'credential_mismatch',
      credentialId: accountId,
    });
  }

  const verification = await deps.credentials.verifyAccountKey(accountId, key);
  if (!verification.ok) {
    throw invalidCredentials(mixedRealityMessages.invalidCredentials, {
      reason: verification.reason,
      credentialId: accountId,
    });
  }
  const account = verification.credential.record;
  if (account.upstream) {
    // Upstream mode (docs/upstream.md): the client proved its own key; the token is the real STS's, fetched with the real key.
    const context = { requestId: request.requestId, credentialId: `mr/${account.accountId}` };
    const served = await deps.upstream.mixedRealityToken(account.upstream, context);
    return { ...servedJwt(served, account.upstream, request.now), account, keySlot: verification.credential.keySlot };
  }

  const { accessToken, audience } = await mintMixedRealityToken(account, { tid: ZERO_TENANT }, request.now, deps);
  return { accessToken, account, keySlot: verification.credential.keySlot, audience };
}
