import type { IncomingMessage } from 'node:http';

/** What the local host reads of a request's header fields, in one pass over them as received. */
export interface HeaderFields {
  /** Header fields as sent, repeats counted (Kestrel's field-count limit). */
  readonly count: number;
  /** Their bytes, each line counted as `name: value` plus CRLF (Kestrel's header-size limit). */
  readonly bytes: number;
  /**
   * One value per lower-case name, as the Functions host hands them to the worker: repeated fields joined with
   * ", " (`; ` for `Cookie`). No prototype: a field named `constructor` or `__proto__` is a header like any other.
   */
  readonly fields: Record<string, string>;
  /** The first `Host` value (what Node's `req.headers.host` holds), if any. */
  readonly host: string | undefined;
  /** Framed with a body: any `Transfer-Encoding`, or a first `Content-Length` above 0. */
  readonly hasBody: boolean;
}

/**
 * Reads `req.rawHeaders` once for everything the host needs of them (limits, the handler's headers, Host, body
 * framing), instead of a pass per question and Node's own `req.headers` object on top. Node reads the head as
 * latin1, one character per byte, so a string length is a byte count.
 */
export function readHeaderFields(req: IncomingMessage): HeaderFields {
  const raw = req.rawHeaders;
  const fields = Object.create(null) as Record<string, string>;
  let bytes = 0;
  let host: string | undefined;
  let contentLength: string | undefined;
  let chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    const rawName = raw[i] as string;
    const value = raw[i + 1] as string;
    bytes += rawName.length + value.length + 4;
    const name = rawName.toLowerCase();
    const previous = fields[name];
    if (previous === undefined) {
      fields[name] = value;
      if (name === 'host') host = value;
      else if (name === 'content-length') contentLength = value;
      else if (name === 'transfer-encoding') chunked = true;
    } else {
      fields[name] = `${previous}${name === 'cookie' ? '; ' : ', '}${value}`;
    }
  }
  return {
    count: raw.length / 2,
    bytes,
    fields,
    host,
    hasBody: chunked || Number(contentLength ?? 0) > 0,
  };
}
