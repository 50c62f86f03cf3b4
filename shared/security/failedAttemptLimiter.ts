import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

/**
 * Failed-attempt accounting (docs/failed-attempts.md). It is consulted only *after* a request was refused:
 * a presented credential is always verified first, and a request with the right key is never refused by
 * these limits. What the limits change is how a refusal is answered and recorded: once a client address or
 * an existing credential has failed more than its limit within the window, further refusals of unproven
 * credentials answer 429 + `Retry-After` instead of 401, and only the first of them in each window is logged
 * and ledgered, so a flood of wrong attempts costs a bounded amount of log and ledger volume.
 *
 * Per instance: every Functions instance counts on its own (limit × instances across a scaled-out app).
 *
 * Memory is bounded by `maxTrackedKeys` counters plus two shared overflow counters. Counters are kept in the
 * order their windows started, so expired ones are dropped from the front; a counter whose window is still
 * running is never evicted, whatever arrives. When the table is full of running windows, a new address or
 * credential is counted in the shared overflow counter of its kind until room frees up: a flood of new keys
 * can make other *wrong* attempts see 429 sooner, never erase an existing block, and never refuse a right key.
 * Keys are at most 80 characters (long ids are hashed). IPv6 clients are counted per /64, the block one
 * subscriber gets, so rotating addresses inside it does not reset the count.
 */
export interface FailedAttemptLimits {
  /** Refusals per client address within the window before that address's refusals turn into 429. */
  readonly perClientIp: number;
  /** Failed key checks per existing credential within the window before its refusals turn into 429. */
  readonly perCredential: number;
  readonly windowSeconds: number;
  readonly maxTrackedKeys: number;
}

/** What one refusal contributes to, as {@link FailedAttemptLimiter.recordRefusal} takes it. */
export interface RefusalFacts {
  /** The caller's address as the platform reports it; absent ⇒ no per-address counting at all. */
  readonly clientIp: string | undefined;
  /**
   * The id of a credential that exists (its record was found and the key did not match, or it is disabled).
   * Never an id that was only claimed: unknown ids must not create counters.
   */
  readonly existingCredentialId?: string | undefined;
}

/** How a recorded refusal should be answered. */
export interface RefusalVerdict {
  /** Seconds until the address or credential is below its limit again; 0 when neither is over it. */
  readonly retryAfterSeconds: number;
  /**
   * False for every over-limit refusal after the first in a window: those are answered without a log line or
   * ledger row (the first one stands for them, and {@link FailedAttemptLimiter.stats} counts them).
   */
  readonly report: boolean;
}

export interface FailedAttemptStats {
  /** Counters held now, overflow counters excluded (never more than `maxTrackedKeys`). */
  readonly trackedKeys: number;
  /** Refusals counted in an overflow counter because the table was full. */
  readonly overflowed: number;
  /** Over-limit refusals answered without a log line or ledger row. */
  readonly unreported: number;
}

interface Counter {
  readonly windowStartMs: number;
  failures: number;
  reported: boolean;
}

/** Longest key kept as is; longer credential ids are replaced by a digest. */
const MAX_KEY_LENGTH = 80;
const IP_OVERFLOW = 'overflow:ip';
const CREDENTIAL_OVERFLOW = 'overflow:credential';

export class FailedAttemptLimiter {
  /**
   * Insertion order is window-start order: a counter is only ever inserted when its window starts. A table of
   * counters, not of loaded values, so not a SingleFlightCache: its bound must never drop a running window (an
   * LRU would let a flood of new keys erase a block), which is why it has its own bound and overflow counters.
   */
  private readonly counters = new Map<string, Counter>();
  private readonly overflow = new Map<string, Counter>();
  private overflowed = 0;
  private unreported = 0;

  constructor(
    private readonly limits: FailedAttemptLimits,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /**
   * Counts one refusal against the caller's address and, when given, the existing credential, and says how
   * to answer it: `retryAfterSeconds > 0` when either is now over its limit.
   *
   * @example
   * const verdict = limiter.recordRefusal({ clientIp, existingCredentialId: 'contoso/owner' });
   * if (verdict.retryAfterSeconds > 0) answer429(verdict.retryAfterSeconds);
   */
  recordRefusal(facts: RefusalFacts): RefusalVerdict {
    const nowMs = this.clock().getTime();
    const over: Counter[] = [];
    const ip = ipKey(facts.clientIp);
    if (ip) this.count(ip, IP_OVERFLOW, this.limits.perClientIp, nowMs, over);
    const credential = credentialKey(facts.existingCredentialId);
    if (credential) this.count(credential, CREDENTIAL_OVERFLOW, this.limits.perCredential, nowMs, over);
    if (over.length === 0) return { retryAfterSeconds: 0, report: true };

    const windowMs = this.limits.windowSeconds * 1000;
    const endsMs = Math.max(...over.map((counter) => counter.windowStartMs + windowMs));
    const report = over.some((counter) => !counter.reported);
    for (const counter of over) counter.reported = true;
    if (!report) this.unreported += 1;
    return { retryAfterSeconds: Math.max(1, Math.ceil((endsMs - nowMs) / 1000)), report };
  }

  /** Seconds until `clientIp` is below its limit again, or 0 (for tests and diagnostics). */
  clientIpRetryAfter(clientIp: string | undefined): number {
    const key = ipKey(clientIp);
    return key ? this.retryAfter(this.counters.get(key), this.limits.perClientIp) : 0;
  }

  /** Seconds until `credentialId` is below its limit again, or 0 (for tests and diagnostics). */
  credentialRetryAfter(credentialId: string | undefined): number {
    const key = credentialKey(credentialId);
    return key ? this.retryAfter(this.counters.get(key), this.limits.perCredential) : 0;
  }

  stats(): FailedAttemptStats {
    return { trackedKeys: this.counters.size, overflowed: this.overflowed, unreported: this.unreported };
  }

  private count(key: string, overflowKey: string, limit: number, nowMs: number, over: Counter[]): void {
    const counter = this.counterFor(key, overflowKey, nowMs);
    counter.failures += 1;
    if (counter.failures > limit) over.push(counter);
  }

  /** The running counter of `key`, a new one when there is room, else the shared overflow counter. */
  private counterFor(key: string, overflowKey: string, nowMs: number): Counter {
    const existing = this.counters.get(key);
    if (existing && this.running(existing, nowMs)) return existing;
    if (existing) this.counters.delete(key);
    this.dropExpired(nowMs);
    if (this.counters.size < this.limits.maxTrackedKeys) {
      const fresh: Counter = { windowStartMs: nowMs, failures: 0, reported: false };
      this.counters.set(key, fresh);
      return fresh;
    }
    this.overflowed += 1;
    let shared = this.overflow.get(overflowKey);
    if (!shared || !this.running(shared, nowMs)) {
      shared = { windowStartMs: nowMs, failures: 0, reported: false };
      this.overflow.set(overflowKey, shared);
    }
    return shared;
  }

  private dropExpired(nowMs: number): void {
    for (const [key, counter] of this.counters) {
      if (this.running(counter, nowMs)) return; // the rest started later
      this.counters.delete(key);
    }
  }

  private running(counter: Counter, nowMs: number): boolean {
    return nowMs - counter.windowStartMs < this.limits.windowSeconds * 1000;
  }

  private retryAfter(counter: Counter | undefined, limit: number): number {
    const nowMs = this.clock().getTime();
    if (!counter || !this.running(counter, nowMs) || counter.failures <= limit) return 0;
    const endsMs = counter.windowStartMs + this.limits.windowSeconds * 1000;
    return Math.max(1, Math.ceil((endsMs - nowMs) / 1000));
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
