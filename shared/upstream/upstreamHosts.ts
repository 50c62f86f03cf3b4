import type { UpstreamCredentialKind } from './upstreamSecret.js';
import { UpstreamError } from './upstreamErrors.js';

/**
 * Where a real key may be sent (docs/upstream.md#hosts): each upstream service by its documented host names, in
 * the public cloud and in the sovereign clouds that offer it, named one by one. An endpoint is parsed once with
 * the WHATWG URL parser (`new URL`) and must be plain `https:` with a DNS host name, no user info, port, IP
 * literal, query, fragment or backslash. The CLI checks it before storing it and the token source again before
 * every call.
 */

/** The real services a key can be exchanged at, one per credential kind. */
export type UpstreamService = 'mixedReality' | 'cognitive' | 'acsWrap';

/** The service a credential kind's real key belongs to: an ACS host is never right for a Cognitive key. */
export function upstreamServiceOf(kind: UpstreamCredentialKind): UpstreamService {
  if (kind === 'mixedRealityAccount') return 'mixedReality';
  if (kind === 'cognitiveResource') return 'cognitive';
  return 'acsWrap';
}

/**
 * Decides whether a parsed, structurally checked endpoint may receive a real key for `service`. Production
 * uses {@link azureHostPolicy}; tests inject their own to reach a loopback stand-in. There is no setting that
 * swaps it: only code that constructs the token source or calls provisioning directly can pass another.
 */
export interface UpstreamHostPolicy {
  allows(service: UpstreamService, url: URL): boolean;
  /** A short description for error messages, e.g. the documented host patterns. */
  describe(service: UpstreamService): string;
  /** Only a test policy for a loopback stand-in sets this; production never reaches an IP literal. */
  readonly allowsIpLiterals?: boolean;
}

/** One DNS label as Azure names resources: letters, digits and inner hyphens, at most 63 characters. */
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';

/**
 * The documented host names per service. Sources (public):
 * - Mixed Reality STS `https://sts.<accountDomain>`, account domains `<region>.mixedreality.azure.com` and the
 *   legacy `mixedreality.azure.com`: https://learn.microsoft.com/azure/remote-rendering/how-tos/authentication
 *   and https://learn.microsoft.com/cpp/api/remote-rendering/sessionconfiguration (public cloud only).
 * - Cognitive Services regional `<region>.api.cognitive.microsoft.com` and custom subdomains
 *   `<name>.cognitiveservices.azure.com`: https://learn.microsoft.com/azure/ai-services/cognitive-services-custom-subdomains;
 *   Azure Government `<region>.api.cognitive.microsoft.us` / `<name>.cognitiveservices.azure.us` and Azure
 *   operated by 21Vianet `<region>.api.cognitive.azure.cn` / `<name>.cognitiveservices.azure.cn`:
 *   https://learn.microsoft.com/azure/ai-services/speech-service/sovereign-clouds.
 * - ACS (Service Bus) `https://<namespace>-sb.accesscontrol.windows.net/WRAPv0.9`:
 *   https://learn.microsoft.com/rest/api/servicebus/request-a-token-from-acs; 21Vianet
 *   `*.accesscontrol.chinacloudapi.cn`: https://learn.microsoft.com/azure/china/resources-developer-guide.
 */
export const documentedUpstreamHosts: Readonly<Record<UpstreamService, readonly string[]>> = {
  mixedReality: ['sts.mixedreality.azure.com', 'sts.<region>.mixedreality.azure.com'],
  cognitive: [
    '<region>.api.cognitive.microsoft.com',
    '<name>.cognitiveservices.azure.com',
    '<region>.api.cognitive.microsoft.us',
    '<name>.cognitiveservices.azure.us',
    '<region>.api.cognitive.azure.cn',
    '<name>.cognitiveservices.azure.cn',
  ],
  acsWrap: ['<namespace>-sb.accesscontrol.windows.net', '<namespace>-sb.accesscontrol.chinacloudapi.cn'],
};

const HOST_PATTERNS: Readonly<Record<UpstreamService, readonly RegExp[]>> = {
  mixedReality: [new RegExp(`^sts\\.(?:${LABEL}\\.)?mixedreality\\.azure\\.com$`)],
  cognitive: [
    new RegExp(`^${LABEL}\\.api\\.cognitive\\.microsoft\\.(?:com|us)$`),
    new RegExp(`^${LABEL}\\.api\\.cognitive\\.azure\\.cn$`),
    new RegExp(`^${LABEL}\\.cognitiveservices\\.azure\\.(?:com|us|cn)$`),
  ],
  acsWrap: [new RegExp(`^${LABEL}-sb\\.accesscontrol\\.(?:windows\\.net|chinacloudapi\\.cn)$`)],
};

/**
 * The production policy: the host is one of {@link documentedUpstreamHosts} for the service, on the default
 * https port (no port written).
 *
 * @example
 * azureHostPolicy.allows('cognitive', new URL('https://westus.api.cognitive.microsoft.com')); // true
 * azureHostPolicy.allows('cognitive', new URL('https://contoso-sb.accesscontrol.windows.net')); // false
 */
export const azureHostPolicy: UpstreamHostPolicy = {
  allows: (service, url) => url.port === '' && HOST_PATTERNS[service].some((pattern) => pattern.test(url.hostname)),
  describe: (service) => documentedUpstreamHosts[service].map((host) => `https://${host}`).join(', '),
};

/** Longest endpoint accepted (real ones are under 100 characters). */
const MAX_ENDPOINT_LENGTH = 512;

/**
 * Parses and checks an upstream endpoint for `service`: the structural rules every policy shares, then the
 * host policy. Returns the URL to build requests from (its path is empty, or `/WRAPv0.9` for WRAP); throws a
 * `configuration` {@link UpstreamError} naming the rule that failed (never the whole value back when it may be
 * a URL with a password in it).
 *
 * @example
 * checkUpstreamEndpoint('cognitive', 'https://westus.api.cognitive.microsoft.com').origin;
 * // 'https://westus.api.cognitive.microsoft.com'
 */
export function checkUpstreamEndpoint(
  service: UpstreamService,
  endpoint: string,
  policy: UpstreamHostPolicy = azureHostPolicy,
): URL {
  const refuse = (why: string): never => {
    throw new UpstreamError('configuration', `upstream endpoint refused: ${why}`);
  };
  if (endpoint.length === 0 || endpoint.length > MAX_ENDPOINT_LENGTH) refuse('empty or too long');
  // The URL parser silently turns `\` into `/` and drops tabs, newlines and outer spaces: such a value means
  // something else to a person reading it than to the parser, so it is refused rather than normalised.
  if (!/^[\x21-\x7e]+$/.test(endpoint)) refuse('it contains spaces, control or non-ASCII characters');
  if (endpoint.includes('\\')) refuse('it contains a backslash');
  if (endpoint.includes('@')) refuse('it contains user info');
  if (endpoint.includes('?') || endpoint.includes('#')) refuse('it has a query or fragment');
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return refuse('not an absolute URL');
  }
  const path = url.pathname.replace(/\/+$/, '');
  const pathAllowed = path === '' || (service === 'acsWrap' && /^\/WRAPv0\.9$/i.test(path));
  if (!pathAllowed) refuse(service === 'acsWrap' ? 'the path must be empty or /WRAPv0.9' : 'the path must be empty');
  assertUpstreamUrl(service, url, policy);
  return url;
}

/**
 * The checks on a request URL just before it is sent (the upstream client runs them on every attempt's URL):
 * https, no user info, a DNS host name rather than an IP literal, and allowed by `policy` for `service`.
 */
export function assertUpstreamUrl(
  service: UpstreamService,
  url: URL,
  policy: UpstreamHostPolicy = azureHostPolicy,
): void {
  const refuse = (why: string): never => {
    throw new UpstreamError('configuration', `upstream endpoint refused: ${why}`);
  };
  if (url.protocol !== 'https:') refuse('it must use https');
  if (url.username !== '' || url.password !== '') refuse('it contains user info');
  if (url.hostname.endsWith('.')) refuse('the host ends in a dot');
  if (isIpLiteral(url.hostname) && !policy.allowsIpLiterals)
    refuse('the host is an IP address, not a service host name');
  if (!policy.allows(service, url))
    refuse(`the host is not a documented host of the service (${policy.describe(service)})`);
}

/** `a.b.c.d` (the parser has already turned `0x7f000001` and friends into this) or `[…]` (IPv6). */
function isIpLiteral(hostname: string): boolean {
  return hostname.startsWith('[') || /^\d{1,3}(?:\.\d{1,3}){3}$/.test(hostname);
}
