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
  const { ascii, padding } = segmentJson(value);
  return Buffer.from(`{${' '.repeat(padding)}${ascii.slice(1)}`, 'ascii');
}

/**
 * The base64url of {@link encodeJwtSegmentJson}'s bytes, i.e. a JWT segment as it appears in the token, written
 * through one reused buffer rather than a string and a buffer of its own per call (this runs once per token).
 *
 * @example
 * encodeJwtSegment({ a: 1 }) === encodeJwtSegmentJson({ a: 1 }).toString('base64url'); // true
 */
export function encodeJwtSegment(value: Readonly<Record<string, unknown>>): string {
  const { ascii, padding } = segmentJson(value);
  const length = ascii.length + padding;
  const out = length <= SCRATCH.length ? SCRATCH : Buffer.allocUnsafe(length);
  // The JSON from its `{` on, shifted right by the padding; then `{` and the spaces in front of the rest.
  out.write(ascii, padding, 'latin1');
  out.fill(0x20, 0, padding + 1);
  out[0] = 0x7b; // {
  return out.toString('base64url', 0, length);
}

/** Where {@link encodeJwtSegment} writes (synchronously, so one buffer serves every call); longer JSON gets its own. */
const SCRATCH = Buffer.alloc(8_192);

/** The JSON text made pure ASCII as described above, and how many spaces go after its `{`. */
function segmentJson(value: Readonly<Record<string, unknown>>): { ascii: string; padding: number } {
  const json = JSON.stringify(value);
  if (!json?.startsWith('{')) throw new TypeError('A JWT segment must be a JSON object');
  const ascii = HAS_UNSAFE_FOR_BASE64.test(json)
    ? json.replace(UNSAFE_FOR_BASE64, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : json;
  return { ascii, padding: (3 - (ascii.length % 3)) % 3 };
}
