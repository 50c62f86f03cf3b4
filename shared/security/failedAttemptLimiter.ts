import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { rateLimited, StsError } from '../errors.js';

/**
 * Brute-force protection: counts failed attempts (401/403) per client IP and per credential in a fixed window
 * and refuses further attempts (429 + Retry-After) once a limit is reached, before any key is looked up.
 *
 * Per instance: every Functions instance counts on its own, so across a scaled-out app the effective limit
 * is limit × instances. The point is to make guessing and vault-draining floods expensive, not to be an
 * exact global quota.
 *
 * Memory is bounded: at most `maxTrackedKeys` counters (least recently touched evicted first), and a key is
 * never longer than 80 characters (long credential ids are hashed), so a flood of distinct IPs or made-up
 * credential ids cannot exhaust memory. IPv6 clients are counted per /64, the block one subscriber gets, so
 * rotating addresses inside it does not reset the count.
 */
export interface FailedAttemptLimits {
  /** Failures per client IP within the window before that IP is refused. */
  readonly perClientIp: number;
  /** Failures per credential within the window before attempts on that credential are refused. */
  readonly perCredential: number;
  readonly windowSeconds: number;
  readonly maxTrackedKeys: number;
}

/**
 * What a flow calls right before it verifies a presented credential: throws a 429 {@link StsError} when the
 * caller's IP or `credentialId` is over its limit. `undefined` when the flow has no id before the lookup
 * (Cognitive keys arrive alone): then only the client IP is checked.
 */
export type AttemptAdmission = (credentialId: string | undefined) => void;

interface Counter {
  windowStartMs: number;
  failures: number;
}

/** Longest key kept as is; longer credential ids are replaced by a digest. */
const MAX_KEY_LENGTH = 80;

export class FailedAttemptLimiter {
  private readonly counters = new Map<string, Counter>();
  private evicted = 0;

  constructor(
    private readonly limits: FailedAttemptLimits,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Seconds until `clientIp` may try again, or 0 when it is not blocked. */
  clientIpRetryAfter(clientIp: string | undefined): number {
    const key = ipKey(clientIp);
    return key ? this.retryAfter(key, this.limits.perClientIp) : 0;
  }

  /** Seconds until attempts on `credentialId` are accepted again, or 0 when it is not blocked. */
  credentialRetryAfter(credentialId: string | undefined): number {
    const key = credentialKey(credentialId);
    return key ? this.retryAfter(key, this.limits.perCredential) : 0;
  }

  /**
   * Throws the 429 refusal (`Retry-After` = the longer of the two waits) when `clientIp` or `credentialId` is
   * blocked; returns quietly otherwise. The refusal names the credential for the ledger, never a key.
   *
   * @example
   * limiter.admit(clientIp, accountId); // before verifyAccountKey
   */
  admit(clientIp: string | undefined, credentialId: string | undefined): void {
    const wait = Math.max(this.clientIpRetryAfter(clientIp), this.credentialRetryAfter(credentialId));
    if (wait <= 0) return;
    const template = rateLimited(wait);
    throw new StsError(template.code, template.status, template.publicMessage, {
      retryAfterSeconds: wait,
      reason: 'rate_limited',
      ...(credentialId ? { credentialId: credentialId.slice(0, 200) } : {}),
    });
  }

  /** Records one failed attempt (a 401 or 403) for the client IP and, when known, the credential. */
  recordFailure(clientIp: string | undefined, credentialId: string | undefined): void {
    const ip = ipKey(clientIp);
    const credential = credentialKey(credentialId);
    if (ip) this.increment(ip);
    if (credential) this.increment(credential);
  }

  /** How many counters are held (never more than `maxTrackedKeys`). */
  get trackedKeys(): number {
    return this.counters.size;
  }

  /** Counters dropped to stay within `maxTrackedKeys` since start. */
  get evictions(): number {
    return this.evicted;
  }

  private retryAfter(key: string, limit: number): number {
    const counter = this.current(key);
    if (!counter || counter.failures < limit) return 0;
    const endsMs = counter.windowStartMs + this.limits.windowSeconds * 1000;
    return Math.max(1, Math.ceil((endsMs - this.clock().getTime()) / 1000));
  }

  private increment(key: string): void {
    const nowMs = this.clock().getTime();
    const counter = this.current(key) ?? { windowStartMs: nowMs, failures: 0 };
    counter.failures += 1;
    this.counters.delete(key); // re-insert: Map order is the LRU order
    this.counters.set(key, counter);
    while (this.counters.size > this.limits.maxTrackedKeys) {
      const oldest = this.counters.keys().next().value;
      if (oldest === undefined) break;
      this.counters.delete(oldest);
      this.evicted += 1;
    }
  }

  private current(key: string): Counter | undefined {
    const counter = this.counters.get(key);
    if (!counter) return undefined;
    if (this.clock().getTime() - counter.windowStartMs >= this.limits.windowSeconds * 1000) {
      this.counters.delete(key);
      return undefined;
    }
    return counter;
  }
}

function credentialKey(credentialId: string | undefined): string | undefined {
  if (!credentialId) return undefined;
  const id = credentialId.toLowerCase();
  return id.length + 5 <= MAX_KEY_LENGTH ? `cred:${id}` : `cred#${createHash('sha256').update(id).digest('base64url')}`;
}

/**
 * The counter key of a client address: IPv4 as is (also when written as IPv4-mapped IPv6), IPv6 as its /64
 * prefix, anything else (should the platform hand over something odd) bounded in length.
 */
export function ipKey(clientIp: string | undefined): string | undefined {
  if (!clientIp) return undefined;
  const address = clientIp.trim();
  if (address === '') return undefined;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1] && isIPv4(mapped[1])) return `ip:${mapped[1]}`;
  if (isIPv4(address)) return `ip:${address}`;
  const withoutZone = address.replace(/%.*$/, '');
  if (isIPv6(withoutZone)) {
    const groups = expandIpv6(withoutZone);
    if (groups) return `ip6:${groups.slice(0, 4).join(':')}::/64`;
  }
  return `ip?${createHash('sha256').update(address).digest('base64url')}`;
}

/** The eight 16-bit groups of a valid IPv6 address (as checked by `isIPv6`), lower-case hex without zeros. */
function expandIpv6(address: string): string[] | undefined {
  let text = address.toLowerCase();
  const embedded = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (embedded?.[1]) {
    const bytes = embedded[1].split('.').map(Number);
    const high = (((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0)).toString(16);
    const low = (((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0)).toString(16);
    text = `${text.slice(0, -embedded[1].length)}${high}:${low}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const groups = [...left, ...Array.from({ length: tail === undefined ? 0 : missing }, () => '0'), ...right];
  return groups.map((group) => Number.parseInt(group, 16).toString(16));
}
