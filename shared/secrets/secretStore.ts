/**
 * The one seam through which every key and signing key is read. Implementations: the embedded file store
 * (local default), Key Vault (`KEY_VAULT_URL`), and the cache that wraps either.
 *
 * Semantics follow Key Vault: a secret has versions; `getSecret` returns the current version only when it
 * is enabled, inside its validity window (`notBefore`..`expiresOn`); otherwise the secret counts as absent.
 */

export interface SecretVersion {
  readonly name: string;
  readonly version: string;
  readonly value: string;
  readonly enabled: boolean;
  readonly createdOn: Date;
  readonly notBefore?: Date | undefined;
  readonly expiresOn?: Date | undefined;
  readonly contentType?: string | undefined;
  readonly tags?: Readonly<Record<string, string>> | undefined;
}

/** {@link SecretStore.secretAtHand}'s answer when the store would have to wait or act: ask `getSecret`. */
export const NOT_AT_HAND: unique symbol = Symbol('secret not at hand');

export interface SecretStore {
  /**
   * The current version of `name` if it exists, is enabled and valid now; otherwise `undefined`. `requester`
   * names the client a read is done for (its address key, as the failed-attempt limiter keys it), so a cache
   * can charge a vault read to that client's share of the read budget; stores that read nothing ignore it.
   */
  getSecret(name: string, requester?: string): Promise<SecretVersion | undefined>;
  /**
   * What {@link getSecret} would answer right now, when that answer is already in memory and giving it has no
   * other effect (nothing to reload, read, refresh or count); {@link NOT_AT_HAND} otherwise, and then the
   * caller asks {@link getSecret}. Optional: a store without it is always asked. Lets a warm request skip the
   * promise chain of a lookup that waits for nothing.
   */
  secretAtHand?(name: string, requester?: string): SecretVersion | undefined | typeof NOT_AT_HAND;
  /**
   * As {@link getSecret}, but answered by the source itself, past every cache (a cache then holds the new
   * answer): for a caller with evidence that a cached value is out of date, e.g. an upstream STS that just
   * refused the key with a 401 because it was rotated. Costs a store read every time; never on a hot path.
   */
  getFreshSecret(name: string): Promise<SecretVersion | undefined>;
  /** Every version of `name` with its value, newest first, disabled ones included (callers filter). */
  getSecretVersions(name: string): Promise<readonly SecretVersion[]>;
}

export interface SetSecretOptions {
  readonly contentType?: string;
  readonly tags?: Readonly<Record<string, string>>;
  readonly enabled?: boolean;
  readonly notBefore?: Date;
  readonly expiresOn?: Date;
}

/** What the admin CLI and the demo bootstrap need on top of reads. Never used on a request path. */
export interface WritableSecretStore extends SecretStore {
  /** Creates a new version of `name` (the secret itself when it does not exist yet). */
  setSecret(name: string, value: string, options?: SetSecretOptions): Promise<SecretVersion>;
  /** Enables or disables one version. */
  updateSecretVersion(name: string, version: string, patch: { readonly enabled: boolean }): Promise<void>;
  /** Names of all secrets (admin listing only). */
  listSecretNames(): Promise<readonly string[]>;
}

/**
 * What a listing says about one secret without its value (Key Vault's list-secrets item: the attributes of
 * the current version). `updatedOn` changes with every new version and every attribute change.
 */
export interface SecretListing {
  readonly name: string;
  readonly enabled: boolean;
  readonly updatedOn?: Date | undefined;
  readonly notBefore?: Date | undefined;
  readonly expiresOn?: Date | undefined;
}

/** A store that can list what it holds, one page at a time (Key Vault: list secrets, 25 per page). */
export interface ListableSecretStore extends SecretStore {
  /** Calls `onPage` with each page in turn; resolves when the last page has been delivered. */
  listSecrets(onPage: (page: readonly SecretListing[]) => void): Promise<void>;
}

/** True when `version` may be used now: enabled and within its validity window. */
export function isUsable(version: SecretVersion, now: Date): boolean {
  if (!version.enabled) return false;
  if (version.notBefore && version.notBefore.getTime() > now.getTime()) return false;
  if (version.expiresOn && version.expiresOn.getTime() <= now.getTime()) return false;
  return true;
}

/** Key Vault secret names: 1-127 characters of `0-9 a-z A-Z -`. */
export const SECRET_NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;
