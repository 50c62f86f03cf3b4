import type { UpstreamClient } from './upstreamClient.js';
import type { UpstreamToken } from './upstreamToken.js';

/**
 * How one flow fetches its token from the real Azure STS in upstream mode, registered under the flow's name
 * in `./upstreamFetchers.ts`, where `createUpstreamTokens` looks it up. `R` is what the flow passes besides the
 * credential's upstream source (`undefined` when it passes nothing).
 */
export interface UpstreamFetch<M extends string, R> {
  /** Name of the `UpstreamTokens` method the flow calls, e.g. `cognitiveToken`. */
  readonly method: M;
  /** Whether that method takes a request argument before the call context (true exactly when `R` is not `undefined`). */
  readonly takesRequest: boolean;
  /** What tells two cached tokens of this flow apart, besides the endpoint and the secret's name. */
  readonly cacheKey: (request: R) => readonly string[];
  /**
   * One fetch with the real key: `secret` is the value of the secret named `secretName` (parse it here and
   * reject a malformed one with a `configuration` `UpstreamError` that never quotes it).
   */
  readonly fetch: (
    client: UpstreamClient,
    endpoint: string,
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
 *   method: 'cognitiveToken', takesRequest: false, cacheKey: () => [],
 *   fetch: (client, endpoint, secretName, secret, _request, now) =>
 *     fetchCognitiveToken(client, endpoint, parseKeySecret(secretName, secret), now),
 * });
 */
export function upstreamFetch<M extends string, R>(
  declaration: UpstreamFetch<M, R> & { readonly takesRequest: [R] extends [undefined] ? false : true },
): UpstreamFetch<M, R> {
  return declaration;
}
