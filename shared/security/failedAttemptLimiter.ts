/**
 * Brute-force protection: counts failed attempts per client IP and per credential in a fixed window and
 * refuses further attempts (429 + Retry-After) once a limit is reached. Per instance: every Functions
 * instance counts on its own, so the effective limit across a scaled-out app is limit × instances.
 *
 * Memory is bounded: at most `maxTrackedKeys` counters (least recently touched evicted first), so a flood of
 * distinct IPs or made-up credential ids cannot exhaust memory.
 */
export interface FailedAttemptLimits {
  /** Failures per client IP within the window before that IP is refused. */
  readonly perClientIp: number;
  /** Failures per credential within the window before attempts on that credential are refused. */
  readonly perCredential: number;
  readonly windowSeconds: number;
  readonly maxTrackedKeys: number;
}

interface Counter {
  windowStartMs: number;
  failures: number;
}

export class FailedAttemptLimiter {
  private readonly counters = new Map<string, Counter>();

  constructor(
    private readonly limits: FailedAttemptLimits,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Seconds until `clientIp` may try again, or 0 when it is not blocked. */
  clientIpRetryAfter(clientIp: string | undefined): number {
    return clientIp ? this.retryAfter(`ip:${clientIp}`, this.limits.perClientIp) : 0;
  }

  /** Seconds until attempts on `credentialId` are accepted again, or 0 when it is not blocked. */
  credentialRetryAfter(credentialId: string | undefined): number {
    return credentialId ? this.retryAfter(`cred:${credentialId.toLowerCase()}`, this.limits.perCredential) : 0;
  }

  /** Records one failed attempt (a 401 or 403) for the client IP and, when known, the credential. */
  recordFailure(clientIp: string | undefined, credentialId: string | undefined): void {
    if (clientIp) this.increment(`ip:${clientIp}`);
    if (credentialId) this.increment(`cred:${credentialId.toLowerCase()}`);
  }

  /** How many counters are held (for tests and the benchmark). */
  get trackedKeys(): number {
    return this.counters.size;
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
