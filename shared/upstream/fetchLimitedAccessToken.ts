import { upstreamFetch } from './upstreamFetch.js';
import { parseKeySecret } from './upstreamSecret.js';
import type { UpstreamTarget } from './upstreamFetch.js';
import { limitedAccessLifetime } from './upstreamLifetimes.js';
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
 * const endpoint = checkUpstreamEndpoint('cognitive', 'https://westus.api.cognitive.microsoft.com');
 * const lat = await fetchLimitedAccessToken({ client, endpoint }, isvKey,
 *   { targetResourceId, featureFlags: ['Face.Identification'], expiredTimeSeconds: 3600 }, new Date());
 */
export async function fetchLimitedAccessToken(
  target: UpstreamTarget,
  subscriptionKey: string,
  request: LimitedAccessTokenRequest,
  now: Date,
): Promise<UpstreamToken> {
  const url = upstreamUrl(target.endpoint, '/sts/v1.0/issueLimitedAccessToken', {
    expiredTime: String(Math.trunc(request.expiredTimeSeconds)),
  });
  const answer = await target.client.send({
    url,
    method: 'POST',
    label: 'issueLimitedAccessToken',
    service: 'cognitive',
    admit: target.admit,
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
 * The request as it is fetched, reduced to what the real token depends on: the target, the granted flags
 * (sorted, without repeats; a subset of the resource's grant list) and the lifetime rounded down to one of nine
 * values ({@link limitedAccessLifetime}). The cache key lower-cases the target (ARM ids are case-insensitive),
 * while the target is sent as the client wrote it. A client may vary the target freely, so the real key's call
 * budget, not this key, is what bounds its upstream calls.
 */
export function shapedLimitedAccessRequest(request: LimitedAccessTokenRequest): LimitedAccessTokenRequest {
  return {
    targetResourceId: request.targetResourceId,
    featureFlags: [...new Set(request.featureFlags)].sort(),
    expiredTimeSeconds: limitedAccessLifetime(request.expiredTimeSeconds),
  };
}

/** The limited access token flow's upstream fetch: the secret holds the ISV resource key. */
export const limitedAccessTokenUpstream = upstreamFetch<'limitedAccessToken', LimitedAccessTokenRequest>({
  method: 'limitedAccessToken',
  takesRequest: true,
  credentialKind: 'cognitiveResource',
  service: 'cognitive',
  cacheKey: (request) => {
    const shaped = shapedLimitedAccessRequest(request);
    return [shaped.targetResourceId.toLowerCase(), shaped.featureFlags.join(','), String(shaped.expiredTimeSeconds)];
  },
  // The service issues `exp = now + expiredTime`: the lifetime asked is the documented one.
  maxLifetimeSeconds: (request) => shapedLimitedAccessRequest(request).expiredTimeSeconds,
  fetch: (target, secretName, secret, request, now) =>
    fetchLimitedAccessToken(target, parseKeySecret(secretName, secret), shapedLimitedAccessRequest(request), now),
});
