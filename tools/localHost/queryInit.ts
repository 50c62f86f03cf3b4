/**
 * The `query` init the local host gives `@azure/functions`' `HttpRequest`, so that the library does not parse the
 * whole URL again per request to read its query (`new URL(url).searchParams`, in its constructor). Given a
 * `query`, the library passes it to `new URLSearchParams(…)` instead; given the query's text, that is the very
 * parse the URL's `searchParams` makes of the URL's query. So the text is handed over when it is what the URL
 * holds: nothing the URL parser would encode (plain characters only) and no fragment before or inside it. Any
 * other query is left to the library's own parsing of the URL. `localHost.ts` checks once that the library
 * treats a text `query` so.
 */

/** Query characters the URL parser leaves as they are in an http(s) URL. */
const PLAIN_QUERY = /^[A-Za-z0-9\-._~!$&()*+,;=:@/%?]*$/;

/**
 * The query of `pathAndQuery` (a request target) as the URL holds it, with its leading `?` (which
 * `URLSearchParams` drops, and only that one), or a lone `?` when there is none; undefined when only parsing the
 * URL tells.
 *
 * @example
 * queryText('/accounts/a/token?api-version=2019-02-28-preview'); // '?api-version=2019-02-28-preview'
 */
export function queryText(pathAndQuery: string): string | undefined {
  const start = pathAndQuery.indexOf('?');
  const fragment = pathAndQuery.indexOf('#');
  // No `?`, or a fragment before it: the URL has no query (a lone `?`: empty text would not count as a query).
  if (start === -1 || (fragment !== -1 && fragment < start)) return '?';
  const query = pathAndQuery.slice(start);
  return PLAIN_QUERY.test(query) ? query : undefined;
}
