/**
 * Where the client address comes from: the header the nearest trusted proxy writes, and how many entries at
 * its right end trusted proxies added. Read once from the settings `STS_CLIENT_ADDRESS_HEADER` and
 * `STS_TRUSTED_PROXY_HOPS` (shared/config.ts); the defaults are right for an app in Azure (docs/client-address.md).
 */
export interface ClientAddressRule {
  /** Lower-case header name; default `x-forwarded-for`. */
  readonly header: string;
  /** Entries appended by trusted proxies, counted from the right; default 1. The client's is the last of them. */
  readonly trustedHops: number;
}

export const DEFAULT_CLIENT_ADDRESS_RULE: ClientAddressRule = Object.freeze({
  header: 'x-forwarded-for',
  trustedHops: 1,
});
