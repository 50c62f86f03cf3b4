import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import type { FlowName } from '../flowCatalogue.js';
import type { CorsSettings } from '../settings/corsSettings.js';

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
