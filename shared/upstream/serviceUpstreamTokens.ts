import { DependencyUnavailableError } from '../errors.js';
import type { Ledger } from '../ledger/ledger.js';
import type { SecretStore } from '../secrets/secretStore.js';
import type { UpstreamClientOptions } from './upstreamClient.js';
import type { UpstreamHostPolicy } from './upstreamHosts.js';
import { upstreamLedgerEntry } from './upstreamLedgerEntry.js';
import { upstreamSecretReaderFor } from './upstreamSecret.js';
import type { UpstreamTokenCache } from './upstreamTokenCache.js';
import { createUpstreamTokens, upstreamMethods, type UpstreamTokenOf, type UpstreamTokens } from './upstreamTokens.js';

export interface ServiceUpstreamTokensOptions {
  /** The process's secret store (cached in front of Key Vault): real keys are read through it. */
  readonly secrets: SecretStore;
  readonly clock: () => Date;
  /** Receives one `outcome: 'upstream'` row per upstream fetch, best effort (never blocks a token). */
  readonly ledger: Ledger;
  /** Redacted lines about upstream fetches, retries and failures. Default: `console.log`. */
  readonly log?: (line: string) => void;
  /** Client settings (tests: a test CA or shorter timeouts). Default: production settings. */
  readonly client?: Omit<UpstreamClientOptions, 'log' | 'hostPolicy'>;
  /**
   * Where keys may go, for the token source and the client alike. Default: the documented Azure hosts
   * (docs/upstream.md#hosts). `services.ts` never passes one; only tests do, to reach a loopback stand-in.
   */
  readonly hostPolicy?: UpstreamHostPolicy;
  /** A cache to use (tests inspect or clear it). Default: a new one on `clock`. */
  readonly cache?: UpstreamTokenCache;
}

/**
 * The process's upstream token source (docs/upstream.md), as `services.upstream`: created on the first call, so
 * that `undici` and the connection pools are loaded only once a credential in upstream mode is served.
 * Real keys are read through `secrets`, and re-read past its cache after an upstream 401
 * ({@link upstreamSecretReaderFor}); every fetch is written to the ledger as an `upstream` row.
 * After `close()` (graceful shutdown) calls answer 503.
 *
 * @example
 * const upstream = createServiceUpstreamTokens({ secrets, clock, ledger });
 * const { token } = await upstream.cognitiveToken(resource.upstream, { requestId });
 */
export function createServiceUpstreamTokens(options: ServiceUpstreamTokensOptions): UpstreamTokens {
  const log = options.log ?? ((line: string) => console.log(line));
  let created: Promise<UpstreamTokens> | undefined;
  let closed = false;

  const instance = (): Promise<UpstreamTokens> => {
    if (closed) return Promise.reject(new DependencyUnavailableError('upstream', 5, 'upstream client is shut down'));
    created ??= (async () => {
      const { createUpstreamClient } = await import('./upstreamClient.js');
      return createUpstreamTokens({
        client: createUpstreamClient({
          ...options.client,
          log,
          ...(options.hostPolicy ? { hostPolicy: options.hostPolicy } : {}),
        }),
        ...(options.hostPolicy ? { hostPolicy: options.hostPolicy } : {}),
        readSecret: upstreamSecretReaderFor(options.secrets),
        clock: options.clock,
        log,
        ...(options.cache ? { cache: options.cache } : {}),
        onFetch: (event) => void options.ledger.record(upstreamLedgerEntry(event)).catch(() => {}),
      });
    })().catch((error: unknown) => {
      created = undefined; // a failed start is retried on the next call
      throw error;
    });
    return created;
  };

  const token: UpstreamTokenOf = async (flow, upstream, request, context) =>
    (await instance()).token(flow, upstream, request, context);
  return {
    ...upstreamMethods(token),
    token,
    async close() {
      closed = true;
      const pending = created;
      created = undefined;
      const tokens = await pending?.catch(() => undefined);
      await tokens?.close();
    },
  };
}
