import type { EntraSettings } from '../config.js';
import { StsBaseError, type EntraRefusalReason } from '../errors.js';
import type { AuthorityJwk, AuthorityKeys } from './authorityKeys.js';

/** Who an accepted Entra access token names: the tenant (`tid`) and the object (`oid`), both lower-case GUIDs. */
export interface EntraPrincipal {
  readonly tenantId: string;
  readonly objectId: string;
}

/** Why a token was refused: the ledger's reason code (stable; the texts the client sees are the flow's). */
export type { EntraRefusalReason } from '../errors.js';

/** A token that does not prove a principal. Thrown by {@link EntraTokenValidator.validate}; never carries the token. */
export class EntraTokenRefusal extends StsBaseError {
  readonly code = 'ERR_STS_ENTRA_TOKEN_REFUSED';
  constructor(readonly reason: EntraRefusalReason) {
    super(`Entra token refused: ${reason}`);
    this.name = 'EntraTokenRefusal';
  }
}

export interface EntraTokenValidator {
  /**
   * Validates an Entra access token and returns its principal; throws {@link EntraTokenRefusal} for a token
   * that proves nothing and `DependencyUnavailableError` when the authority's keys cannot be had.
   */
  validate(token: string, now: Date): Promise<EntraPrincipal>;
}

/**
 * Asymmetric JWS algorithms only: `none` and the HMAC family (`HS*`) are refused before any key is looked up,
 * so a token cannot be "signed" with a public key used as an HMAC secret.
 */
export const ACCEPTED_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
] as const;

/** Clock skew tolerated on `exp` and `nbf`, in seconds. */
export const CLOCK_SKEW_SECONDS = 60;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Jose = typeof import('jose');
let jose: Promise<Jose> | undefined;
// Loaded on the first Entra token, not at start: key-only deployments never pay for it.
const loadJose = (): Promise<Jose> => (jose ??= import('jose'));
type PublicKey = Awaited<ReturnType<Jose['importJWK']>>;

/**
 * Validates Microsoft Entra access tokens against the configured authorities (docs/entra-id.md): issuer exactly
 * one of them (and, when that authority's path names a tenant id, `tid` that tenant), `aud` the configured audience, the signature by the published key named in `kid`, `exp` and
 * `nbf` within {@link CLOCK_SKEW_SECONDS}, an algorithm from {@link ACCEPTED_ALGORITHMS}, and `tid` and `oid`
 * present as GUIDs. See https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference.
 *
 * @example
 * const keys = new Map([[authority, new AuthorityKeys({ authority, clock })]]);
 * const validator = createEntraTokenValidator({ authorities: [authority], audience }, keys);
 * const { tenantId, objectId } = await validator.validate(bearer, new Date());
 */
export function createEntraTokenValidator(
  settings: EntraSettings,
  keysByAuthority: ReadonlyMap<string, AuthorityKeys>,
): EntraTokenValidator {
  // Imported keys per published JWK object (a memo, not a cache: it lives as long as AuthorityKeys holds the JWK).
  const imported = new WeakMap<AuthorityJwk, Map<string, Promise<PublicKey>>>();
  const publicKeyFor = async (jwk: AuthorityJwk, alg: string): Promise<PublicKey> => {
    const { importJWK } = await loadJose();
    let byAlg = imported.get(jwk);
    if (!byAlg) imported.set(jwk, (byAlg = new Map<string, Promise<PublicKey>>()));
    let key = byAlg.get(alg);
    if (!key) {
      key = importJWK({ ...jwk }, alg);
      key.catch(() => byAlg.delete(alg));
      byAlg.set(alg, key);
    }
    return key;
  };

  return {
    async validate(token, now) {
      const { decodeProtectedHeader, decodeJwt, jwtVerify } = await loadJose();
      let header: ReturnType<typeof decodeProtectedHeader>;
      let unverified: ReturnType<typeof decodeJwt>;
      try {
        header = decodeProtectedHeader(token);
        unverified = decodeJwt(token);
      } catch {
        throw new EntraTokenRefusal('entra_malformed_token');
      }
      const alg = header.alg;
      if (!isAcceptedAlgorithm(alg)) throw new EntraTokenRefusal('entra_algorithm_not_allowed');
      // Checked before any key lookup: a token from another issuer costs no fetch, and says why it failed.
      const authority = typeof unverified.iss === 'string' ? unverified.iss : undefined;
      const keys = authority === undefined ? undefined : keysByAuthority.get(authority);
      if (authority === undefined || keys === undefined) throw new EntraTokenRefusal('entra_foreign_issuer');
      if (typeof header.kid !== 'string' || header.kid === '') throw new EntraTokenRefusal('entra_unknown_signing_key');

      const jwk = await keys.keyFor(header.kid);
      if (!jwk) throw new EntraTokenRefusal('entra_unknown_signing_key');
      if (jwk.alg !== undefined && jwk.alg !== alg) throw new EntraTokenRefusal('entra_bad_signature');

      let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
      try {
        const key = await publicKeyFor(jwk, alg);
        ({ payload } = await jwtVerify(token, key, {
          issuer: authority,
          audience: settings.audience,
          algorithms: [...ACCEPTED_ALGORITHMS],
          clockTolerance: CLOCK_SKEW_SECONDS,
          currentDate: now,
          requiredClaims: ['exp', 'tid', 'oid'],
        }));
      } catch (error) {
        throw new EntraTokenRefusal(refusalOf(error));
      }
      const { tid, oid } = payload;
      if (typeof tid !== 'string' || !GUID.test(tid) || typeof oid !== 'string' || !GUID.test(oid)) {
        throw new EntraTokenRefusal('entra_no_principal');
      }
      // Entra's signing keys are shared by every tenant: an authority that names its tenant only vouches for it.
      const tenantOfAuthority = tenantNamedBy(authority);
      if (tenantOfAuthority !== undefined && tenantOfAuthority !== tid.toLowerCase()) {
        throw new EntraTokenRefusal('entra_foreign_issuer');
      }
      return { tenantId: tid.toLowerCase(), objectId: oid.toLowerCase() };
    },
  };
}

/** The tenant id an authority's path names (`https://login.microsoftonline.com/<tenant id>/v2.0`), lower-case. */
function tenantNamedBy(authority: string): string | undefined {
  let path: string;
  try {
    path = new URL(authority).pathname;
  } catch {
    return undefined;
  }
  return path
    .split('/')
    .find((segment) => GUID.test(segment))
    ?.toLowerCase();
}

function isAcceptedAlgorithm(alg: unknown): alg is (typeof ACCEPTED_ALGORITHMS)[number] {
  return typeof alg === 'string' && (ACCEPTED_ALGORITHMS as readonly string[]).includes(alg);
}

/** jose's stable error codes, mapped to ours (the message is jose's to change). */
function refusalOf(error: unknown): EntraRefusalReason {
  const { code, claim } = (error ?? {}) as { code?: unknown; claim?: unknown };
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'entra_token_expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'iss') return 'entra_foreign_issuer';
      if (claim === 'aud') return 'entra_wrong_audience';
      if (claim === 'nbf') return 'entra_token_not_yet_valid';
      if (claim === 'tid' || claim === 'oid') return 'entra_no_principal';
      return 'entra_malformed_token';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'entra_algorithm_not_allowed';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWK_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'entra_bad_signature';
    default:
      // A key of the wrong type for the algorithm throws a TypeError from the crypto layer.
      return error instanceof TypeError ? 'entra_bad_signature' : 'entra_malformed_token';
  }
}
