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

/**
 * The hosts a WRAP scope may name: `<namespace>.servicebus.<cloud>`, the Service Bus namespace hosts of the
 * public and sovereign clouds (docs/contracts/acs-wrap.md#this-sts). The namespace is the one label before
 * the suffix, so a scope can never point a namespace's SWT at a host outside Service Bus
 * (`demo.attacker.example`, `demo.servicebus.windows.net.evil.example`).
 */
export const WRAP_SCOPE_HOST_SUFFIXES: readonly string[] = [
  '.servicebus.windows.net',
  '.servicebus.chinacloudapi.cn',
  '.servicebus.usgovcloudapi.net',
  '.servicebus.cloudapi.de',
];
const ABSOLUTE_HTTP_URI = /^(https?):\/\/([^/?#]+)([^?#]*)(\?[^#]*)?$/i;

/**
 * Parses a requested scope: an absolute `http`/`https` URI of printable ASCII, with no user info, no
 * fragment, a host that is a Service Bus namespace host ({@link WRAP_SCOPE_HOST_SUFFIXES}) written as the URL
 * parser reads it, and a path already in canonical form (no `.`/`..` segments, no backslashes, no
 * percent-encoding at all, no `;` path parameters: `/q/..;/q2` is `/q2` to some servers), so the host and
 * path matched against prefixes are
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
  if (url.username !== '' || url.password !== '' || authority.includes('%')) return undefined;
  if (path.includes('%') || path.includes(';') || url.pathname !== path) return undefined;
  // The host as sent must be the host the parser read: no escapes, IDN or numeric forms it would rewrite.
  if (url.hostname !== authority.replace(/:\d*$/, '').toLowerCase()) return undefined;
  const hostname = url.hostname.toLowerCase();
  const namespace = namespaceOfHost(hostname);
  if (namespace === undefined) return undefined;
  return { scope, hostname, namespace, path };
}

/** The namespace label of a Service Bus namespace host, or undefined for any other host. */
function namespaceOfHost(hostname: string): string | undefined {
  const suffix = WRAP_SCOPE_HOST_SUFFIXES.find((candidate) => hostname.endsWith(candidate));
  if (suffix === undefined) return undefined;
  const label = hostname.slice(0, -suffix.length);
  // One label; whether it can name a namespace at all is the flow's check (an unknown credential, 401).
  return label !== '' && !label.includes('.') ? label : undefined;
}

/**
 * Checks a configured scope prefix for `namespace` (the admin CLI, when an issuer is created): it must parse
 * as a requested scope does and name that namespace's host. Returns why not, or undefined when it is fine.
 *
 * @example
 * wrapScopePrefixProblem('http://demo.attacker.example/', 'demo'); // 'it must be an absolute http(s) URI on …'
 * wrapScopePrefixProblem('http://demo.servicebus.windows.net/q', 'demo'); // undefined
 */
export function wrapScopePrefixProblem(prefix: string, namespace: string): string | undefined {
  const parsed = parseWrapScope(prefix);
  if (!parsed) {
    return (
      `it must be an absolute http(s) URI on <namespace>${WRAP_SCOPE_HOST_SUFFIXES[0]} (or a sovereign cloud's ` +
      'Service Bus host), without user info, percent-encoding, dot segments, ";" path parameters, a query or a fragment'
    );
  }
  const wanted = namespace.toLowerCase();
  if (parsed.namespace !== wanted) return `its host must be ${wanted}${parsed.hostname.slice(parsed.namespace.length)}`;
  if (prefix.includes('?')) return 'a prefix has no query';
  return undefined;
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
  return scopeCoveredByParsed(requested, parseWrapScope(prefix));
}

/**
 * {@link scopeCoveredBy} over a prefix already parsed with {@link parseWrapScope} (undefined when it does not
 * parse, which covers nothing): for callers that parse an issuer's prefixes once rather than on every request.
 */
export function scopeCoveredByParsed(requested: WrapScope, allowed: WrapScope | undefined): boolean {
  if (!allowed || allowed.hostname !== requested.hostname) return false;
  const wanted = requested.path.toLowerCase();
  const base = allowed.path.toLowerCase();
  if (base.endsWith('/')) return wanted.startsWith(base);
  return wanted === base || wanted.startsWith(`${base}/`);
}
