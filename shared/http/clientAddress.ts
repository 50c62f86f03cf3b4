import { isIP } from 'node:net';
import type { ClientAddressRule } from '../settings/clientAddressRule.js';

/** The longest header value looked at: a forwarding chain is a handful of addresses, never kilobytes. */
const MAX_CHAIN_CHARS = 2_048;

/**
 * The client address under `rule`: the `trustedHops`-th entry from the right of the `rule.header` list (repeated
 * header fields count as one comma-joined list, as the Functions host hands them over), as a canonical IP
 * address without port. Entries to its left were written by the client or by proxies nobody vouches for and are
 * never read, so a forged header cannot move a client to another address. `undefined` when the header is
 * missing, has fewer entries than trusted hops, or the entry is not an IP address: callers must treat an unknown
 * address as "no per-address facts", never as one address shared by everyone.
 *
 * @example
 * // App Service's front end appended the address it saw; the left entry is the client's own claim.
 * clientAddressOf(new Headers({ 'x-forwarded-for': '198.51.100.1, 203.0.113.7:50412' }), DEFAULT_CLIENT_ADDRESS_RULE);
 * // → '203.0.113.7'
 */
export function clientAddressOf(headers: Pick<Headers, 'get'>, rule: ClientAddressRule): string | undefined {
  const value = headers.get(rule.header);
  if (!value || value.length > MAX_CHAIN_CHARS) return undefined;
  const entries = value.split(',');
  if (entries.length < rule.trustedHops) return undefined;
  const entry = entries[entries.length - rule.trustedHops];
  return entry === undefined ? undefined : canonicalAddress(entry.trim());
}

/**
 * One forwarding entry as a bare IP address: `a.b.c.d`, `a.b.c.d:port`, `[v6]`, `[v6]:port` or a bare IPv6
 * literal; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes IPv4 and IPv6 is lower-cased, so one client has one
 * spelling. Anything else (`unknown`, an obfuscated `_hidden` node, a host name) is not an address.
 */
export function canonicalAddress(entry: string): string | undefined {
  let address = entry;
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(entry);
  const ipv4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(entry);
  if (bracketed) [, address = '', port] = bracketed;
  else if (ipv4WithPort) [, address = '', port] = ipv4WithPort;
  if (port !== undefined && Number(port) > 65_535) return undefined;
  const family = isIP(address);
  if (family === 4) return address;
  if (family !== 6) return undefined;
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(lower);
  return mapped ? mapped[1] : lower;
}
