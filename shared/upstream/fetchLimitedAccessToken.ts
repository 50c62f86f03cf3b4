import { upstreamFetch } from './upstreamFetch.js';
import { parseKeySecret } from './upstreamSecret.js';
import type { UpstreamClient } from './upstreamClient.js';
import { upstreamUrl } from './upstreamEndpoint.js';
import { UpstreamError } from './upstreamErrors.js';
import { upstreamJwt, type UpstreamToken } from './upstreamToken.js';

/** What a limited access token grants (docs/contracts/cognitive-limited-access-token.md#request). */
export interface LimitedAccessTokenRequest {
  /** ARM id of the target Face resource. */
  readonly targetResourceId: string;
  /** e.g. `Face.Identification`. */
  readonly featureFlags: readonly string[];
  /** Requested lifetime, 60..86400 seconds. */
  readonly expiredTimeSeconds: number;
}

/**
 * Fetches a Face limited access token from a real token service (docs/contracts/cognitive-limited-access-token.md#request, #response):
 * `POST {endpoint}/sts/v1.0/issueLimitedAccessToken?expiredTime=N` with `Ocp-Apim-Subscription-Key` (the
 * ISV resource's key) and a JSON body, answered by `200` and the bare JWT.
 *
 * The body names the target both as `targetAzureResourceId` (API reference) and `resourceId` (how-to):
 * the two sources disagree (docs/contracts/open-points.md#face-body-key), and sending both satisfies either reading.
 *
 * @example
 * const lat = await fetchLimitedAccessToken(client, 'https://westus.api.cognitive.microsoft.com', isvKey,
 *   { targetResourceId, featureFlags: ['Face.Identification'], expiredTimeSeconds: 3600 }, new Date());
 */
export async function fetchLimitedAccessToken(
  client: UpstreamClient,
  endpoint: string,
  subscriptionKey: string,
  request: LimitedAccessTokenRequest,
  now: Date,
): Promise<UpstreamToken> {
  const url = upstreamUrl(endpoint, '/sts/v1.0/issueLimitedAccessToken', {
    expiredTime: String(Math.trunc(request.expiredTimeSeconds)),
  });
  const answer = await client.send({
    url,
    method: 'POST',
    label: 'issueLimitedAccessToken',
    headers: {
      'ocp-apim-subscription-key': subscriptionKey,
      'content-type': 'application/json',
      accept: 'application/jwt, text/plain',
    },
    body: JSON.stringify({
      targetAzureResourceId: request.targetResourceId,
      resourceId: request.targetResourceId,
      featureFlags: request.featureFlags,
    }),
  });
  if (answer.status !== 200) {
    throw new UpstreamError('protocol', `upstream answered ${answer.status} instead of 200`, {
      origin: url.origin,
      status: answer.status,
      attempts: answer.attempts,
    });
  }
  return upstreamJwt(answer.body, now, url.origin, answer.attempts);
}

/**
 * The request as it is fetched and cached: `expiredTimeSeconds` rounded down to a whole minute (at least
 * 60) and the feature flags sorted without repeats, so that clients asking for slightly different lifetimes
 * share one token.
 */
function shapedRequest(request: LimitedAccessTokenRequest): LimitedAccessTokenRequest {
  const expiredTimeSeconds = Math.max(60, Math.floor(request.expiredTimeSeconds / 60) * 60);
  const featureFlags = [...new Set(request.featureFlags)].sort();
  return { targetResourceId: request.targetResourceId, featureFlags, expiredTimeSeconds };
}

/** The limited access token flow's upstream fetch: the secret holds the ISV resource key. */
export const limitedAccessTokenUpstream = upstreamFetch<'limitedAccessToken', LimitedAccessTokenRequest>({
  method: 'limitedAccessToken',
  takesRequest: true,
  cacheKey: (request) => {
    const shaped = shapedRequest(request);
    return [shaped.targetResourceId.toLowerCase(), shaped.featureFlags.join(','), String(shaped.expiredTimeSeconds)];
  },
  fetch: (client, endpoint, secretName, secret, request, now) =>
    fetchLimitedAccessToken(client, endpoint, parseKeySecret(secretName, secret), shapedRequest(request), now),
});
