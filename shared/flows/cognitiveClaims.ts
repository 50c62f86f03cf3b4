import type { StsConfig } from '../config.js';
import type { CognitiveResource } from '../credentials/records.js';

const SUBSCRIPTION_IN_RESOURCE_ID =
  /^\/subscriptions\/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\//;

/**
 * The `scope` claim by resource kind. Only the Translator value is observed (docs/contracts/cognitive-issue-token.md#response); the Speech
 * value is the one inferred there, and other kinds get the generic Cognitive Services API host.
 */
const SCOPE_BY_KIND: Readonly<Record<string, string>> = {
  speechservices: 'speechservices',
  texttranslation: 'https://api.microsofttranslator.com/',
};
const DEFAULT_SCOPE = 'https://api.cognitive.microsoft.com/';

/**
 * The claims a Cognitive Services token carries about the resource whose key was presented
 * (docs/contracts/cognitive-issue-token.md#response): `region`, `subscription-id` (the resource id's subscription GUID as 32 hex digits, no dashes),
 * `product-id`, `azure-resource-id` and `scope`. `cognitive-services-endpoint` is left out: it names
 * Microsoft's internal endpoint, which no client reads and this STS cannot speak for. `iss`, `aud`, `exp`
 * (and `iat`, `nbf`, `jti`) are added by the JWT issuer.
 *
 * @example
 * cognitiveResourceClaims(resource)['subscription-id']; // '6f65…ee' (32 hex)
 */
export function cognitiveResourceClaims(resource: CognitiveResource): Readonly<Record<string, string>> {
  let claims = claimsByResource.get(resource);
  if (!claims) {
    claims = Object.freeze(resourceClaims(resource));
    claimsByResource.set(resource, claims);
  }
  return claims;
}

/**
 * Derived once per record: the credential directory hands out the same record object until its secret
 * changes, so a warm resource's claims are not worked out again on every token.
 */
const claimsByResource = new WeakMap<CognitiveResource, Readonly<Record<string, string>>>();

function resourceClaims(resource: CognitiveResource): Record<string, string> {
  const subscription = SUBSCRIPTION_IN_RESOURCE_ID.exec(resource.resourceId)?.[1];
  return {
    region: resource.region,
    ...(subscription ? { 'subscription-id': subscription.replaceAll('-', '').toLowerCase() } : {}),
    'product-id': resource.productId,
    'azure-resource-id': resource.resourceId,
    scope: SCOPE_BY_KIND[resource.resourceKind.toLowerCase()] ?? DEFAULT_SCOPE,
  };
}

/** `aud` of a Cognitive Services token: the configured audience with `{region}` replaced (docs/contracts/cognitive-issue-token.md#response). */
export function cognitiveAudience(config: Pick<StsConfig, 'cognitiveAudience'>, region: string): string {
  return config.cognitiveAudience.replaceAll('{region}', region);
}
