import type { UpstreamSource } from '../credentials/records.js';
import { DependencyUnavailableError } from '../errors.js';
import { flowNames, type UpstreamFlow } from '../flowCatalogue.js';
import { describeError, redact } from '../logging/redact.js';
import type { UpstreamClient } from './upstreamClient.js';
import { UpstreamError, type UpstreamFailure } from './upstreamErrors.js';
import type { UpstreamFetch } from './upstreamFetch.js';
import { upstreamFetchers, type UpstreamFetchers } from './upstreamFetchers.js';
import { azureHostPolicy, checkUpstreamEndpoint, type UpstreamHostPolicy } from './upstreamHosts.js';
import { capLifetime } from './upstreamLifetimes.js';
import { withKeyReread, type ReadUpstreamSecret } from './upstreamSecret.js';
import type { UpstreamToken } from './upstreamToken.js';
import {
  UpstreamTokenCache,
  type ServedUpstreamToken,
  type UpstreamCallPermit,
  type UpstreamTokenCacheOptions,
} from './upstreamTokenCache.js';

export type { UpstreamFlow };

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
  /**
   * Where keys may go (docs/upstream.md#hosts). Default: the documented Azure hosts. Only tests pass another, to
   * reach a loopback stand-in; no setting can.
   */
  readonly hostPolicy?: UpstreamHostPolicy;
}

/** Context a flow passes along: the request (for the fetch event) and our credential (its own cache entries). */
export interface UpstreamCallContext {
  readonly requestId?: string | undefined;
  /** Our credential the token is for: its cache entries are bounded and evicted apart from other credentials'. */
  readonly credentialId?: string | undefined;
}

/** What `flow` passes besides the upstream source (`undefined`: nothing), from its declared upstream fetch. */
export type UpstreamRequestOf<F extends UpstreamFlow> =
  UpstreamFetchers[F] extends UpstreamFetch<string, infer R> ? R : never;

/** The `UpstreamTokens` method each upstream flow's fetcher declares (`method` in `./upstreamFetchers.ts`). */
type UpstreamMethods = {
  readonly [F in UpstreamFlow as UpstreamFetchers[F]['method']]: [UpstreamRequestOf<F>] extends [undefined]
    ? (upstream: UpstreamSource, context?: UpstreamCallContext) => Promise<ServedUpstreamToken>
    : (
        upstream: UpstreamSource,
        request: UpstreamRequestOf<F>,
        context?: UpstreamCallContext,
      ) => Promise<ServedUpstreamToken>;
};

/** One token of an upstream flow, by flow name: what the per-flow methods call. */
export type UpstreamTokenOf = <F extends UpstreamFlow>(
  flow: F,
  upstream: UpstreamSource,
  request: UpstreamRequestOf<F>,
  context?: UpstreamCallContext,
) => Promise<ServedUpstreamToken>;

/**
 * What each flow calls in upstream mode. Every method returns the token to pass on in the flow's own wire
 * shape, reusing a cached one while it is fresh, and rejects only with `DependencyUnavailableError`
 * (→ 503 + `Retry-After`): the client's own credential was already accepted, so an upstream refusal, even a
 * 401 that survives a key re-read, is our outage, not the client's mistake.
 *
 * There is one method per upstream flow, named by its declaration: `mixedRealityToken(upstream)` (the
 * secret holds `accountId:accountKey`), `cognitiveToken(upstream)` and
 * `limitedAccessToken(upstream, { targetResourceId, featureFlags, expiredTimeSeconds })` (the resource key;
 * the lifetime is rounded down to one of nine values, so that different requests share one token), and `wrapToken(upstream, { issuerName, scope })` (the issuer password; answer with
 * `wrap_access_token=<encoded>&wrap_access_token_expires_in=<remainingSeconds(expiresAt, now)>`).
 */
export type UpstreamTokens = UpstreamMethods & {
  /** The same as the per-flow methods, by flow name. */
  readonly token: UpstreamTokenOf;
  close(): Promise<void>;
};

/** The flows that declare an upstream fetch, in catalogue order. */
export const upstreamFlows = flowNames.filter((flow): flow is UpstreamFlow => flow in upstreamFetchers);

/**
 * The per-flow methods of {@link UpstreamTokens}, each calling `token` with its flow's name: built from the
 * catalogue, so a new upstream flow gets its method from its declaration alone.
 */
export function upstreamMethods(token: UpstreamTokenOf): UpstreamMethods {
  const methods: Record<string, unknown> = {};
  for (const flow of upstreamFlows) {
    const { method, takesRequest } = upstreamFetchers[flow];
    methods[method] = takesRequest
      ? (upstream: UpstreamSource, request: never, context?: UpstreamCallContext) =>
          token(flow, upstream, request, context)
      : (upstream: UpstreamSource, context?: UpstreamCallContext) => token(flow, upstream, undefined as never, context);
  }
  // Built from the same fetcher entries the mapped type reads, one method per upstream flow.
  return methods as UpstreamMethods;
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
  const hostPolicy = options.hostPolicy ?? azureHostPolicy;
  const log = options.log ?? (() => {});
  const cache =
    options.cache instanceof UpstreamTokenCache ? options.cache : new UpstreamTokenCache({ ...options.cache, clock });

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
    declared: Pick<UpstreamFetch<string, never>, 'service' | 'credentialKind'>,
    upstream: UpstreamSource,
    context: UpstreamCallContext | undefined,
    permit: UpstreamCallPermit,
    attempt: (endpoint: URL, secret: string, now: Date) => Promise<UpstreamToken>,
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
      // Checked again before every call, before the key is even read: a record edited by hand cannot send it elsewhere.
      const endpoint = checkUpstreamEndpoint(declared.service, upstream.endpoint, hostPolicy);
      const { value, keyReread } = await withKeyReread(
        countingReader,
        upstream.secretName,
        declared.credentialKind,
        async (secret) => {
          try {
            const token = await attempt(endpoint, secret, clock());
            attemptsSeen.push(token.attempts);
            return token;
          } catch (error) {
            attemptsSeen.push(error instanceof UpstreamError ? error.attempts : 0);
            throw error;
          }
        },
        () => permit.mayReread(),
      );
      const time = clock();
      log(
        redact(
          `upstream ${flow} ${origin} fetched (attempts=${sum(attemptsSeen)} keyReread=${keyReread}) expires ${value.expiresAt.toISOString()}`,
        ),
      );
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
        error instanceof UpstreamError
          ? error.failure
          : error instanceof DependencyUnavailableError
            ? 'secret-store'
            : undefined;
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

  const token: UpstreamTokenOf = (flow, upstream, request, context) => {
    // Seen through the common shape: `request` is exactly what this flow's own fetch declares.
    const declared = upstreamFetchers[flow] as UpstreamFetch<string, typeof request>;
    const slot = {
      realKey: upstream.secretName.toLowerCase(), // Key Vault names are case-insensitive: one key, one budget
      credential: context?.credentialId ?? '',
      entry: [flow, normalizeEndpoint(upstream.endpoint), ...declared.cacheKey(request)].join('\n'),
    };
    return cache.get(slot, (permit) =>
      fetchReported(flow, declared, upstream, context, permit, async (endpoint, secret, now) => {
        const fetched = await declared.fetch(
          { client, endpoint, admit: () => permit.take() },
          upstream.secretName,
          secret,
          request,
          now,
        );
        return capLifetime(fetched, clock(), declared.maxLifetimeSeconds(request), endpoint.origin);
      }),
    );
  };

  return {
    ...upstreamMethods(token),
    token,
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
