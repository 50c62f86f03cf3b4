import { upstreamFetch } from './upstreamFetch.js';
import { parseKeySecret } from './upstreamSecret.js';
import type { UpstreamClient } from './upstreamClient.js';
import { wrapUpstreamUrl } from './upstreamEndpoint.js';
import { UpstreamError } from './upstreamErrors.js';
import type { UpstreamToken } from './upstreamToken.js';

/** A WRAP token request (docs/contracts/acs-wrap.md#request). */
export interface WrapTokenRequest {
  /** `wrap_name`: the issuer name at the upstream. */
  readonly issuerName: string;
  /** `wrap_scope`: the relying-party URI, passed as the client sent it. */
  readonly scope: string;
}

/**
 * Fetches an SWT from a real ACS WRAP v0.9 endpoint (docs/contracts/acs-wrap.md#request, #response): `POST {endpoint}/WRAPv0.9/`
 * with the form `wrap_name`, `wrap_password`, `wrap_scope`, answered by `200` and the form
 * `wrap_access_token=<SWT>&wrap_access_token_expires_in=<seconds>`. Returns the SWT single-encoded (as a
 * client puts it in `Authorization: WRAP access_token="..."`), expiring `expires_in` seconds after `now`.
 *
 * @example
 * const swt = await fetchWrapToken(client, 'https://contoso-sb.accesscontrol.windows.net', password,
 *   { issuerName: 'owner', scope: 'http://contoso.servicebus.windows.net/' }, new Date());
 */
export async function fetchWrapToken(
  client: UpstreamClient,
  endpoint: string,
  password: string,
  request: WrapTokenRequest,
  now: Date,
): Promise<UpstreamToken> {
  const url = wrapUpstreamUrl(endpoint);
  const form = new URLSearchParams({ wrap_name: request.issuerName, wrap_password: password, wrap_scope: request.scope });
  const answer = await client.send({
    url,
    method: 'POST',
    label: 'wrapToken',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/x-www-form-urlencoded',
    },
    body: form.toString(),
  });
  const fail = (message: string): never => {
    throw new UpstreamError('protocol', message, { origin: url.origin, status: answer.status, attempts: answer.attempts });
  };
  // PHP and TFS accept exactly 200 (docs/contracts/acs-wrap.md#client-behaviours); a 201 would be re-served as a 200 anyway, so it is tolerated.
  if (answer.status !== 200 && answer.status !== 201) fail(`upstream answered ${answer.status} instead of 200`);
  const fields = new URLSearchParams(answer.body.trim());
  const token = fields.get('wrap_access_token');
  const expiresIn = fields.get('wrap_access_token_expires_in');
  if (!token || !/^[\x21-\x7e]+$/.test(token) || !/\bExpiresOn=\d+/.test(token)) {
    fail('upstream answer has no usable wrap_access_token');
  }
  if (!expiresIn || !/^\d{1,9}$/.test(expiresIn) || Number(expiresIn) < 1) {
    fail('upstream answer has no usable wrap_access_token_expires_in');
  }
  return {
    token: token as string,
    expiresAt: new Date(now.getTime() + Number(expiresIn) * 1000),
    attempts: answer.attempts,
  };
}

/** The WRAP flow's upstream fetch: the secret holds the issuer password; one token per issuer and scope. */
export const wrapTokenUpstream = upstreamFetch<'wrapToken', WrapTokenRequest>({
  method: 'wrapToken',
  takesRequest: true,
  cacheKey: (request) => [request.issuerName, request.scope],
  fetch: (client, endpoint, secretName, secret, request, now) => fetchWrapToken(client, endpoint, parseKeySecret(secretName, secret), request, now),
});
