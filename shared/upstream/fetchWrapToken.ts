import { upstreamFetch } from './upstreamFetch.js';
import { parseKeySecret } from './upstreamSecret.js';
import type { UpstreamTarget } from './upstreamFetch.js';
import { DOCUMENTED_LIFETIME_SECONDS } from './upstreamLifetimes.js';
import { wrapUpstreamUrl } from './upstreamEndpoint.js';
import { UpstreamError } from './upstreamErrors.js';
import type { UpstreamToken } from './upstreamToken.js';

/** A WRAP token request (docs/contracts/acs-wrap.md#request). */
export interface WrapTokenRequest {
  /** `wrap_name`: the issuer name at the upstream. */
  readonly issuerName: string;
  /**
   * `wrap_scope`: the relying-party URI. The WRAP flow passes the issuer's scope prefix that covers the
   * client's scope, not the client's own, so the real token depends on what our policy granted, not on what a
   * client can vary (a Service Bus audience covers every entity below it, docs/upstream.md#caching).
   */
  readonly scope: string;
}

/**
 * Fetches an SWT from a real ACS WRAP v0.9 endpoint (docs/contracts/acs-wrap.md#request, #response): `POST {endpoint}/WRAPv0.9/`
 * with the form `wrap_name`, `wrap_password`, `wrap_scope`, answered by `200` and the form
 * `wrap_access_token=<SWT>&wrap_access_token_expires_in=<seconds>`. Returns the SWT single-encoded (as a
 * client puts it in `Authorization: WRAP access_token="..."`), expiring at the SWT's own `ExpiresOn` or
 * `expires_in` seconds after `now`, whichever is earlier: the token's own expiry wins over the envelope's.
 *
 * @example
 * const endpoint = checkUpstreamEndpoint('acsWrap', 'https://contoso-sb.accesscontrol.windows.net');
 * const swt = await fetchWrapToken({ client, endpoint }, password,
 *   { issuerName: 'owner', scope: 'http://contoso.servicebus.windows.net/' }, new Date());
 */
export async function fetchWrapToken(
  target: UpstreamTarget,
  password: string,
  request: WrapTokenRequest,
  now: Date,
): Promise<UpstreamToken> {
  const url = wrapUpstreamUrl(target.endpoint);
  const form = new URLSearchParams({
    wrap_name: request.issuerName,
    wrap_password: password,
    wrap_scope: request.scope,
  });
  const answer = await target.client.send({
    url,
    method: 'POST',
    label: 'wrapToken',
    service: 'acsWrap',
    admit: target.admit,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/x-www-form-urlencoded',
    },
    body: form.toString(),
  });
  const fail = (message: string): never => {
    throw new UpstreamError('protocol', message, {
      origin: url.origin,
      status: answer.status,
      attempts: answer.attempts,
    });
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
  const expiresOn = swtExpiresOn(token as string);
  if (expiresOn === undefined) fail('upstream SWT has no readable ExpiresOn');
  const envelopeMs = now.getTime() + Number(expiresIn) * 1000;
  const expiresAt = new Date(Math.min(envelopeMs, (expiresOn as number) * 1000));
  if (expiresAt.getTime() <= now.getTime()) fail('upstream SWT is already expired');
  return { token: token as string, expiresAt, attempts: answer.attempts };
}

/** The `ExpiresOn` of a single-encoded SWT (seconds since the epoch), or undefined when absent or repeated. */
export function swtExpiresOn(token: string): number | undefined {
  const values = new URLSearchParams(token).getAll('ExpiresOn');
  const [value] = values;
  if (values.length !== 1 || value === undefined || !/^\d{1,12}$/.test(value)) return undefined;
  return Number(value);
}

/**
 * The WRAP flow's upstream fetch: the secret holds the issuer password; one token per issuer and granted scope
 * prefix (lower-cased, without query or fragment), kept at most the documented 3 h.
 */
export const wrapTokenUpstream = upstreamFetch<'wrapToken', WrapTokenRequest>({
  method: 'wrapToken',
  takesRequest: true,
  credentialKind: 'wrapIssuer',
  service: 'acsWrap',
  cacheKey: (request) => [request.issuerName, request.scope.replace(/[?#].*$/s, '').toLowerCase()],
  maxLifetimeSeconds: () => DOCUMENTED_LIFETIME_SECONDS.acsWrap,
  fetch: (target, secretName, secret, request, now) =>
    fetchWrapToken(target, parseKeySecret(secretName, secret), request, now),
});
