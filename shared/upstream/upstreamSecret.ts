import { GUID_PATTERN, UPSTREAM_KEY_PREFIX } from '../credentials/vaultLayout.js';
import { SECRET_NAME_PATTERN, type SecretStore } from '../secrets/secretStore.js';
import type { MixedRealityUpstreamCredentials } from './fetchMixedRealityToken.js';
import { isUpstreamKeyRefused, UpstreamError } from './upstreamErrors.js';

/** The credential kinds that can be in upstream mode, each with its own kind of real key. */
export type UpstreamCredentialKind = 'mixedRealityAccount' | 'cognitiveResource' | 'wrapIssuer';

/**
 * The name prefix of a real-key secret per credential kind (`vaultLayout.upstreamKey` writes these). A record
 * can only name a secret with its own kind's prefix, so a Cognitive record can never send a WRAP password, and
 * no record can name a secret outside the upstream key layout.
 */
export const upstreamKeyPrefixes: Readonly<Record<UpstreamCredentialKind, string>> = {
  mixedRealityAccount: `${UPSTREAM_KEY_PREFIX}mr-`,
  cognitiveResource: `${UPSTREAM_KEY_PREFIX}cs-`,
  wrapIssuer: `${UPSTREAM_KEY_PREFIX}wrap-`,
};

/** The tags the CLI writes on a real-key secret, and the only ones that make a secret sendable. */
export function upstreamKeyTags(kind: UpstreamCredentialKind): Readonly<Record<string, string>> {
  return { purpose: UPSTREAM_KEY_PURPOSE, kind };
}

/** The `purpose` tag of a real-key secret. */
export const UPSTREAM_KEY_PURPOSE = 'upstream-key';

/** A real-key secret as read: its value and its tags (what says it was created for this purpose). */
export interface UpstreamSecretValue {
  readonly value: string;
  readonly tags?: Readonly<Record<string, string>> | undefined;
}

/**
 * Reads the secret that holds a real upstream key. `fresh: false` may be answered from the secret cache;
 * `fresh: true` must bypass every cache and ask the store itself (used after the upstream refused the cached
 * key with a 401, i.e. the key was probably rotated, at most once a minute per key). Resolves `undefined` when
 * the secret does not exist or is not usable now; rejects with `DependencyUnavailableError('secret-store')`
 * when the store cannot answer.
 */
export type ReadUpstreamSecret = (
  name: string,
  options: { readonly fresh: boolean },
) => Promise<UpstreamSecretValue | undefined>;

/**
 * The reader for a secret store (the process's own, as `services.ts` wires it): ordinary reads are
 * `getSecret` (cached in front of Key Vault), fresh reads `getFreshSecret`, which asks the store itself and
 * leaves the new key in the cache: after a rotation only the first fetch pays the 401 and the re-read,
 * later ones use the new key at once.
 *
 * @example
 * const readSecret = upstreamSecretReaderFor(services.secrets);
 */
export function upstreamSecretReaderFor(store: SecretStore): ReadUpstreamSecret {
  return async (name, { fresh }) => {
    const version = await (fresh ? store.getFreshSecret(name) : store.getSecret(name));
    return version ? { value: version.value, tags: version.tags } : undefined;
  };
}

/**
 * True for a name that may hold a real upstream key of `kind` (any upstream kind when omitted): a valid
 * secret name with that kind's prefix (`upstream-mr-`, `upstream-cs-`, `upstream-wrap-`) and something after
 * it. Our records and signing key never match, so a record pointing `upstream.secretName` at, say,
 * `sts-signing-key` or another team's `payments-api-key` is refused here and in provisioning.
 */
export function isUpstreamSecretName(name: string, kind?: UpstreamCredentialKind): boolean {
  if (!SECRET_NAME_PATTERN.test(name)) return false;
  const lower = name.toLowerCase();
  const prefixes = kind ? [upstreamKeyPrefixes[kind]] : Object.values(upstreamKeyPrefixes);
  return prefixes.some((prefix) => lower.startsWith(prefix) && lower.length > prefix.length);
}

/** True when a secret carries the tags the CLI writes on a real key of `kind` (`purpose=upstream-key`, `kind`). */
export function isUpstreamKeySecret(secret: UpstreamSecretValue, kind: UpstreamCredentialKind): boolean {
  return secret.tags?.purpose === UPSTREAM_KEY_PURPOSE && secret.tags.kind === kind;
}

/** What {@link withKeyReread} did, for the ledger and logs. */
export interface KeyRereadOutcome<T> {
  readonly value: T;
  /** True when the first key was refused and the secret was read again, bypassing caches. */
  readonly keyReread: boolean;
}

/**
 * Runs `attempt` with the current upstream secret of `kind`. The name must be an upstream key name of that
 * kind and the secret must carry the CLI's tags, or nothing is sent. If the upstream refuses the key with a
 * 401 and `mayReread()` allows it (the token cache allows one fresh read per key a minute), reads the secret
 * once more with `fresh: true` and, when the value changed (the key was rotated), runs `attempt` once more.
 * When the fresh value is the same, a second call could only earn another 401, so the first error is
 * rethrown without one. A missing secret is a `configuration` failure.
 */
export async function withKeyReread<T>(
  readSecret: ReadUpstreamSecret,
  secretName: string,
  kind: UpstreamCredentialKind,
  attempt: (secret: string) => Promise<T>,
  mayReread: () => boolean = () => true,
): Promise<KeyRereadOutcome<T>> {
  if (!isUpstreamSecretName(secretName, kind)) {
    throw new UpstreamError(
      'configuration',
      `upstream secret name ${secretName.slice(0, 127)} is not an upstream key name for ${kind} (${upstreamKeyPrefixes[kind]}…)`,
    );
  }
  const first = checkedSecret(await readSecret(secretName, { fresh: false }), secretName, kind);
  try {
    return { value: await attempt(first), keyReread: false };
  } catch (error) {
    if (!isUpstreamKeyRefused(error) || !mayReread()) throw error;
    const fresh = checkedSecret(await readSecret(secretName, { fresh: true }), secretName, kind);
    if (fresh === first) throw error;
    return { value: await attempt(fresh), keyReread: true };
  }
}

function checkedSecret(
  secret: UpstreamSecretValue | undefined,
  secretName: string,
  kind: UpstreamCredentialKind,
): string {
  if (!secret?.value) throw missingSecret(secretName);
  if (!isUpstreamKeySecret(secret, kind)) {
    throw new UpstreamError(
      'configuration',
      `upstream secret ${secretName} was not created as a ${kind} upstream key (tags)`,
    );
  }
  return secret.value;
}

/**
 * Parses a Mixed Reality upstream secret, `accountId:accountKey` (split at the first `:`; GUIDs and base64
 * keys contain none, docs/contracts/mixed-reality-sts.md#request). A malformed value is a `configuration` failure that never quotes it.
 */
export function parseMixedRealitySecret(secretName: string, value: string): MixedRealityUpstreamCredentials {
  const text = value.trim();
  const colon = text.indexOf(':');
  const accountId = colon > 0 ? text.slice(0, colon) : '';
  const accountKey = colon > 0 ? text.slice(colon + 1) : '';
  if (!GUID_PATTERN.test(accountId) || accountKey.length === 0 || /\s/.test(accountKey)) {
    throw new UpstreamError('configuration', `upstream secret ${secretName} is not "accountId:accountKey"`);
  }
  return { accountId: accountId.toLowerCase(), accountKey };
}

/** A Cognitive key or WRAP password: the trimmed secret value, which must be one printable token. */
export function parseKeySecret(secretName: string, value: string): string {
  const key = value.trim();
  if (!/^[\x21-\x7e]+$/.test(key))
    throw new UpstreamError('configuration', `upstream secret ${secretName} is not a key`);
  return key;
}

function missingSecret(secretName: string): UpstreamError {
  return new UpstreamError('configuration', `upstream secret ${secretName} is missing or not usable`);
}
