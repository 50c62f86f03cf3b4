import type { LedgerEntry } from '../ledger/ledger.js';
import type { UpstreamFetchEvent } from './upstreamTokens.js';

/**
 * The ledger row (`outcome: 'upstream'`) for one upstream fetch, kept apart from the `issued` rows of the
 * tokens served from it (docs/upstream.md#ledger-and-logs). Names the upstream origin and the secret's name, never the key or
 * the token. `status` is the upstream's last HTTP status, 0 when it never answered; `reason` the failure.
 *
 * @example
 * onFetch: (event) => void services.ledger.record(upstreamLedgerEntry(event)).catch(() => {}),
 */
export function upstreamLedgerEntry(event: UpstreamFetchEvent): LedgerEntry {
  return {
    time: event.time,
    flow: event.flow,
    outcome: 'upstream',
    status: event.status ?? 0,
    requestId: event.requestId ?? 'upstream-fetch',
    credentialId: event.secretName,
    audience: event.origin,
    expiresAt: event.expiresAt,
    reason: event.outcome === 'failed' ? (event.failure ?? 'unknown') : event.keyReread ? 'key_reread' : undefined,
  };
}
