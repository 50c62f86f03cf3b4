/**
 * Parsing an `application/x-www-form-urlencoded` body whatever the request's `Content-Type` says
 * (docs/contracts/acs-wrap.md#request: the ACS doc's table says Atom, real clients send a form, legacy Python sends no type).
 */

/** Field name → every value it was given, in body order. Names are exact (case-sensitive). */
export type FormFields = ReadonlyMap<string, readonly string[]>;

export type FormParseResult =
  { readonly ok: true; readonly fields: FormFields } | { readonly ok: false; readonly problem: string };

/**
 * Parses a form body strictly enough that nothing ambiguous reaches a flow: the raw bytes must be printable
 * ASCII (a trailing CR/LF, as some clients append, is ignored), every `%` must start a two-digit hex escape
 * (either case: .NET writes `%3d`, Node `%3D`), and the decoded bytes must be UTF-8. `+` is a space. Empty
 * pairs (`a=1&&b=2`, a trailing `&`) are skipped; a pair without `=` is a field with an empty value.
 * Repeated names are kept so the caller can refuse them.
 *
 * @example
 * const parsed = parseFormBody(Buffer.from('wrap_name=owner&wrap_scope=http%3a%2f%2fns.servicebus.windows.net%2f'));
 * if (parsed.ok) parsed.fields.get('wrap_scope'); // ['http://ns.servicebus.windows.net/']
 */
export function parseFormBody(body: Uint8Array): FormParseResult {
  let end = body.length;
  while (end > 0 && (body[end - 1] === 0x0a || body[end - 1] === 0x0d)) end -= 1;
  for (let i = 0; i < end; i += 1) {
    const byte = body[i] as number;
    if (byte < 0x20 || byte > 0x7e) return { ok: false, problem: 'The body is not form-encoded ASCII.' };
  }
  // A view over the same bytes (no copy), read once as text.
  const text = Buffer.from(body.buffer, body.byteOffset, end).toString('latin1');

  const fields = new Map<string, string[]>();
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const at = pair.indexOf('=');
    const name = decodeComponent(at === -1 ? pair : pair.slice(0, at));
    const value = decodeComponent(at === -1 ? '' : pair.slice(at + 1));
    if (name === undefined || value === undefined) {
      return { ok: false, problem: 'The body contains a malformed percent-escape or bytes that are not UTF-8.' };
    }
    const values = fields.get(name);
    if (values) values.push(value);
    else fields.set(name, [value]);
  }
  return { ok: true, fields };
}

function decodeComponent(text: string): string | undefined {
  // Printable ASCII without escapes or `+` decodes to itself (most names, and many values).
  if (!text.includes('%') && !text.includes('+')) return text;
  if (/%(?![0-9a-fA-F]{2})/.test(text)) return undefined;
  try {
    // decodeURIComponent throws on escapes that do not form UTF-8, which is what we want.
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}
