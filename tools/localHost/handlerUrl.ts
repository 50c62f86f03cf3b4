/**
 * The absolute URL the local host puts in a handler's request: `scheme://authority` and the request's path and
 * query, exactly as the URL parser serialises them (`new URL(…).href`), without parsing the whole URL on every
 * request when nothing in it would change.
 *
 * The parser changes a path or query only where it holds a character outside a plain set (it percent-encodes
 * spaces, quotes, `<`, `>`, backticks, braces and non-ASCII, turns `\` into `/`, drops tabs and newlines, ends
 * the query at `#`) or a dot segment (`.`, `..`, or their `%2e` spellings, which it removes). A path and query
 * of plain characters and no dot segment are copied as they are; anything else goes through the parser. The
 * scheme and authority are serialised by the parser once per authority (lower-cased host, default port
 * dropped), and remembered.
 */

/** Path characters the URL parser leaves alone in an http(s) URL. */
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~!$&()*+,;=:@/%]*$/;
/** A dot segment in a path, plain or percent-encoded (the parser removes them). */
const DOT_SEGMENT = /\/(?:\.|%2e){1,2}(?:\/|$)/i;
/** Query characters the URL parser leaves alone in an http(s) URL (the leading `?` included). */
const PLAIN_QUERY = /^\?[A-Za-z0-9\-._~!$&()*+,;=:@/%?]*$/;

/** `scheme://authority` as the URL parser serialises it, by the authority as received; bounded, emptied when full. */
const serialisedOrigins = new Map<string, string>();

/**
 * `new URL(`${scheme}://${authority}${pathAndQuery}`).href`, computed without the parser when the path and query
 * are plain (see above). `authority` must already be a plausible host and port (no user info, no path).
 *
 * @example
 * handlerUrl('http', '127.0.0.1:7071', '/accounts/abc/token'); // 'http://127.0.0.1:7071/accounts/abc/token'
 */
export function handlerUrl(scheme: 'http' | 'https', authority: string, pathAndQuery: string): string {
  const key = `${scheme}://${authority}`;
  let origin = serialisedOrigins.get(key);
  if (origin === undefined) {
    const parsed = new URL(`${key}/`);
    origin = `${parsed.protocol}//${parsed.host}`;
    if (serialisedOrigins.size >= 256) serialisedOrigins.clear();
    serialisedOrigins.set(key, origin);
  }
  const queryStart = pathAndQuery.indexOf('?');
  const path = queryStart === -1 ? pathAndQuery : pathAndQuery.slice(0, queryStart);
  const plain =
    PLAIN_PATH.test(path) &&
    !DOT_SEGMENT.test(path) &&
    (queryStart === -1 || PLAIN_QUERY.test(pathAndQuery.slice(queryStart)));
  return plain ? origin + pathAndQuery : new URL(`${key}${pathAndQuery}`).href;
}
