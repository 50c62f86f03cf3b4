/**
 * Builds the URL of an upstream operation from a checked endpoint (`checkUpstreamEndpoint` in
 * `upstreamHosts.ts`: a documented host, an empty path, or `/WRAPv0.9` for WRAP) and the operation's path.
 *
 * @example
 * upstreamUrl(checkUpstreamEndpoint('cognitive', 'https://westus.api.cognitive.microsoft.com'), '/sts/v1.0/issueToken').href;
 * // 'https://westus.api.cognitive.microsoft.com/sts/v1.0/issueToken'
 */
export function upstreamUrl(endpoint: URL, path: string, query: Readonly<Record<string, string>> = {}): URL {
  const url = new URL(endpoint.origin);
  url.pathname = `${endpoint.pathname.replace(/\/+$/, '')}${path}`;
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
  return url;
}

/**
 * The WRAP token URL for an endpoint that is either the ACS host (`https://{ns}-sb.accesscontrol.windows.net`)
 * or already ends in `/WRAPv0.9` (as in a connection string's `StsEndpoint`). Always posts to `/WRAPv0.9/`,
 * the form every client in docs/contracts/acs-wrap.md#endpoint accepts.
 */
export function wrapUpstreamUrl(endpoint: URL): URL {
  const url = new URL(endpoint.origin);
  const path = endpoint.pathname.replace(/\/+$/, '');
  url.pathname = /\/WRAPv0\.9$/i.test(path) ? `${path}/` : `${path}/WRAPv0.9/`;
  return url;
}
