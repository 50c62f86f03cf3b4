import type { CachedSecretStore, SecretCacheStats } from './cachedSecretStore.js';
import { listedAsUsable, type SecretNameIndex, type SecretNameIndexStats } from './secretNameIndex.js';
import { SECRET_NAME_PATTERN, type SecretStore, type SecretVersion } from './secretStore.js';

export interface IndexedSecretStoreStats extends SecretCacheStats {
  /** Lookups refused from the index alone: no such secret, disabled or outside its validity window. */
  readonly refusedUnlisted: number;
  readonly index: SecretNameIndexStats;
}

/**
 * The Key Vault read path: the {@link SecretNameIndex} decides whether a name is worth a read, the
 * {@link CachedSecretStore} behind it holds what was read. A name the vault does not hold, or holds disabled,
 * expired or not yet valid, is answered "absent" from memory: made-up account ids, keys and issuers cost no
 * vault read, leave no entry behind, and so can neither spend the vault's budget nor push a found secret out
 * of the cache (docs/key-vault.md#index). A listed name that a read finds gone is dropped from the index until
 * the next listing. When a listing reports a name as changed, the cache forgets it and its next lookup reads
 * the new version.
 *
 * `getSecretVersions` (the signing key ring, a fixed name) passes through to the cache unchecked.
 *
 * @example
 * const index = new SecretNameIndex(vault, { refreshSeconds: 60 });
 * const store = new IndexedSecretStore(index, new CachedSecretStore(vault, settings));
 * await store.getSecret('mr-account-…'); // undefined, no vault call, when the vault holds no such secret
 */
export class IndexedSecretStore implements SecretStore {
  private refusedUnlisted = 0;

  constructor(
    readonly index: SecretNameIndex,
    readonly cache: CachedSecretStore,
    private readonly clock: () => Date = () => new Date(),
  ) {
    index.onChange((names) => {
      for (const name of names) cache.forget(name);
    });
  }

  getSecret(name: string): Promise<SecretVersion | undefined> {
    return this.gated(name, (key) => this.cache.getSecret(key));
  }

  getFreshSecret(name: string): Promise<SecretVersion | undefined> {
    return this.gated(name, (key) => this.cache.getFreshSecret(key));
  }

  getSecretVersions(name: string): Promise<readonly SecretVersion[]> {
    return this.cache.getSecretVersions(name);
  }

  stats(): IndexedSecretStoreStats {
    return { ...this.cache.stats(), refusedUnlisted: this.refusedUnlisted, index: this.index.stats() };
  }

  private async gated(
    name: string,
    read: (key: string) => Promise<SecretVersion | undefined>,
  ): Promise<SecretVersion | undefined> {
    if (!SECRET_NAME_PATTERN.test(name)) return undefined;
    // Key Vault names are case-insensitive: one spelling per secret in the cache, as in the index.
    const key = name.toLowerCase();
    const listed = await this.index.lookup(key);
    if (!listed || !listedAsUsable(listed, this.clock().getTime())) {
      this.refusedUnlisted += 1;
      return undefined;
    }
    const secret = await read(key);
    if (!secret) this.index.forget(key);
    return secret;
  }
}
