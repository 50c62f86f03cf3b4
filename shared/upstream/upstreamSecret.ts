import { GUID_PATTERN, vaultLayout, vaultPrefixes } from '../credentials/vaultLayout.js';
import { SECRET_NAME_PATTERN, type SecretStore } from '../secrets/secretStore.js';
import type { MixedRealityUpstreamCredentials } from './fetchMixedRealityToken.js';
import { isUpstreamKeyRefused, UpstreamError } from './upstreamErrors.js';

/**
 * Reads the secret that holds a real upstream key. `fresh: false` may be answered from the secret cache;
 * `fresh: true` must bypass every cache and ask the store itself (used once, after the upstream refused
 * the cached key with a 401, i.e. the key was probably rotated). Resolves `undefined` when the secret does
 * not exist or is not usable now; rejects with `DependencyUnavailableError('secret-store')` when the store
 * cannot answer.
 */
export type ReadUpstreamSecret = (name: string, options: { readonly fresh: boolean }) => Promise<string | undefined>;

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
  return async (name, { fresh }) => (await (fresh ? store.getFreshSecret(name) : store.getSecret(name)))?.value;
}

/**
 * True for a name that may hold a real upstream key: a valid secret name that is not one of our own
 * records or keys. A record pointing `upstream.secretName` at, say, `sts-signing-key` must never make us
 * send our signing key to another server, so such names are refused here and in provisioning.
 */
export function isUpstreamSecretName(name: string): boolean {
  if (!SECRET_NAME_PATTERN.test(name)) return false;
  const lower = name.toLowerCase();
  if (lower === vaultLayout.signingKey) return false;
  return !Object.values(vaultPrefixes).some((prefix) => lower.startsWith(prefix));
}

/** What {@link withKeyReread} did, for the ledger and logs. */
export interface KeyRereadOutcome<T> {
  readonly value: T;
  /** True when the first key was refused and the secret was read again, bypassing caches. */
  readonly keyReread: boolean;
}

/**
 * Runs `attempt` with the current upstream secret. If the upstream refuses it with a 401, reads the secret
 * once more with `fresh: true` and, when the value changed (the key was rotated), runs `attempt` once more.
 * When the fresh value is the same, a second call could only earn another 401, so the first error is
 * rethrown without one. A missing secret is a `configuration` failure.
 */
export async function withKeyReread<T>(
  readSecret: ReadUpstreamSecret,
  secretName: string,
  attempt: (secret: string) => Promise<T>,
): Promise<KeyRereadOutcome<T>> {
  if (!isUpstreamSecretName(secretName)) {
    throw new UpstreamError('configuration', `upstream secret name ${secretName.slice(0, 127)} is not allowed (reserved or invalid)`);
  }
  const first = await readSecret(secretName, { fresh: false });
  if (!first) throw missingSecret(secretName);
  try {
    return { value: await attempt(first), keyReread: false };
  } catch (error) {
    if (!isUpstreamKeyRefused(error)) throw error;
    const fresh = await readSecret(secretName, { fresh: true });
    if (!fresh || fresh === first) throw error;
    return { value: await attempt(fresh), keyReread: true };
  }
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
  if (!/^[\x21-\x7e]+$/.test(key)) throw new UpstreamError('configuration', `upstream secret ${secretName} is not a key`);
  return key;
}

function missingSecret(secretName: string): UpstreamError {
  return new UpstreamError('configuration', `upstream secret ${secretName} is missing or not usable`);
}
