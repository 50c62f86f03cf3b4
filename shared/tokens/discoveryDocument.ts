import type { StsConfig } from '../config.js';
import type { SigningAlgorithm } from './signingKeyMaterial.js';

/** `Cache-Control: max-age` of the discovery document: far shorter than the 24 h rotation overlap. */
export const DISCOVERY_MAX_AGE_SECONDS = 3_600;

/** Every algorithm this STS may sign a JWT with (the key type of the signing key decides which). */
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['ES256', 'RS256'];

/** Paths of the documents and flows, relative to the issuer (host.json `routePrefix` is empty). */
export const stsPaths = {
  discovery: '.well-known/openid-configuration',
  jwks: '.well-known/jwks.json',
  mixedRealityToken: 'accounts/{accountId}/token',
  issueToken: 'sts/v1.0/issueToken',
  issueLimitedAccessToken: 'sts/v1.0/issueLimitedAccessToken',
  wrapToken: 'WRAPv0.9',
} as const;

/** The discovery document served at `/.well-known/openid-configuration`. */
export interface DiscoveryDocument {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly id_token_signing_alg_values_supported: readonly SigningAlgorithm[];
  /** Mixed Reality STS, `GET` (contracts.md §2); `{accountId}` is the account GUID. */
  readonly mixed_reality_token_endpoint: string;
  /** Cognitive Services `POST` issueToken (contracts.md §3). */
  readonly cognitive_services_token_endpoint: string;
  /** Face limited access token `POST` (contracts.md §4). */
  readonly limited_access_token_endpoint: string;
  /** ACS OAuth WRAP v0.9 `POST` (contracts.md §5); on the configured WRAP host. Its SWTs are not JWTs. */
  readonly wrap_token_endpoint: string;
}

/**
 * Builds the OpenID-Provider-style metadata (OpenID Connect Discovery 1.0 §3) from configuration only,
 * never from the request URL. Only the members that are true of this STS are present: `issuer`, `jwks_uri`
 * and the JWT signing algorithms (under `id_token_signing_alg_values_supported`, the member generic JWT
 * libraries read). The four token endpoints use their own names, because none of them is an RFC 6749
 * token endpoint, so `token_endpoint`, `response_types_supported` and `token_endpoint_auth_methods_supported`
 * are left out rather than misdescribed.
 *
 * @example
 * buildDiscoveryDocument({ issuer: 'https://sts.contoso.com/', wrapIssuer: 'https://ns-sb.contoso.com/' }).jwks_uri;
 * // 'https://sts.contoso.com/.well-known/jwks.json'
 */
export function buildDiscoveryDocument(config: Pick<StsConfig, 'issuer' | 'wrapIssuer'>): DiscoveryDocument {
  const at = (base: string, path: string) => `${withTrailingSlash(base)}${path}`;
  return {
    issuer: config.issuer,
    jwks_uri: at(config.issuer, stsPaths.jwks),
    id_token_signing_alg_values_supported: SIGNING_ALGORITHMS,
    mixed_reality_token_endpoint: at(config.issuer, stsPaths.mixedRealityToken),
    cognitive_services_token_endpoint: at(config.issuer, stsPaths.issueToken),
    limited_access_token_endpoint: at(config.issuer, stsPaths.issueLimitedAccessToken),
    wrap_token_endpoint: at(config.wrapIssuer, stsPaths.wrapToken),
  };
}

function withTrailingSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
