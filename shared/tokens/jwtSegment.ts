/**
 * JSON for JWT segments that every known client decodes identically (docs/contracts/cross-cutting.md#jwt-encoding).
 *
 * Base64url and standard base64 differ only in the characters for sextets 62 and 63, and for printable ASCII
 * those occur only when the third byte of a triple is `>`, `?`, `~` or DEL. So the JSON is made pure ASCII
 * with those four (and every non-ASCII UTF-16 unit) written as `\uXXXX`, and padded with spaces after the
 * opening `{` to a multiple of 3 bytes. Its base64url then has no `-`, `_` or padding, and equals its
 * standard base64: Java `Base64.getDecoder()`, browser `atob` and Python `b64decode` read the same claims as
 * any JOSE library.
 */

const UNSAFE_FOR_BASE64 = /[>?~\u007f-\uffff]/g;
/** The same class, for a test without the global regex's state: most payloads need no escaping at all. */
const HAS_UNSAFE_FOR_BASE64 = /[>?~\u007f-\uffff]/;

/**
 * Serialises a JSON object as the exact segment bytes described above.
 *
 * @example
 * encodeJwtSegmentJson({ a: '>é' }).toString('ascii'); // '{ "a":"\\u003e\\u00e9"}' (length 21)
 */
export function encodeJwtSegmentJson(value: Readonly<Record<string, unknown>>): Buffer {
  const json = JSON.stringify(value);
  if (!json?.startsWith('{')) throw new TypeError('A JWT segment must be a JSON object');
  const ascii = HAS_UNSAFE_FOR_BASE64.test(json)
    ? json.replace(UNSAFE_FOR_BASE64, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : json;
  const padding = ' '.repeat((3 - (ascii.length % 3)) % 3);
  return Buffer.from(`{${padding}${ascii.slice(1)}`, 'ascii');
}
