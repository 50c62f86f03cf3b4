import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import type { FlowName } from '../flowCatalogue.js';

/**
 * Cross-origin calls from web pages (docs/cors.md): which origins may read this STS's answers, and what a
 * preflight is told. Nothing is allowed by default; `*` allows every origin and never goes with credentials
 * (this STS never sends `Access-Control-Allow-Credentials`: no flow uses cookies or client certificates).
 */
export interface CorsSettings {
  /** Serialized origins (`https://app.contoso.com`, `http://127.0.0.1:5173`), exactly as browsers send them. */
  readonly allowedOrigins: readonly string[];
  /** True when the list is `*`: every origin, answered with `Access-Control-Allow-Origin: *`. */
  readonly anyOrigin: boolean;
  /** `Access-Control-Max-Age` of a preflight answer (browsers cap it: Chromium at 7200 s). */
  readonly maxAgeSeconds: number;
}

export const CORS_OFF: CorsSettings = { allowedOrigins: [], anyOrigin: false, maxAgeSeconds: 600 };

/**
 * The request headers a page may send to each function, beyond the CORS-safelisted ones. Declared per function
 * so a new flow cannot be added without deciding (the type requires every function name).
 */
const ALLOWED_REQUEST_HEADERS: Readonly<Record<FlowName, readonly string[]>> = {
  mixedRealityToken: [
    'Authorization',
    'Content-Type',
    'X-MRC-CV',
    'x-ms-client-request-id',
    'x-ms-return-client-request-id',
  ],
  issueToken: ['Ocp-Apim-Subscription-Key', 'Authorization', 'Content-Type', 'x-ms-client-request-id'],
  issueLimitedAccessToken: ['Ocp-Apim-Subscription-Key', 'Authorization', 'Content-Type', 'x-ms-client-request-id'],
  wrapToken: ['Content-Type'],
  openidConfiguration: [],
  jwks: [],
};

/**
 * Response headers a page may read besides the safelisted ones: every flow's correlation header, and the
 * headers that carry an error's reason (Mixed Reality's `WWW-Authenticate`) or when to retry.
 */
const EXPOSED_HEADERS = 'MS-CV, apim-request-id, request-id, x-ms-request-id, WWW-Authenticate, Retry-After';

/**
 * Parses `STS_CORS_ALLOWED_ORIGINS`: origins separated by commas or white space, each `http(s)://host[:port]`
 * with nothing after it (a trailing `/` is tolerated), or `*` alone. Problems are pushed with the setting's name.
 *
 * @example
 * parseAllowedOrigins('https://app.contoso.com, http://127.0.0.1:5173', problems);
 */
export function parseAllowedOrigins(
  raw: string | undefined,
  problems: string[],
): Pick<CorsSettings, 'allowedOrigins' | 'anyOrigin'> {
  const entries = (raw ?? '').split(/[\s,]+/).filter((entry) => entry !== '');
  if (entries.includes('*')) {
    if (entries.length > 1) problems.push('STS_CORS_ALLOWED_ORIGINS: "*" allows every origin and must stand alone');
    return { allowedOrigins: [], anyOrigin: true };
  }
  const origins: string[] = [];
  for (const entry of entries) {
    const origin = originOf(entry);
    if (origin === undefined) {
      problems.push(
        `STS_CORS_ALLOWED_ORIGINS: "${entry}" is not an origin (scheme://host[:port], http or https, no path)`,
      );
    } else if (!origins.includes(origin)) {
      origins.push(origin);
    }
  }
  return { allowedOrigins: origins, anyOrigin: false };
}

/** The origin `entry` stands for, serialized as a browser sends it; undefined when it is anything more or less. */
function originOf(entry: string): string | undefined {
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username || url.password || url.search || url.hash || url.pathname !== '/') return undefined;
  if (entry.includes('*')) return undefined;
  return url.origin;
}

/** True for a CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`. */
export function isPreflight(request: HttpRequest): boolean {
  const { method, headers } = request;
  return method === 'OPTIONS' && headers.has('origin') && headers.has('access-control-request-method');
}

/** The `Access-Control-Allow-Origin` value for this request's origin, or undefined when it may not read answers. */
function allowedOriginFor(settings: CorsSettings, origin: string | null): string | undefined {
  if (origin === null) return undefined;
  if (settings.anyOrigin) return '*';
  // Exact comparison with the serialized origin; `null` (sandboxed pages, file:) is never on the list.
  return settings.allowedOrigins.includes(origin) ? origin : undefined;
}

/** `Vary: Origin` whenever the answer depends on the origin (a list, not `*`), so shared caches keep them apart. */
function varyHeader(settings: CorsSettings): Record<string, string> {
  return settings.allowedOrigins.length > 0 ? { Vary: 'Origin' } : {};
}

/**
 * The CORS headers of an actual (non-preflight) answer: for an allowed origin `Access-Control-Allow-Origin` and
 * `Access-Control-Expose-Headers`; for any other request none of them (plus `Vary: Origin` when a list is set).
 */
export function corsResponseHeaders(settings: CorsSettings, request: HttpRequest): Record<string, string> {
  const allowed = allowedOriginFor(settings, request.headers.get('origin'));
  if (allowed === undefined) return varyHeader(settings);
  return {
    'Access-Control-Allow-Origin': allowed,
    'Access-Control-Expose-Headers': EXPOSED_HEADERS,
    ...varyHeader(settings),
  };
}

/**
 * The answer to an `OPTIONS` request (docs/cors.md): a preflight from an allowed origin gets 204 with the
 * function's methods and request headers and `Access-Control-Max-Age`; a preflight from any other origin gets
 * an empty 403 without any CORS header (the browser then refuses the call); an `OPTIONS` that is no preflight
 * gets the empty 404 the Functions host gives a method a route does not take.
 */
export function optionsAnswer(
  settings: CorsSettings,
  request: HttpRequest,
  flow: FlowName,
  methods: readonly string[],
): HttpResponseInit {
  if (!isPreflight(request)) return { status: 404, body: '' };
  const allowed = allowedOriginFor(settings, request.headers.get('origin'));
  if (allowed === undefined) return { status: 403, headers: varyHeader(settings), body: '' };
  const requestHeaders = ALLOWED_REQUEST_HEADERS[flow];
  return {
    status: 204,
    headers: {
      'Access-Control-Allow-Origin': allowed,
      'Access-Control-Allow-Methods': methods.join(', '),
      ...(requestHeaders.length > 0 ? { 'Access-Control-Allow-Headers': requestHeaders.join(', ') } : {}),
      'Access-Control-Max-Age': String(settings.maxAgeSeconds),
      ...varyHeader(settings),
    },
  };
}
