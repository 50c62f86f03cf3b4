import { UpstreamError } from './upstreamErrors.js';

/**
 * Builds the URL of an upstream operation from a record's `upstream.endpoint` (a base URL such as
 * `https://sts.mixedreality.azure.com` or `https://westus.api.cognitive.microsoft.com`, optionally with a
 * base path) and the operation's path. The endpoint must be plain `https:` with no user info, query or
 * fragment; anything else is a `configuration` failure.
 *
 * @example
 * upstreamUrl('https://westus.api.cognitive.microsoft.com/', '/sts/v1.0/issueToken').href;
 * // 'https://westus.api.cognitive.microsoft.com/sts/v1.0/issueToken'
 */
export function upstreamUrl(endpoint: string, path: string, query: Readonly<Record<string, string>> = {}): URL {
  const base = parseEndpoint(endpoint);
  const url = new URL(base.href);
  url.pathname = `${base.pathname.replace(/\/+$/, '')}${path}`;
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
  return url;
}

/**
 * The WRAP token URL for an endpoint that is either the ACS host (`https://{ns}-sb.accesscontrol.windows.net`)
 * or already ends in `/WRAPv0.9` (as in a connection string's `StsEndpoint`). Always posts to `/WRAPv0.9/`,
 * the form every client in docs/contracts/acs-wrap.md#endpoint accepts.
 */
export function wrapUpstreamUrl(endpoint: string): URL {
  const base = parseEndpoint(endpoint);
  const url = new URL(base.href);
  const path = base.pathname.replace(/\/+$/, '');
  url.pathname = /\/WRAPv0\.9$/i.test(path) ? `${path}/` : `${path}/WRAPv0.9/`;
  return url;
}

function parseEndpoint(endpoint: string): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new UpstreamError('configuration', 'upstream endpoint is not an absolute URL');
  }
  if (url.protocol !== 'https:') throw new UpstreamError('configuration', 'upstream endpoint must use https', { origin: url.origin });
  if (url.username || url.password || url.search || url.hash) {
    throw new UpstreamError('configuration', 'upstream endpoint must not carry user info, a query or a fragment', {
      origin: url.origin,
    });
  }
  return url;
}
