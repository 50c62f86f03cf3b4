import { upstreamFetch } from './upstreamFetch.js';
import { parseKeySecret } from './upstreamSecret.js';
import type { UpstreamTarget } from './upstreamFetch.js';
import { DOCUMENTED_LIFETIME_SECONDS } from './upstreamLifetimes.js';
import { upstreamUrl } from './upstreamEndpoint.js';
import { UpstreamError } from './upstreamErrors.js';
import { upstreamJwt, type UpstreamToken } from './upstreamToken.js';

/**
 * Fetches a Cognitive Services access token from a real token service (docs/contracts/cognitive-issue-token.md#request, #response):
 * `POST {endpoint}/sts/v1.0/issueToken` with `Ocp-Apim-Subscription-Key` and an empty body, answered by
 * `200` and the bare JWT as text.
 *
 * @example
 * const endpoint = checkUpstreamEndpoint('cognitive', 'https://westus.api.cognitive.microsoft.com');
 * const { token } = await fetchCognitiveToken({ client, endpoint }, key, new Date());
 */
export async function fetchCognitiveToken(
  target: UpstreamTarget,
  subscriptionKey: string,
  now: Date,
): Promise<UpstreamToken> {
  const url = upstreamUrl(target.endpoint, '/sts/v1.0/issueToken');
  const answer = await target.client.send({
    url,
    method: 'POST',
    label: 'issueToken',
    service: 'cognitive',
    admit: target.admit,
    headers: {
      'ocp-apim-subscription-key': subscriptionKey,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/jwt, text/plain',
    },
    body: '',
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
 * The issueToken flow's upstream fetch: the token depends on the resource key alone (no request parameters),
 * so there is one cache entry per key and endpoint, kept at most the documented 10 minutes.
 */
export const cognitiveTokenUpstream = upstreamFetch<'cognitiveToken', undefined>({
  method: 'cognitiveToken',
  takesRequest: false,
  credentialKind: 'cognitiveResource',
  service: 'cognitive',
  cacheKey: () => [],
  maxLifetimeSeconds: () => DOCUMENTED_LIFETIME_SECONDS.cognitive,
  fetch: (target, secretName, secret, _request, now) =>
    fetchCognitiveToken(target, parseKeySecret(secretName, secret), now),
});
