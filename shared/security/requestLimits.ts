import { StsError } from '../errors.js';

/**
 * Limits on everything a client controls the size of, checked by the function wrapper before a flow runs, so
 * that each refusal is a 4xx in the flow's own error shape (the handlers run behind the Azure front end too,
 * whose own, higher caps answer in its shape). The body cap is applied where the body is read
 * (`readBody`); JSON nesting and form field counts by the flows that parse those bodies.
 */

/** The request limits of `config.limits` this module reads. */
export interface RequestLimits {
  readonly maxUrlLength: number;
  readonly maxQueryParameters: number;
  readonly maxHeaderBytes: number;
  readonly maxHeaderCount: number;
}

/** What is read of a request: the URL as received and its header fields. */
export interface LimitedRequest {
  readonly url: string;
  readonly headers: Iterable<[string, string]>;
}

/** Deepest JSON nesting accepted in a request body (the limited-access-token body is 2 deep). */
export const MAX_JSON_DEPTH = 16;
/** Most fields a form body may carry (the WRAP request has 3). */
export const MAX_FORM_FIELDS = 64;

/**
 * The first limit `request` exceeds, as the refusal to answer with, or undefined when it is within all of
 * them: URL (path and query, as sent) longer than `maxUrlLength` → 414; more than `maxQueryParameters`
 * query parameters → 400; more than `maxHeaderCount` header fields, or names and values together beyond
 * `maxHeaderBytes` → 431.
 *
 * @example
 * const refusal = requestLimitViolation(request, services.config.limits);
 * if (refusal) throw refusal;
 */
export function requestLimitViolation(request: LimitedRequest, limits: RequestLimits): StsError | undefined {
  const target = requestTarget(request.url);
  if (target.length > limits.maxUrlLength) {
    return new StsError('ERR_STS_URL_TOO_LONG', `The request URL exceeds ${limits.maxUrlLength} characters.`, {
      reason: 'url_too_long',
    });
  }
  const queryStart = target.indexOf('?');
  if (queryStart >= 0) {
    let parameters = 0;
    for (const part of target.slice(queryStart + 1).split('&')) if (part !== '') parameters += 1;
    if (parameters > limits.maxQueryParameters) {
      return new StsError(
        'ERR_STS_INVALID_REQUEST',
        `The request has more than ${limits.maxQueryParameters} query parameters.`,
        {
          reason: 'too_many_query_parameters',
        },
      );
    }
  }
  let count = 0;
  let bytes = 0;
  for (const [name, value] of request.headers) {
    count += 1;
    bytes += Buffer.byteLength(name, 'latin1') + Buffer.byteLength(value, 'utf8') + 4; // ": " and CRLF
  }
  if (count > limits.maxHeaderCount) {
    return new StsError(
      'ERR_STS_HEADERS_TOO_LARGE',
      `The request has more than ${limits.maxHeaderCount} header fields.`,
      {
        reason: 'headers_too_large',
      },
    );
  }
  if (bytes > limits.maxHeaderBytes) {
    return new StsError(
      'ERR_STS_HEADERS_TOO_LARGE',
      `The request header fields exceed ${limits.maxHeaderBytes} bytes.`,
      {
        reason: 'headers_too_large',
      },
    );
  }
  return undefined;
}

/** Path and query of a URL exactly as received (scheme and authority removed, fragment dropped). */
function requestTarget(url: string): string {
  const withoutOrigin = url.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '');
  const hash = withoutOrigin.indexOf('#');
  return hash >= 0 ? withoutOrigin.slice(0, hash) : withoutOrigin;
}

/**
 * Whether JSON text nests arrays and objects deeper than `maxDepth`, found by one scan that skips strings
 * (escapes included) and never builds anything, so it is safe to run before `JSON.parse`.
 *
 * @example
 * jsonNestingExceeds('{"a":[1]}', 2);  // false
 * jsonNestingExceeds('[[[]]]', 2);     // true
 */
export function jsonNestingExceeds(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i += 1; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > maxDepth) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth -= 1;
    }
  }
  return false;
}

/**
 * The number of fields in a form body: `&`-separated parts that are not empty (the parser skips those).
 *
 * @example
 * formFieldCount(Buffer.from('a=1&&b=2&')); // 2
 */
export function formFieldCount(body: Uint8Array): number {
  let fields = 0;
  let partLength = 0;
  // An indexed loop: `for…of` over a typed array can allocate an iterator result per byte.
  for (let i = 0; i < body.length; i += 1) {
    const byte = body[i];
    if (byte === 0x26) {
      if (partLength > 0) fields += 1;
      partLength = 0;
    } else if (byte !== 0x0d && byte !== 0x0a) {
      partLength += 1;
    }
  }
  return partLength > 0 ? fields + 1 : fields;
}
