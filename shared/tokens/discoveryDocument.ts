import type { StsConfig } from '../config.js';
import { flowCatalogue, flowDeclaration, flowNames, type DiscoveredFlow } from '../flowCatalogue.js';
import type { SigningAlgorithm } from './signingKeyMaterial.js';

/** `Cache-Control: max-age` of the discovery document: far shorter than the 24 h rotation overlap. */
export const DISCOVERY_MAX_AGE_SECONDS = 3_600;

/** Every algorithm this STS may sign a JWT with (the key type of the signing key decides which). */
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['ES256', 'RS256'];

/** The discovery document served at `/.well-known/openid-configuration`. */
export type DiscoveryDocument = {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly id_token_signing_alg_values_supported: readonly SigningAlgorithm[];
} & {
  /** Each token flow's endpoint, under the member its declaration names (`shared/flowCatalogue.ts`). */
  readonly [F in DiscoveredFlow as (typeof flowCatalogue)[F]['discovery']['member']]: string;
};

/**
 * Builds the OpenID-Provider-style metadata (OpenID Connect Discovery 1.0 §3) from configuration only,
 * never from the request URL. Only the members that are true of this STS are present: `issuer`, `jwks_uri`
 * and the JWT signing algorithms (under `id_token_signing_alg_values_supported`, the member generic JWT
 * libraries read). The token endpoints (one per flow whose declaration has a discovery entry) use their own
 * names, because none of them is an RFC 6749 token endpoint, so `token_endpoint`, `response_types_supported`
 * and `token_endpoint_auth_methods_supported` are left out rather than misdescribed.
 *
 * @example
 * buildDiscoveryDocument({ issuer: 'https://sts.contoso.com/', wrapIssuer: 'https://ns-sb.contoso.com/' }).jwks_uri;
 * // 'https://sts.contoso.com/.well-known/jwks.json'
 */
export function buildDiscoveryDocument(config: Pick<StsConfig, 'issuer' | 'wrapIssuer'>): DiscoveryDocument {
  const at = (base: string, path: string) => `${withTrailingSlash(base)}${path}`;
  const endpoints: Record<string, string> = {};
  for (const flow of flowNames) {
    const { discovery, route } = flowDeclaration(flow);
    if (discovery) endpoints[discovery.member] = at(config[discovery.base], route);
  }
  return {
    issuer: config.issuer,
    jwks_uri: at(config.issuer, flowCatalogue.jwks.route),
    id_token_signing_alg_values_supported: SIGNING_ALGORITHMS,
    ...endpoints,
  } as DiscoveryDocument;
}

function withTrailingSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
