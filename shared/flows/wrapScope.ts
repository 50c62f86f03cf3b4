/**
 * WRAP relying-party scopes (docs/contracts/acs-wrap.md#request): what a `wrap_scope` may look like, which service namespace
 * it names, and whether an issuer's configured scope prefix covers it.
 */

/** A `wrap_scope` that passed {@link parseWrapScope}. */
export interface WrapScope {
  /** The scope exactly as requested (it becomes the SWT's `Audience`). */
  readonly scope: string;
  /** Host name, lower case. */
  readonly hostname: string;
  /** The host's first DNS label, lower case: the service namespace. */
  readonly namespace: string;
  /** The path as sent (never empty: `/` when the scope has none). */
  readonly path: string;
}

const MAX_SCOPE_LENGTH = 2_048;
const ABSOLUTE_HTTP_URI = /^(https?):\/\/([^/?#]+)([^?#]*)(\?[^#]*)?$/i;

/**
 * Parses a requested scope: an absolute `http`/`https` URI of printable ASCII, with no user info, no
 * fragment, a host written as the URL parser reads it and a path already in canonical form (no `.`/`..`
 * segments, no backslashes, no percent-encoding at all), so the host and path matched against prefixes are
 * what the relying party sees in `Audience`, whether or not it decodes them (once or twice). Service Bus
 * entity names need no escapes (letters, digits, `.`, `-`, `_`, `/`), so `windows%2enet`, `%64emo` and
 * `%252e%252e` are refused rather than guessed at. A query is allowed (the Node SDK keeps it) and is not
 * part of the match. Returns undefined when the scope is unusable.
 *
 * @example
 * parseWrapScope('http://contoso.servicebus.windows.net/orders/messages/head?timeout=60')?.namespace; // 'contoso'
 */
export function parseWrapScope(scope: string): WrapScope | undefined {
  if (scope.length > MAX_SCOPE_LENGTH || !/^[\x21-\x7e]+$/.test(scope)) return undefined;
  const parts = ABSOLUTE_HTTP_URI.exec(scope);
  if (!parts) return undefined;
  let url: URL;
  try {
    url = new URL(scope);
  } catch {
    return undefined;
  }
  const authority = parts[2] ?? '';
  const path = parts[3] || '/';
  if (url.username !== '' || url.password !== '' || authority.includes('%') || path.includes('%') || url.pathname !== path) {
    return undefined;
  }
  // The host as sent must be the host the parser read: no escapes, IDN or numeric forms it would rewrite.
  if (url.hostname !== authority.replace(/:\d*$/, '').toLowerCase()) return undefined;
  const hostname = url.hostname.toLowerCase();
  return { scope, hostname, namespace: hostname.split('.')[0] ?? '', path };
}

/**
 * Whether a configured scope prefix covers a requested scope (docs/contracts/acs-wrap.md#request: clients ask for per-entity
 * URLs under the namespace's base URL). The hosts must be equal; `http` and `https` are treated alike (the
 * SDKs force `http:`, others keep the scheme) and ports are ignored. Paths compare case-insensitively, as
 * Service Bus entity names do, and a prefix covers only whole path segments: `/q` covers `/q`, `/q/` and
 * `/q/messages`, never `/q2`; a prefix ending in `/` covers everything below it. The requested query is not
 * part of the match.
 *
 * @example
 * scopeCoveredBy(parseWrapScope('http://ns.servicebus.windows.net/q/messages')!, 'http://ns.servicebus.windows.net/q'); // true
 * scopeCoveredBy(parseWrapScope('http://ns.servicebus.windows.net/q2')!, 'http://ns.servicebus.windows.net/q');        // false
 */
export function scopeCoveredBy(requested: WrapScope, prefix: string): boolean {
  const allowed = parseWrapScope(prefix);
  if (!allowed || allowed.hostname !== requested.hostname) return false;
  const wanted = requested.path.toLowerCase();
  const base = allowed.path.toLowerCase();
  if (base.endsWith('/')) return wanted.startsWith(base);
  return wanted === base || wanted.startsWith(`${base}/`);
}
