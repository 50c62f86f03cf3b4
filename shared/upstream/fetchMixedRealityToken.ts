import { randomBytes } from 'node:crypto';
import { upstreamFetch } from './upstreamFetch.js';
import { parseMixedRealitySecret } from './upstreamSecret.js';
import type { UpstreamTarget } from './upstreamFetch.js';
import { DOCUMENTED_LIFETIME_SECONDS } from './upstreamLifetimes.js';
import { upstreamUrl } from './upstreamEndpoint.js';
import { UpstreamError } from './upstreamErrors.js';
import { upstreamJwt, type UpstreamToken } from './upstreamToken.js';

/** The real account credentials, as read from the upstream secret (`accountId:accountKey`). */
export interface MixedRealityUpstreamCredentials {
  readonly accountId: string;
  readonly accountKey: string;
}

/** The api-version every SDK sends (docs/contracts/mixed-reality-sts.md#request). */
export const MIXED_REALITY_API_VERSION = '2019-02-28-preview';

/**
 * Fetches a Mixed Reality access token from a real STS (docs/contracts/mixed-reality-sts.md#request, #response):
 * `GET {endpoint}/accounts/{accountId}/token?api-version=2019-02-28-preview` with
 * `Authorization: Bearer {accountId}:{accountKey}`, answered by `200 {"AccessToken":"<JWT>"}`.
 *
 * @example
 * const endpoint = checkUpstreamEndpoint('mixedReality', 'https://sts.eastus2.mixedreality.azure.com');
 * const { token, expiresAt } = await fetchMixedRealityToken({ client, endpoint }, { accountId, accountKey }, new Date());
 */
export async function fetchMixedRealityToken(
  target: UpstreamTarget,
  credentials: MixedRealityUpstreamCredentials,
  now: Date,
): Promise<UpstreamToken> {
  const url = upstreamUrl(target.endpoint, `/accounts/${encodeURIComponent(credentials.accountId)}/token`, {
    'api-version': MIXED_REALITY_API_VERSION,
  });
  const answer = await target.client.send({
    url,
    method: 'GET',
    label: 'mixedRealityToken',
    service: 'mixedReality',
    admit: target.admit,
    headers: {
      authorization: `Bearer ${credentials.accountId}:${credentials.accountKey}`,
      accept: 'application/json',
      // The SDKs' correlation vector: 16 random bytes, base64 without padding.
      'x-mrc-cv': randomBytes(16).toString('base64').slice(0, 22),
    },
  });
  if (answer.status !== 200) {
    // Every SDK treats anything but 200 as an error (docs/contracts/mixed-reality-sts.md#response); so do we.
    throw new UpstreamError('protocol', `upstream answered ${answer.status} instead of 200`, {
      origin: url.origin,
      status: answer.status,
      attempts: answer.attempts,
    });
  }
  let accessToken: unknown;
  try {
    accessToken = (JSON.parse(answer.body) as { AccessToken?: unknown } | null)?.AccessToken;
  } catch {
    accessToken = undefined;
  }
  if (typeof accessToken !== 'string') {
    throw new UpstreamError('protocol', 'upstream answer has no AccessToken', {
      origin: url.origin,
      attempts: answer.attempts,
    });
  }
  return upstreamJwt(accessToken, now, url.origin, answer.attempts);
}

/**
 * The Mixed Reality flow's upstream fetch: the secret holds `accountId:accountKey`; the token depends on the real
 * account alone (no request parameters), one cache entry per key and endpoint, kept at most the documented 24 h.
 */
export const mixedRealityTokenUpstream = upstreamFetch<'mixedRealityToken', undefined>({
  method: 'mixedRealityToken',
  takesRequest: false,
  credentialKind: 'mixedRealityAccount',
  service: 'mixedReality',
  cacheKey: () => [],
  maxLifetimeSeconds: () => DOCUMENTED_LIFETIME_SECONDS.mixedReality,
  fetch: (target, secretName, secret, _request, now) =>
    fetchMixedRealityToken(target, parseMixedRealitySecret(secretName, secret), now),
});
