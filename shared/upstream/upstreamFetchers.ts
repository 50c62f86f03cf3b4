import type { UpstreamFlow } from '../flowCatalogue.js';
import { cognitiveTokenUpstream } from './fetchCognitiveToken.js';
import { limitedAccessTokenUpstream } from './fetchLimitedAccessToken.js';
import { mixedRealityTokenUpstream } from './fetchMixedRealityToken.js';
import { wrapTokenUpstream } from './fetchWrapToken.js';
import type { UpstreamFetch } from './upstreamFetch.js';

/**
 * How each flow that the catalogue marks `upstream: true` fetches its token from the real Azure STS, by flow
 * name. The catalogue stays data (it names no fetcher); the type below makes a missing or extra entry a
 * compile error, so a new upstream flow adds its fetcher module and one line here.
 */
export const upstreamFetchers = {
  mixedRealityToken: mixedRealityTokenUpstream,
  issueToken: cognitiveTokenUpstream,
  issueLimitedAccessToken: limitedAccessTokenUpstream,
  wrapToken: wrapTokenUpstream,
} as const satisfies { readonly [F in UpstreamFlow]: UpstreamFetch<string, never> };

export type UpstreamFetchers = typeof upstreamFetchers;
