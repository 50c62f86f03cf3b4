import { StsBaseError } from '../../shared/errors.js';
/**
 * Route templates as the Functions host reads them (ASP.NET Core routing): literal segments matched
 * case-insensitively, `{name}` for one segment, `{name?}` for an optional trailing segment, `{*name}` for the
 * rest of the path. Inline constraints (`{id:guid}`) are accepted and not enforced: the flows validate input.
 */

export type RouteParams = Record<string, string>;

/** Thrown for a path whose percent-encoding is malformed (answered 400, like the real host). */
export class MalformedPathError extends StsBaseError {
  readonly code = 'ERR_STS_MALFORMED_PATH';
  constructor() {
    super('The request path is not valid percent-encoding');
    this.name = 'MalformedPathError';
  }
}

type Segment =
  | { readonly kind: 'literal'; readonly text: string }
  | { readonly kind: 'param'; readonly name: string; readonly optional: boolean }
  | { readonly kind: 'catchAll'; readonly name: string };

export interface CompiledRoute {
  /** The template as written, prefix included, for messages. */
  readonly template: string;
  /** Matches raw (still percent-encoded) path segments; returns the decoded parameters, or undefined. */
  match(rawSegments: readonly string[]): RouteParams | undefined;
}

/**
 * Compiles `routePrefix` + `template` into a matcher.
 *
 * @example
 * compileRoute('accounts/{accountId}/token', '').match(['Accounts', 'abc', 'token']); // { accountId: 'abc' }
 */
export function compileRoute(template: string, routePrefix: string): CompiledRoute {
  const full = [routePrefix, template]
    .map((part) => part.replace(/^\/+|\/+$/g, ''))
    .filter(Boolean)
    .join('/');
  const segments = full === '' ? [] : full.split('/').map(parseSegment);
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    if (!last && (segment.kind === 'catchAll' || (segment.kind === 'param' && segment.optional))) {
      throw new Error(`Route "${template}": only the last segment may be optional or catch-all`);
    }
  });

  return {
    template: full,
    match(rawSegments) {
      const params: RouteParams = {};
      for (let i = 0; i < segments.length; i++) {
        const segment = segments[i] as Segment;
        const raw = rawSegments[i];
        if (segment.kind === 'catchAll') {
          params[segment.name] = rawSegments.slice(i).map(decodeSegment).join('/');
          return params;
        }
        if (raw === undefined || raw === '') {
          if (segment.kind === 'param' && segment.optional && raw === undefined) return params;
          return undefined;
        }
        const decoded = decodeSegment(raw);
        if (segment.kind === 'literal') {
          if (decoded.toLowerCase() !== segment.text) return undefined;
        } else {
          params[segment.name] = decoded;
        }
      }
      return rawSegments.length === segments.length ? params : undefined;
    },
  };
}

/**
 * Splits a request path (no query) into raw segments. One trailing slash is tolerated, as the real host does
 * (`/WRAPv0.9/` reaches `WRAPv0.9`).
 */
export function splitPath(path: string): string[] {
  const start = path.startsWith('/') ? 1 : 0;
  const end = path.length > start && path.endsWith('/') ? path.length - 1 : path.length;
  return end <= start ? [] : path.slice(start, end).split('/');
}

function parseSegment(text: string): Segment {
  const param = /^\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(\?)?\}$/.exec(text);
  if (!param) {
    if (/[{}]/.test(text)) throw new Error(`Route segment "${text}" is not a literal or a {parameter}`);
    return { kind: 'literal', text: text.toLowerCase() };
  }
  const name = param[2] as string;
  return param[1] ? { kind: 'catchAll', name } : { kind: 'param', name, optional: Boolean(param[3]) };
}

function decodeSegment(raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new MalformedPathError();
  }
}
