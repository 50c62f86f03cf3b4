import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Who a secret-store read is done for: the client address of the request under way (as the failed-attempt
 * limiter keys it, IPv6 per /64), so the cache can share its per-instance vault read budget fairly between
 * clients (docs/failed-attempts.md, "Vault work"). Carried through awaits with `AsyncLocalStorage`, so the
 * flows and the credential directory need not pass it along.
 */
const requester = new AsyncLocalStorage<string>();

/**
 * Runs `work` with its secret-store reads attributed to `client` (undefined: unattributed, only the
 * instance-wide budget applies).
 *
 * @example
 * await withReadAttribution(ipKey(clientIp), () => spec.handle(invocation));
 */
export function withReadAttribution<T>(client: string | undefined, work: () => T): T {
  return client === undefined ? requester.exit(work) : requester.run(client, work);
}

/** The client the current read is done for, if any. */
export function currentReadRequester(): string | undefined {
  return requester.getStore();
}
