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
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [];
  }
  const wanted = name.toLowerCase();
  const values: string[] = [];
  for (const [key, value] of parsed.searchParams) {
    if (key.toLowerCase() === wanted) values.push(value);
  }
  return values;
}
