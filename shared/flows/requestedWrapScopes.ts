import { parseWrapScope, type WrapScope } from './wrapScope.js';

/**
 * The parses of the scopes clients asked for lately: a WRAP client asks for the same few scopes again and
 * again, and {@link parseWrapScope} (a URL parse and its checks) is a pure function of the text, so a scope
 * seen lately is not parsed again. Bounded: at most {@link MAX_REMEMBERED} scopes (each at most 2,048
 * characters, the longest that parses), forgotten all at once when full, so a flood of made-up scopes costs
 * what it cost before and holds at most about 1 MB.
 */
const MAX_REMEMBERED = 256;
const remembered = new Map<string, WrapScope | undefined>();

/**
 * {@link parseWrapScope} of a requested `wrap_scope`, the same answer (undefined when unusable), remembered.
 *
 * @example
 * requestedWrapScope('http://contoso.servicebus.windows.net/orders')?.namespace; // 'contoso'
 */
export function requestedWrapScope(scope: string): WrapScope | undefined {
  if (remembered.has(scope)) return remembered.get(scope);
  const parsed = parseWrapScope(scope);
  if (remembered.size >= MAX_REMEMBERED) remembered.clear();
  remembered.set(scope, parsed);
  return parsed;
}
