import type { UpstreamClient } from './upstreamClient.js';
import type { UpstreamService } from './upstreamHosts.js';
import type { UpstreamCredentialKind } from './upstreamSecret.js';
import type { UpstreamToken } from './upstreamToken.js';

/** Where one fetch goes: the client, the endpoint (already checked for the flow's service) and the call budget. */
export interface UpstreamTarget {
  readonly client: UpstreamClient;
  /** The result of `checkUpstreamEndpoint` for the flow's service. */
  readonly endpoint: URL;
  /** The real key's call budget, asked before every HTTP request (absent: unbounded, direct tests only). */
  readonly admit?: () => boolean;
}

/**
 * How one flow fetches its token from the real Azure STS in upstream mode: the part of a flow's declaration
 * (`shared/flowCatalogue.ts`) that `createUpstreamTokens` reads. `R` is what the flow passes besides the
 * credential's upstream source (`undefined` when it passes nothing).
 */
export interface UpstreamFetch<M extends string, R> {
  /** Name of the `UpstreamTokens` method the flow calls, e.g. `cognitiveToken`. */
  readonly method: M;
  /** Whether that method takes a request argument before the call context (true exactly when `R` is not `undefined`). */
  readonly takesRequest: boolean;
  /** The credential kind whose real keys this flow sends (the secret's name prefix and `kind` tag must say so). */
  readonly credentialKind: UpstreamCredentialKind;
  /** The service whose documented hosts the endpoint must belong to. */
  readonly service: UpstreamService;
  /**
   * What tells two cached tokens of this flow apart, besides the endpoint and the secret's name: exactly the
   * request fields the upstream token depends on, normalised, so clients cannot multiply entries by varying
   * anything else (docs/upstream.md#caching).
   */
  readonly cacheKey: (request: R) => readonly string[];
  /** The longest a token may be cached: the service's documented lifetime (docs/upstream.md#lifetimes). */
  readonly maxLifetimeSeconds: (request: R) => number;
  /**
   * One fetch with the real key: `secret` is the value of the secret named `secretName` (parse it here and
   * reject a malformed one with a `configuration` `UpstreamError` that never quotes it).
   */
  readonly fetch: (
    target: UpstreamTarget,
    secretName: string,
    secret: string,
    request: R,
    now: Date,
  ) => Promise<UpstreamToken>;
}

/**
 * Declares a flow's upstream fetch, keeping the method name's literal type (so `UpstreamTokens` gets a
 * method of that name) and the request type.
 *
 * @example
 * export const cognitiveTokenUpstream = upstreamFetch<'cognitiveToken', undefined>({
 *   method: 'cognitiveToken', takesRequest: false, credentialKind: 'cognitiveResource', service: 'cognitive',
 *   cacheKey: () => [], maxLifetimeSeconds: () => 600,
 *   fetch: (target, secretName, secret, _request, now) => fetchCognitiveToken(target, parseKeySecret(secretName, secret), now),
 * });
 */
export function upstreamFetch<M extends string, R>(
  declaration: UpstreamFetch<M, R> & { readonly takesRequest: [R] extends [undefined] ? false : true },
): UpstreamFetch<M, R> {
  return declaration;
}
