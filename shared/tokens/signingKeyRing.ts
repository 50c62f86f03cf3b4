import { SingleFlightCache, type Cached } from '../caching/singleFlightCache.js';
import type { StsConfig } from '../config.js';
import { vaultLayout } from '../credentials/vaultLayout.js';
import { DependencyUnavailableError } from '../errors.js';
import { describeError } from '../logging/redact.js';
import type { SecretStore, SecretVersion } from '../secrets/secretStore.js';
import { parseSigningJwk, type PublicSigningJwk, type SigningKeyMaterial } from './signingKeyMaterial.js';

/** `Cache-Control: max-age` of the JWKS document; a new key is published at least this long before it signs. */
export const JWKS_MAX_AGE_SECONDS = 300;
/** Longest lifetime of any token we sign (Mixed Reality and the Face LAT maximum, docs/contracts/mixed-reality-sts.md#token, docs/contracts/cognitive-limited-access-token.md#request). */
export const LONGEST_TOKEN_LIFETIME_SECONDS = 86_400;
/** Clock difference we allow verifiers, added to every retention window. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 300;

/** The one key of the ring's cache. */
const RING = 'ring';

/** One enabled, parseable version of `sts-signing-key`. */
export interface RingKey extends SigningKeyMaterial {
  /** The secret version id (never secret itself). */
  readonly version: string;
  readonly createdOn: Date;
}

/** The keys in force at one instant. */
export interface RingView {
  /** The key that signs now, or undefined when no enabled key is usable. */
  readonly signing: RingKey | undefined;
  /** Every key whose tokens may still be live, the signing key first, then newest first. */
  readonly verifying: readonly RingKey[];
}

/** A JWK Set as served at `/.well-known/jwks.json` (RFC 7517 §5): public members only. */
export interface PublicJwkSet {
  readonly keys: readonly PublicSigningJwk[];
}

export interface SigningKeyRingOptions {
  readonly secrets: SecretStore;
  readonly clock?: () => Date;
  /** Re-read the versions at most this often (`config.secretCache.maxAgeSeconds`). */
  readonly maxAgeSeconds: number;
  /** How long after a store error to try again while serving the last good ring (default min(30, maxAge)). */
  readonly retryAfterErrorSeconds?: number;
  /** Default {@link LONGEST_TOKEN_LIFETIME_SECONDS}. */
  readonly longestTokenLifetimeSeconds?: number;
  /** Default {@link DEFAULT_CLOCK_SKEW_SECONDS}. */
  readonly clockSkewSeconds?: number;
  /**
   * How long a brand-new version is published in the JWKS before it signs. Default `maxAgeSeconds +
   * JWKS_MAX_AGE_SECONDS`: by then every instance has re-read the store and every cached JWKS has expired,
   * so no verifier meets an unknown `kid`. A new key signs at once when no older key can.
   */
  readonly publishBeforeUseSeconds?: number;
  /**
   * Told when the ring degrades, once per episode and never with key material: the store failed and the
   * last good ring serves on (again only after a successful read, which is reported too), or an enabled
   * version is not a usable key and is skipped (again only if it is disabled and enabled anew).
   */
  readonly onProblem?: (message: string) => void;
}

interface LoadedVersion {
  readonly key: RingKey;
  readonly activeFromMs: number;
  readonly expiresOnMs: number;
}

/**
 * The JWT signing key ring (docs/verifying-tokens.md#key-rotation): every enabled version of `sts-signing-key` read through the
 * {@link SecretStore}; the newest published one signs, every version that may still have live tokens
 * verifies, and only public members ever leave the process.
 *
 * Lifecycle of a version (times from its `createdOn`, or `notBefore` when later):
 * - published in the JWKS as soon as the ring reads it;
 * - signs from `publishBeforeUseSeconds` later (immediately when no older key is usable);
 * - superseded when a newer version starts signing (or at its own `expiresOn`);
 * - retired from the JWKS `longestTokenLifetimeSeconds + clockSkewSeconds` after that;
 * - a disabled version never signs nor appears.
 *
 * Rotation needs no restart: the versions are re-read at most every `maxAgeSeconds`, one reload in flight,
 * and on a store error the last good ring keeps serving (tried again after `retryAfterErrorSeconds`). The
 * ring is held in the shared {@link SingleFlightCache} (one entry): one reload at a time, and its freshness.
 *
 * @example
 * const ring = new SigningKeyRing({ secrets, maxAgeSeconds: config.secretCache.maxAgeSeconds });
 * const { signing } = await ring.view();
 * const jwks = await ring.publicJwkSet(); // { keys: [{ kty, crv, x, y, kid, alg, use }] }
 */
export class SigningKeyRing {
  private readonly clock: () => Date;
  private readonly maxAgeMs: number;
  private readonly retryAfterErrorMs: number;
  private readonly retentionMs: number;
  private readonly publishBeforeUseMs: number;
  private readonly ring: SingleFlightCache<typeof RING, readonly LoadedVersion[]>;
  /**
   * Parsed keys by version id: values are immutable per version, so each is parsed once. Not a cache of its
   * own: rebuilt from each read of the versions, so it holds exactly the versions the store listed last.
   */
  private parsed = new Map<string, Promise<SigningKeyMaterial>>();
  /** The last read of the store failed: its failure has been reported, and its recovery will be. */
  private storeFailing = false;
  /** Enabled versions found unusable at the last read, each reported once. */
  private unusable = new Set<string>();
  /** The last selection, valid for `versions` while `fromMs <= now < untilMs` (see `select`). */
  private selection:
    { versions: readonly LoadedVersion[]; fromMs: number; untilMs: number; view: RingView } | undefined;

  constructor(private readonly options: SigningKeyRingOptions) {
    this.clock = options.clock ?? (() => new Date());
    this.maxAgeMs = options.maxAgeSeconds * 1000;
    this.retryAfterErrorMs = (options.retryAfterErrorSeconds ?? Math.min(30, options.maxAgeSeconds)) * 1000;
    this.retentionMs =
      ((options.longestTokenLifetimeSeconds ?? LONGEST_TOKEN_LIFETIME_SECONDS) +
        (options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS)) *
      1000;
    this.publishBeforeUseMs = (options.publishBeforeUseSeconds ?? options.maxAgeSeconds + JWKS_MAX_AGE_SECONDS) * 1000;
    this.ring = new SingleFlightCache({ maxEntries: 1, now: () => this.clock().getTime() });
  }

  /**
   * The signing and verifying keys at `now` (default: the ring's clock). Throws
   * {@link DependencyUnavailableError} only when the store has never been read successfully.
   */
  async view(now: Date = this.clock()): Promise<RingView> {
    return this.select(await this.versions(), now.getTime());
  }

  /** The key that signs now. Throws {@link DependencyUnavailableError} when there is none. */
  async signingKey(now: Date = this.clock()): Promise<RingKey> {
    // Once per token: a current ring is used as it is, without the promise hops of a reload check.
    const held = this.ring.peek(RING);
    const fresh = held !== undefined && this.clock().getTime() < held.freshUntilMs;
    const { signing } = this.select(fresh ? held.value : await this.versions(), now.getTime());
    if (!signing) throw new DependencyUnavailableError('secret-store', 30, 'No signing key is available');
    return signing;
  }

  /**
   * {@link selectKeys}, remembered: the selection only changes when `nowMs` crosses one of the versions'
   * instants (active from, ready, expiry, retirement), so one view serves every token between two of them.
   */
  private select(versions: readonly LoadedVersion[], nowMs: number): RingView {
    const memo = this.selection;
    if (memo && memo.versions === versions && memo.fromMs <= nowMs && nowMs < memo.untilMs) return memo.view;
    const view = selectKeys(versions, nowMs, this.publishBeforeUseMs, this.retentionMs);
    let fromMs = Number.NEGATIVE_INFINITY;
    let untilMs = Number.POSITIVE_INFINITY;
    for (const instant of selectionInstants(versions, this.publishBeforeUseMs, this.retentionMs)) {
      if (instant <= nowMs) fromMs = Math.max(fromMs, instant);
      else untilMs = Math.min(untilMs, instant);
    }
    this.selection = { versions, fromMs, untilMs, view };
    return view;
  }

  /** The public half of every verifying key, signing key first: the `keys` of the published JWK Set. */
  async publicJwks(now: Date = this.clock()): Promise<readonly PublicSigningJwk[]> {
    const { verifying } = await this.view(now);
    return verifying.map((key) => key.publicJwk);
  }

  /** The JWK Set document to publish at `/.well-known/jwks.json` (RFC 7517 §5). */
  async publicJwkSet(now: Date = this.clock()): Promise<PublicJwkSet> {
    return { keys: await this.publicJwks(now) };
  }

  private versions(): Promise<readonly LoadedVersion[]> {
    return this.ring.get(RING, () => this.reload());
  }

  /** The versions read now; after a store error, the last good ring again, fresh until the retry. */
  private async reload(): Promise<Cached<readonly LoadedVersion[]>> {
    let versions: readonly SecretVersion[];
    try {
      versions = await this.options.secrets.getSecretVersions(vaultLayout.signingKey);
    } catch (error) {
      const last = this.ring.peek(RING);
      if (last) {
        if (!this.storeFailing) {
          this.options.onProblem?.(
            `signing keys: store unavailable (${describeError(error)}); serving the last good ring until it answers`,
          );
        }
        this.storeFailing = true;
        const retryAtMs = this.clock().getTime() + this.retryAfterErrorMs;
        return { value: last.value, freshUntilMs: retryAtMs, staleUntilMs: Number.POSITIVE_INFINITY };
      }
      // Never read: every caller gets the 503 (and the function wrapper logs each one); nothing served stale.
      throw new DependencyUnavailableError('secret-store', 30, 'The signing keys cannot be read', { cause: error });
    }
    if (this.storeFailing) this.options.onProblem?.('signing keys: store answering again; the ring is current');
    this.storeFailing = false;
    const loaded: LoadedVersion[] = [];
    const parsed = new Map<string, Promise<SigningKeyMaterial>>();
    const unusable = new Set<string>();
    for (const version of versions) {
      if (!version.enabled) continue;
      const material = this.parsed.get(version.version) ?? parseSigningJwk(version.value);
      parsed.set(version.version, material);
      try {
        const key: RingKey = { ...(await material), version: version.version, createdOn: version.createdOn };
        const createdMs = version.createdOn.getTime();
        loaded.push({
          key,
          activeFromMs: Math.max(createdMs, version.notBefore?.getTime() ?? createdMs),
          expiresOnMs: version.expiresOn?.getTime() ?? Number.POSITIVE_INFINITY,
        });
      } catch {
        unusable.add(version.version);
        if (!this.unusable.has(version.version)) {
          this.options.onProblem?.(`signing keys: version ${version.version} is not a usable signing key; skipped`);
        }
      }
    }
    this.unusable = unusable;
    this.parsed = parsed;
    // Held for good: a later failed read serves it again (above); only a successful read replaces it.
    return {
      value: loaded,
      freshUntilMs: this.clock().getTime() + this.maxAgeMs,
      staleUntilMs: Number.POSITIVE_INFINITY,
    };
  }
}

/** The selection rules of {@link SigningKeyRing}, pure so that they read as the documentation says. */
function selectKeys(
  versions: readonly LoadedVersion[],
  nowMs: number,
  publishBeforeUseMs: number,
  retentionMs: number,
): RingView {
  // `versions` is in store order, newest first; reversing before the stable sort keeps that order on ties.
  const oldestFirst = [...versions].reverse().sort((a, b) => a.activeFromMs - b.activeFromMs);
  const readyAt = (v: LoadedVersion) => v.activeFromMs + publishBeforeUseMs;
  const canSign = (v: LoadedVersion) => v.activeFromMs <= nowMs && nowMs < v.expiresOnMs;

  const candidates = oldestFirst.filter(canSign);
  const published = candidates.filter((v) => readyAt(v) <= nowMs);
  const signer = published.at(-1) ?? candidates.at(-1);

  const stillVerifies = (v: LoadedVersion, index: number): boolean => {
    if (v === signer) return true;
    let endedMs = v.expiresOnMs;
    for (const newer of oldestFirst.slice(index + 1)) endedMs = Math.min(endedMs, readyAt(newer));
    return nowMs < endedMs + retentionMs;
  };
  const verifying = oldestFirst.filter(stillVerifies).reverse();
  const ordered = signer ? [signer, ...verifying.filter((v) => v !== signer)] : verifying;
  // Re-deploying the same key writes a new version with identical material: publish each `kid` once.
  const seen = new Set<string>();
  const distinct = ordered.filter((v) => !seen.has(v.key.kid) && Boolean(seen.add(v.key.kid)));
  return { signing: signer?.key, verifying: distinct.map((v) => v.key) };
}

/**
 * Every instant at which {@link selectKeys} can change its answer for `versions`: each comparison it makes
 * with `nowMs` (`<=` or `<`) flips exactly at one of these.
 */
function selectionInstants(
  versions: readonly LoadedVersion[],
  publishBeforeUseMs: number,
  retentionMs: number,
): number[] {
  const oldestFirst = [...versions].reverse().sort((a, b) => a.activeFromMs - b.activeFromMs);
  const readyAt = (v: LoadedVersion) => v.activeFromMs + publishBeforeUseMs;
  const instants: number[] = [];
  oldestFirst.forEach((v, index) => {
    let endedMs = v.expiresOnMs;
    for (const newer of oldestFirst.slice(index + 1)) endedMs = Math.min(endedMs, readyAt(newer));
    instants.push(v.activeFromMs, v.expiresOnMs, readyAt(v), endedMs + retentionMs);
  });
  return instants.filter((instant) => Number.isFinite(instant));
}

/**
 * The process's ring from configuration: re-read every `secretCache.maxAgeSeconds`, keys retained for the
 * longest configured lifetime (at least {@link LONGEST_TOKEN_LIFETIME_SECONDS}, the LAT maximum) plus skew.
 */
export function createSigningKeyRing(
  config: Pick<StsConfig, 'secretCache' | 'lifetimes'>,
  secrets: SecretStore,
  clock: () => Date,
  onProblem: (message: string) => void,
): SigningKeyRing {
  return new SigningKeyRing({
    secrets,
    clock,
    maxAgeSeconds: config.secretCache.maxAgeSeconds,
    longestTokenLifetimeSeconds: Math.max(LONGEST_TOKEN_LIFETIME_SECONDS, ...Object.values(config.lifetimes)),
    onProblem,
  });
}
