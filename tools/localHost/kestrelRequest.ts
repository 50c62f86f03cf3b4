import type { IncomingMessage } from 'node:http';

/**
 * What Kestrel (the web server inside the Functions host) does to a request before any routing, so the local
 * host refuses and normalises the same requests (docs/hosts.md): its default limits, and the removal of dot
 * segments from the path.
 */

/** Kestrel's defaults (KestrelServerLimits): request line 8 KiB, headers 32 KiB in total, 100 header fields. */
export const KESTREL_LIMITS = Object.freeze({
  maxRequestLineBytes: 8_192,
  maxHeaderBytes: 32_768,
  maxHeaderCount: 100,
});

/**
 * Response header names Kestrel knows, in the casing it writes them; every other name goes out as the handler's
 * response spelled it (lower case, from `@azure/functions`).
 */
const KESTREL_RESPONSE_HEADER_NAMES = new Map(
  [
    'Accept-Ranges',
    'Access-Control-Allow-Credentials',
    'Access-Control-Allow-Headers',
    'Access-Control-Allow-Methods',
    'Access-Control-Allow-Origin',
    'Access-Control-Expose-Headers',
    'Access-Control-Max-Age',
    'Age',
    'Allow',
    'Alt-Svc',
    'Cache-Control',
    'Connection',
    'Content-Encoding',
    'Content-Language',
    'Content-Length',
    'Content-Location',
    'Content-MD5',
    'Content-Range',
    'Content-Type',
    'Date',
    'ETag',
    'Expires',
    'Keep-Alive',
    'Last-Modified',
    'Location',
    'Pragma',
    'Proxy-Authenticate',
    'Retry-After',
    'Server',
    'Set-Cookie',
    'Trailer',
    'Transfer-Encoding',
    'Upgrade',
    'Vary',
    'Via',
    'Warning',
    'WWW-Authenticate',
  ].map((name) => [name.toLowerCase(), name]),
);

/** `name` as Kestrel writes it on a response. */
export function kestrelResponseHeaderName(name: string): string {
  return KESTREL_RESPONSE_HEADER_NAMES.get(name.toLowerCase()) ?? name;
}

/**
 * The size of the request line as sent: `METHOD target HTTP/x.y` and its CRLF. Node reads the head as latin1,
 * one character per byte, so a length is a byte count.
 */
export function requestLineBytes(req: IncomingMessage): number {
  return (req.method ?? '').length + (req.url ?? '').length + req.httpVersion.length + 9;
}

/**
 * Removes `.` and `..` segments from a raw (still percent-encoded) path, as Kestrel does before routing
 * (RFC 3986 §5.2.4); an encoded dot (`%2E`) counts as a dot, since Kestrel decodes before it normalises.
 * `/x/../.well-known/jwks.json` becomes `/.well-known/jwks.json`; `..` never climbs above the root.
 *
 * @example
 * removeDotSegments('/a/./b/../c/'); // '/a/c/'
 */
export function removeDotSegments(rawPath: string): string {
  if (!rawPath.includes('.') && !/%2e/i.test(rawPath)) return rawPath;
  const segments = rawPath.split('/').slice(1);
  const out: string[] = [];
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    const dots = segment.replace(/%2e/gi, '.');
    if (dots === '.' || dots === '..') {
      if (dots === '..') out.pop();
      if (last) out.push('');
    } else {
      out.push(segment);
    }
  });
  return `/${out.join('/')}`;
}
