import { SingleFlightCache } from '../caching/singleFlightCache.js';
import { DependencyUnavailableError } from '../errors.js';
import { AuthorityFetchError, fetchAuthorityDocument, type AuthorityDocumentFetch } from './authorityDocuments.js';

/** A public signing key as the authority's JWKS lists it (only the members signature checks read). */
export interface AuthorityJwk {
  readonly kid: string;
  readonly kty: 'RSA' | 'EC';
  readonly alg?: string;
  readonly n?: string;
  readonly e?: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
}

export interface AuthorityKeysOptions {
  /** The issuer; its discovery document is `<authority>/.well-known/openid-configuration`. */
  readonly authority: string;
  readonly clock: () => Date;
  /** How long a fetched key set is fresh (then the next request refetches). */
  readonly maxAgeMs?: number;
  /**
   * Least time between two fetches the STS starts: after a success (a token naming an unknown `kid` refetches
   * at most this often) and after a failure (an unreachable authority is retried at most this often).
   */
  readonly cooldownMs?: number;
  /** How long past its max age a key set still serves while the authority cannot be reached. */
  readonly maxStaleMs?: number;
  readonly timeoutMs?: number;
  /** The HTTPS reader (tests inject one that counts or fails). */
  readonly fetchDocument?: AuthorityDocumentFetch;
}

const MINUTE_MS = 60_000;
/** More keys than any authority publishes; a larger set is cut, so a hostile JWKS cannot fill memory. */
const MAX_KEYS = 100;
const MAX_KID_LENGTH = 256;

type KeySet = ReadonlyMap<string, AuthorityJwk>;
/** The cache holds one key set, the authority's. */
const KEY_SET = 'jwks';

/**
 * The authority's signing keys, cached the way jose's remote JWKS caches them (max age, cooldown, one fetch
 * in flight, refetch on an unknown `kid`) in the shared {@link SingleFlightCache}, with the clock injected
 * and two additions the STS needs:
 *
 * - a failed fetch starts the cooldown too, so an unreachable authority is asked at most once per cooldown
 *   however many requests arrive, and nothing a client sends (random `kid`s included) can raise that rate;
 * - when a refresh fails, the keys already held keep serving (up to `maxStaleMs` past their max age); only a
 *   request that needs a key we do not hold (cold start, or a `kid` we cannot rule out) gets 503 +
 *   `Retry-After` (a {@link DependencyUnavailableError}), because refusing it as a bad token could be wrong.
 *
 * Discovery is re-read with every key fetch: its `issuer` must equal the configured authority exactly and
 * its `jwks_uri` must be https.
 *
 * @example
 * const keys = new AuthorityKeys({ authority: 'https://login.microsoftonline.com/<tenant>/v2.0', clock: () => new Date() });
 * const jwk = await keys.keyFor(header.kid); // undefined: the authority does not publish this kid
 */
export class AuthorityKeys {
  private readonly maxAgeMs: number;
  private readonly cooldownMs: number;
  private readonly maxStaleMs: number;
  private readonly timeoutMs: number;
  private readonly fetchDocument: AuthorityDocumentFetch;
  private readonly keySets: SingleFlightCache<string, KeySet>;
  private lastAttemptMs: number | undefined;
  private lastAttemptFailed = false;

  constructor(private readonly options: AuthorityKeysOptions) {
    this.maxAgeMs = options.maxAgeMs ?? 60 * MINUTE_MS;
    this.cooldownMs = options.cooldownMs ?? MINUTE_MS;
    this.maxStaleMs = options.maxStaleMs ?? 24 * 60 * MINUTE_MS;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.fetchDocument = options.fetchDocument ?? fetchAuthorityDocument;
    this.keySets = new SingleFlightCache({ maxEntries: 1, now: () => this.nowMs() });
  }

  /** The key named `kid`, or undefined when the authority does not publish it. */
  async keyFor(kid: string): Promise<AuthorityJwk | undefined> {
    const held = this.keySets.peek(KEY_SET);
    const fresh = held !== undefined && this.nowMs() < held.freshUntilMs;
    if (!fresh || !held.value.has(kid)) await this.refreshUnlessCoolingDown();

    // Held keys serve until maxAgeMs + maxStaleMs after their fetch (peek drops them after).
    const current = this.keySets.peek(KEY_SET);
    if (current) {
      const key = current.value.get(kid);
      if (key) return key;
      // The last fetch failed: the kid may be a new key we could not see. Say so, rather than refuse the token.
      if (!this.lastAttemptFailed) return undefined;
    }
    throw this.unavailable();
  }

  private async refreshUnlessCoolingDown(): Promise<void> {
    const joining = this.keySets.loading(KEY_SET);
    if (!joining) {
      if (this.lastAttemptMs !== undefined && this.nowMs() - this.lastAttemptMs < this.cooldownMs) return;
      this.lastAttemptMs = this.nowMs();
    }
    try {
      await this.keySets.refresh(KEY_SET, async () => {
        const keys = await this.fetchKeySet();
        const fetchedAtMs = this.nowMs();
        return {
          value: keys,
          freshUntilMs: fetchedAtMs + this.maxAgeMs,
          staleUntilMs: fetchedAtMs + this.maxAgeMs + this.maxStaleMs,
        };
      });
      this.lastAttemptFailed = false;
    } catch {
      // Not thrown: the caller decides from what is held (stale keys keep working).
      this.lastAttemptFailed = true;
    }
  }

  private async fetchKeySet(): Promise<KeySet> {
    const { authority } = this.options;
    const discovery = await this.fetchDocument(
      `${authority.replace(/\/+$/, '')}/.well-known/openid-configuration`,
      this.timeoutMs,
    );
    if (!isObject(discovery) || discovery.issuer !== authority) {
      throw new AuthorityFetchError('the discovery document does not name the configured authority as its issuer');
    }
    const jwksUri = discovery.jwks_uri;
    if (typeof jwksUri !== 'string' || !jwksUri.startsWith('https://'))
      throw new AuthorityFetchError('jwks_uri must be an https URL');
    const jwks = await this.fetchDocument(jwksUri, this.timeoutMs);
    if (!isObject(jwks) || !Array.isArray(jwks.keys)) throw new AuthorityFetchError('the JWKS has no keys array');
    const keys = new Map<string, AuthorityJwk>();
    for (const candidate of jwks.keys.slice(0, MAX_KEYS)) {
      const key = signingKeyOf(candidate);
      if (key && !keys.has(key.kid)) keys.set(key.kid, key);
    }
    return keys;
  }

  private unavailable(): DependencyUnavailableError {
    const sinceAttempt = this.lastAttemptMs === undefined ? this.cooldownMs : this.nowMs() - this.lastAttemptMs;
    const retryAfterSeconds = Math.max(1, Math.ceil((this.cooldownMs - sinceAttempt) / 1000));
    return new DependencyUnavailableError(
      'entra-authority',
      retryAfterSeconds,
      'the Microsoft Entra authority cannot be reached',
    );
  }

  private nowMs(): number {
    return this.options.clock().getTime();
  }
}

/** A JWKS entry usable for signatures: a `kid`, RSA or EC public members, `use` absent or `sig`. */
function signingKeyOf(value: unknown): AuthorityJwk | undefined {
  if (!isObject(value)) return undefined;
  const { kid, kty, use, alg } = value;
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH) return undefined;
  if (use !== undefined && use !== 'sig') return undefined;
  if (alg !== undefined && typeof alg !== 'string') return undefined;
  const text = (name: string): string | undefined => (typeof value[name] === 'string' ? value[name] : undefined);
  if (kty === 'RSA') {
    const n = text('n');
    const e = text('e');
    return n && e ? { kid, kty, n, e, ...(alg ? { alg } : {}) } : undefined;
  }
  if (kty === 'EC') {
    const crv = text('crv');
    const x = text('x');
    const y = text('y');
    return crv && x && y ? { kid, kty, crv, x, y, ...(alg ? { alg } : {}) } : undefined;
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
