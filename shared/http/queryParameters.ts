/**
 * Query-string parameters read from the request URL itself, with names matched case-insensitively
 * (docs/contracts/cross-cutting.md#query-names: docs spell `Subscription-Key`, API Management clients send `subscription-key`).
 *
 * The URL is parsed rather than the platform's `request.query` because the Functions host hands the worker a
 * name → value mapping in which a repeated parameter is already collapsed; flows that must refuse duplicates
 * (`expiredTime`, docs/contracts/cognitive-limited-access-token.md#request) need every occurrence.
 */

/**
 * Every value of the query parameter `name` (compared case-insensitively, ASCII), in URL order. Values are
 * percent-decoded the way `URLSearchParams` does (`+` is a space; bytes that are not UTF-8 become U+FFFD,
 * which no valid value contains).
 *
 * @example
 * queryParameterValues('https://h/sts/v1.0/issueToken?subscription-key=abc', 'Subscription-Key'); // ['abc']
 */
export function queryParameterValues(url: string, name: string): string[] {
  return queryParameterValueLists(url, [name])[name] as string[];
}

/**
 * {@link queryParameterValues} of several names at once, the URL parsed once (not at all when it has no query).
 *
 * @example
 * queryParameterValueLists('https://h/sts/v1.0/issueToken?expiredTime=60', ['expiredTime', 'resource']);
 * // { expiredTime: ['60'], resource: [] }
 */
export function queryParameterValueLists<N extends string>(url: string, names: readonly N[]): Record<N, string[]> {
  const lists = {} as Record<N, string[]>;
  const wanted = names.map((name) => name.toLowerCase());
  for (const name of names) lists[name] = [];
  // No `?`, no query: nothing to parse (a `#` fragment cannot hold one either).
  if (!url.includes('?')) return lists;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return lists;
  }
  for (const [key, value] of parsed.searchParams) {
    const lower = key.toLowerCase();
    for (let i = 0; i < names.length; i += 1) if (wanted[i] === lower) lists[names[i] as N].push(value);
  }
  return lists;
}
