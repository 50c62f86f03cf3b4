import { upstreamFetch } from './upstreamFetch.js';
import { parseKeySecret } from './upstreamSecret.js';
import type { UpstreamClient } from './upstreamClient.js';
import { upstreamUrl } from './upstreamEndpoint.js';
import { UpstreamError } from './upstreamErrors.js';
import { upstreamJwt, type UpstreamToken } from './upstreamToken.js';

/**
 * Fetches a Cognitive Services access token from a real token service (docs/contracts/cognitive-issue-token.md#request, #response):
 * `POST {endpoint}/sts/v1.0/issueToken` with `Ocp-Apim-Subscription-Key` and an empty body, answered by
 * `200` and the bare JWT as text.
 *
 * @example
 * const { token } = await fetchCognitiveToken(client, 'https://westus.api.cognitive.microsoft.com', key, new Date());
 */
export async function fetchCognitiveToken(
  client: UpstreamClient,
  endpoint: string,
  subscriptionKey: string,
  now: Date,
): Promise<UpstreamToken> {
  const url = upstreamUrl(endpoint, '/sts/v1.0/issueToken');
  const answer = await client.send({
    url,
    method: 'POST',
    label: 'issueToken',
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

/** The issueToken flow's upstream fetch: one token per resource key, no request parameters. */
export const cognitiveTokenUpstream = upstreamFetch<'cognitiveToken', undefined>({
  method: 'cognitiveToken',
  takesRequest: false,
  cacheKey: () => [],
  fetch: (client, endpoint, secretName, secret, _request, now) => fetchCognitiveToken(client, endpoint, parseKeySecret(secretName, secret), now),
});
