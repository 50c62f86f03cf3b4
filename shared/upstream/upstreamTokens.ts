import type { UpstreamSource } from '../credentials/records.js';
import { DependencyUnavailableError } from '../errors.js';
import type { FlowName } from '../flowNames.js';
import { describeError, redact } from '../logging/redact.js';
import { fetchCognitiveToken } from './fetchCognitiveToken.js';
import { fetchLimitedAccessToken, type LimitedAccessTokenRequest } from './fetchLimitedAccessToken.js';
import { fetchMixedRealityToken } from './fetchMixedRealityToken.js';
import { fetchWrapToken, type WrapTokenRequest } from './fetchWrapToken.js';
import type { UpstreamClient } from './upstreamClient.js';
import { UpstreamError, type UpstreamFailure } from './upstreamErrors.js';
import { parseKeySecret, parseMixedRealitySecret, withKeyReread, type ReadUpstreamSecret } from './upstreamSecret.js';
import type { UpstreamToken } from './upstreamToken.js';
import { UpstreamTokenCache, type ServedUpstreamToken, type UpstreamTokenCacheOptions } from './upstreamTokenCache.js';

export type UpstreamFlow = Extract<FlowName, 'mixedRealityToken' | 'issueToken' | 'issueLimitedAccessToken' | 'wrapToken'>;

/** One call to an upstream STS, successful or not: what the ledger (`outcome: 'upstream'`) and logs record. */
export interface UpstreamFetchEvent {
  readonly time: Date;
  readonly flow: UpstreamFlow;
  /** `https://host[:port]` of the upstream; never a path, key or token. */
  readonly origin: string;
  /** The secret holding the real key (its name, never its value). */
  readonly secretName: string;
  readonly outcome: 'fetched' | 'failed';
  /** Upstream requests sent, retries and the post-rotation retry included. */
  readonly attempts: number;
  /** True when a 401 made us re-read the key from the store. */
  readonly keyReread: boolean;
  readonly expiresAt?: Date | undefined;
  readonly failure?: UpstreamFailure | 'secret-store' | undefined;
  /** HTTP status of the upstream's last answer, when it answered. */
  readonly status?: number | undefined;
  readonly durationMs: number;
  /** The request that triggered the fetch (others joined it). */
  readonly requestId?: string | undefined;
}

export interface UpstreamTokensOptions {
  readonly client: UpstreamClient;
  readonly readSecret: ReadUpstreamSecret;
  readonly clock: () => Date;
  /** A cache to share, or options for a new one (its clock is `clock`). */
  readonly cache?: UpstreamTokenCache | Omit<UpstreamTokenCacheOptions, 'clock'>;
  /** Receives one redacted line per upstream fetch and failure. */
  readonly log?: (line: string) => void;
  /** Called once per upstream fetch (not per served token); must not throw (errors are swallowed). */
  readonly onFetch?: (event: UpstreamFetchEvent) => void;
}

/** Context a flow passes along, for the fetch event. */
export interface UpstreamCallContext {
  readonly requestId?: string | undefined;
}

/**
 * What each flow calls in upstream mode (issue #10). Every method returns the token to pass on in the
 * flow's own wire shape, reusing a cached one while it is fresh, and rejects only with
 * `DependencyUnavailableError` (→ 503 + `Retry-After`): the client's own credential was already accepted,
 * so an upstream refusal, even a 401 that survives a key re-read, is our outage, not the client's mistake.
 */
export interface UpstreamTokens {
  /** Flow 1 (contracts.md §2): `{"AccessToken": token}`. The secret holds `accountId:accountKey`. */
  mixedRealityToken(upstream: UpstreamSource, context?: UpstreamCallContext): Promise<ServedUpstreamToken>;
  /** Flow 2 (§3): the bare JWT. The secret holds the resource key. */
  cognitiveToken(upstream: UpstreamSource, context?: UpstreamCallContext): Promise<ServedUpstreamToken>;
  /**
   * Flow 3 (§4): the bare JWT. The secret holds the ISV resource key. `expiredTimeSeconds` is rounded down
   * to a whole minute (at least 60) so that clients asking for slightly different lifetimes share one token.
   */
  limitedAccessToken(
    upstream: UpstreamSource,
    request: LimitedAccessTokenRequest,
    context?: UpstreamCallContext,
  ): Promise<ServedUpstreamToken>;
  /**
   * Flow 4 (§5): the single-encoded SWT; answer with
   * `wrap_access_token=<encoded>&wrap_access_token_expires_in=<remainingSeconds(expiresAt, now)>`.
   * The secret holds the issuer password; `issuerName` is the upstream's `wrap_name`.
   */
  wrapToken(upstream: UpstreamSource, request: WrapTokenRequest, context?: UpstreamCallContext): Promise<ServedUpstreamToken>;
  close(): Promise<void>;
}

/**
 * Creates the upstream token source: secret reader + upstream client + per-flow fetchers + token cache.
 *
 * @example
 * const upstream = createUpstreamTokens({ client: createUpstreamClient(), readSecret, clock: () => new Date() });
 * const { token } = await upstream.cognitiveToken(resource.upstream, { requestId });
 */
export function createUpstreamTokens(options: UpstreamTokensOptions): UpstreamTokens {
  const { client, readSecret, clock } = options;
  const log = options.log ?? (() => {});
  const cache = options.cache instanceof UpstreamTokenCache ? options.cache : new UpstreamTokenCache({ ...options.cache, clock });

  const emit = (event: UpstreamFetchEvent): void => {
    try {
      options.onFetch?.(event);
    } catch {
      // An observer must never turn a served token into an error.
    }
  };

  /** One upstream fetch with the key re-read on 401, logged and reported once. */
  const fetchReported = async (
    flow: UpstreamFlow,
    upstream: UpstreamSource,
    context: UpstreamCallContext | undefined,
    attempt: (secret: string, now: Date) => Promise<UpstreamToken>,
  ): Promise<UpstreamToken> => {
    const started = clock();
    const origin = originOf(upstream.endpoint);
    const attemptsSeen: number[] = [];
    const base = { flow, origin, secretName: upstream.secretName, requestId: context?.requestId };
    let freshReads = 0;
    const countingReader: ReadUpstreamSecret = (name, readOptions) => {
      if (readOptions.fresh) freshReads++;
      return readSecret(name, readOptions);
    };
    try {
      const { value, keyReread } = await withKeyReread(countingReader, upstream.secretName, async (secret) => {
        try {
          const token = await attempt(secret, clock());
          attemptsSeen.push(token.attempts);
          return token;
        } catch (error) {
          attemptsSeen.push(error instanceof UpstreamError ? error.attempts : 0);
          throw error;
        }
      });
      const time = clock();
      log(redact(`upstream ${flow} ${origin} fetched (attempts=${sum(attemptsSeen)} keyReread=${keyReread}) expires ${value.expiresAt.toISOString()}`));
      emit({
        ...base,
        time,
        outcome: 'fetched',
        attempts: sum(attemptsSeen),
        keyReread,
        expiresAt: value.expiresAt,
        status: 200,
        durationMs: time.getTime() - started.getTime(),
      });
      return value;
    } catch (error) {
      const time = clock();
      const failure =
        error instanceof UpstreamError ? error.failure : error instanceof DependencyUnavailableError ? 'secret-store' : undefined;
      log(redact(`upstream ${flow} ${origin} failed (attempts=${sum(attemptsSeen)}): ${describeError(error)}`));
      emit({
        ...base,
        time,
        outcome: 'failed',
        attempts: sum(attemptsSeen),
        keyReread: freshReads > 0,
        failure,
        status: error instanceof UpstreamError ? error.status : undefined,
        durationMs: time.getTime() - started.getTime(),
      });
      throw error;
    }
  };

  const keyOf = (flow: UpstreamFlow, upstream: UpstreamSource, ...shape: string[]): string =>
    [flow, normalizeEndpoint(upstream.endpoint), upstream.secretName, ...shape].join('\n');

  return {
    mixedRealityToken(upstream, context) {
      return cache.get(keyOf('mixedRealityToken', upstream), () =>
        fetchReported('mixedRealityToken', upstream, context, (secret, now) =>
          fetchMixedRealityToken(client, upstream.endpoint, parseMixedRealitySecret(upstream.secretName, secret), now),
        ),
      );
    },

    cognitiveToken(upstream, context) {
      return cache.get(keyOf('issueToken', upstream), () =>
        fetchReported('issueToken', upstream, context, (secret, now) =>
          fetchCognitiveToken(client, upstream.endpoint, parseKeySecret(upstream.secretName, secret), now),
        ),
      );
    },

    limitedAccessToken(upstream, request, context) {
      const expiredTimeSeconds = Math.max(60, Math.floor(request.expiredTimeSeconds / 60) * 60);
      const featureFlags = [...new Set(request.featureFlags)].sort();
      const shaped: LimitedAccessTokenRequest = { targetResourceId: request.targetResourceId, featureFlags, expiredTimeSeconds };
      const key = keyOf('issueLimitedAccessToken', upstream, request.targetResourceId.toLowerCase(), featureFlags.join(','), String(expiredTimeSeconds));
      return cache.get(key, () =>
        fetchReported('issueLimitedAccessToken', upstream, context, (secret, now) =>
          fetchLimitedAccessToken(client, upstream.endpoint, parseKeySecret(upstream.secretName, secret), shaped, now),
        ),
      );
    },

    wrapToken(upstream, request, context) {
      return cache.get(keyOf('wrapToken', upstream, request.issuerName, request.scope), () =>
        fetchReported('wrapToken', upstream, context, (secret, now) =>
          fetchWrapToken(client, upstream.endpoint, parseKeySecret(upstream.secretName, secret), request, now),
        ),
      );
    },

    close: () => client.close(),
  };
}

/** Whole seconds left before `expiresAt` (never negative): WRAP's `wrap_access_token_expires_in` for a served token. */
export function remainingSeconds(expiresAt: Date, now: Date): number {
  return Math.max(0, Math.floor((expiresAt.getTime() - now.getTime()) / 1000));
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function originOf(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return 'invalid-endpoint';
  }
}

function normalizeEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    return `${url.origin}${url.pathname.replace(/\/+$/, '').toLowerCase()}`;
  } catch {
    return endpoint;
  }
}
