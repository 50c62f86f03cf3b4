import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { SingleFlightCache, type Cached } from '../caching/singleFlightCache.js';
import type { LedgerAddressMode } from '../config.js';
import type { SecretStore } from '../secrets/secretStore.js';

/**
 * What a ledger row keeps of the client address (`STS_LEDGER_CLIENT_ADDRESS`, docs/ledger.md "Client
 * addresses"). The full address is only ever in memory (the failed-attempt limits count on it); the row gets:
 *
 * - `full`: the address as the request had it, e.g. `203.0.113.7`;
 * - `truncated` (default): its network, IPv4 /24 or IPv6 /48, e.g. `203.0.113.0/24`, `2001:db8:1::/48`;
 * - `keyed-hash`: `hmac:` and 22 base64url characters (128 bits) of HMAC-SHA256 under the secret
 *   {@link LEDGER_ADDRESS_KEY_SECRET}, so rows from one address still group together, and whoever holds the key
 *   can test a given address, while the table alone names none.
 */

/** The secret store name of the `keyed-hash` key (Key Vault in Azure, `.sts/secrets.json` locally). */
export const LEDGER_ADDRESS_KEY_SECRET = 'sts-ledger-address-key';
/** Shortest key accepted: 32 characters (a random base64 value of 24 bytes or more). */
export const MIN_ADDRESS_KEY_CHARS = 32;

/** `203.0.113.7` → `203.0.113.0/24`; `2001:db8:1:2::7` → `2001:db8:1::/48`; undefined when not an IP address. */
export function truncatedAddress(address: string): string | undefined {
  const kind = isIP(address);
  if (kind === 4) return `${address.slice(0, address.lastIndexOf('.'))}.0/24`; // a valid IPv4 has exactly three dots
  if (kind !== 6) return undefined;
  const groups = ipv6Groups(address);
  if (!groups) return undefined;
  const network = groups.slice(0, 3).map((group) => group.toString(16));
  // Trailing zero groups fold into `::` as the canonical form would have it (2001:db8:0::/48 → 2001:db8::/48).
  while (network.length > 0 && network[network.length - 1] === '0') network.pop();
  return `${network.join(':')}::/48`;
}

/** `hmac:<22 base64url characters>`: the first 128 bits of HMAC-SHA256(key, address). */
export function keyedAddressHash(address: string, key: string): string {
  return `hmac:${createHmac('sha256', key).update(address.toLowerCase(), 'utf8').digest().subarray(0, 16).toString('base64url')}`;
}

/**
 * The stored form of `address` under `mode`; `key` is needed for `keyed-hash` only. A value that is not an IP
 * address (the app only passes canonical ones) is not stored in the reduced modes.
 */
export function storedAddress(address: string, mode: LedgerAddressMode, key?: string): string | undefined {
  switch (mode) {
    case 'full':
      return address;
    case 'truncated':
      return truncatedAddress(address);
    case 'keyed-hash':
      if (key === undefined) throw new Error('keyed-hash needs the address key');
      return isIP(address) ? keyedAddressHash(address, key) : undefined;
  }
}

/** How long the `keyed-hash` key is held in memory before it is read again (a new key shows within this). */
const KEY_MAX_AGE_MS = 5 * 60_000;

/**
 * What the ledger's rows keep of a client address, applied as each row is made: `prepare()` first (it reads the
 * `keyed-hash` key, once per 5 minutes, and rejects when it is missing or short), then `store(address)`.
 */
export interface AddressForm {
  readonly mode: LedgerAddressMode;
  prepare(): Promise<void>;
  readonly store: (address: string) => string | undefined;
}

/**
 * The {@link AddressForm} of `mode`; `secrets` holds the `keyed-hash` key ({@link LEDGER_ADDRESS_KEY_SECRET}).
 *
 * @example
 * const form = addressForm('truncated');
 * form.store('203.0.113.7'); // '203.0.113.0/24'
 */
export function addressForm(
  mode: LedgerAddressMode,
  secrets?: SecretStore,
  clock: () => number = Date.now,
): AddressForm {
  if (mode !== 'keyed-hash') {
    return { mode, prepare: () => Promise.resolve(), store: (address) => storedAddress(address, mode) };
  }
  // The key in the shared cache: one read at a time, fresh for KEY_MAX_AGE_MS; the last key read stays held
  // (no stale deadline) for `store`, and `prepare` reads again once it is no longer fresh.
  const keys = new SingleFlightCache<'key', string>({ maxEntries: 1, now: clock });
  const read = async (): Promise<Cached<string>> => {
    const secret = await secrets?.getSecret(LEDGER_ADDRESS_KEY_SECRET);
    if (!secret || secret.value.length < MIN_ADDRESS_KEY_CHARS) {
      throw new Error(
        `secret ${LEDGER_ADDRESS_KEY_SECRET} is missing or shorter than ${MIN_ADDRESS_KEY_CHARS} characters`,
      );
    }
    return { value: secret.value, freshUntilMs: clock() + KEY_MAX_AGE_MS, staleUntilMs: Number.POSITIVE_INFINITY };
  };
  return {
    mode,
    prepare: () => {
      const held = keys.peek('key');
      if (held && clock() < held.freshUntilMs) return Promise.resolve();
      return keys.refresh('key', read).then(() => undefined);
    },
    store: (address) => {
      const key = keys.peek('key');
      if (!key) throw new Error('the ledger address key is not loaded');
      return storedAddress(address, 'keyed-hash', key.value);
    },
  };
}

/** The eight 16-bit groups of an IPv6 address (an embedded IPv4 tail counts as two), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.toLowerCase().replace(/%.*$/, '');
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string | undefined): number[] =>
    part ? part.split(':').map((group) => parseInt(group, 16)) : [];
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  const groups =
    halves.length === 2 ? [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail] : head;
  return groups.length === 8 && groups.every((group) => Number.isInteger(group) && group >= 0 && group <= 0xffff)
    ? groups
    : undefined;
}
