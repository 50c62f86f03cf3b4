import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { CachedSecretStore, type SecretCacheSettings } from '../../shared/secrets/cachedSecretStore.js';
import type { SecretStore, SecretVersion } from '../../shared/secrets/secretStore.js';

/**
 * A secret store failing behind the cache degrades service (stale answers, 503s for cold names): the cache
 * says so once when the outage starts and once when it ends, never per lookup and never with a value.
 */

const SETTINGS: SecretCacheSettings = {
  maxAgeSeconds: 60,
  negativeMaxAgeSeconds: 10,
  maxEntries: 100,
  maxStaleSeconds: 3_600,
  vaultTimeoutMs: 200,
};
const KEY = 'Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1rZXk1MjM0NQ';

/** Answers one value per name, or throws `failWith` (not a DependencyUnavailableError: no backoff). */
class FlakyStore implements SecretStore {
  readonly values = new Map<string, string>();
  failWith: Error | undefined;

  async getSecret(name: string): Promise<SecretVersion | undefined> {
    if (this.failWith !== undefined) throw this.failWith;
    const value = this.values.get(name);
    return value === undefined ? undefined : { name, version: 'v1', value, enabled: true, createdOn: new Date(0) };
  }

  getFreshSecret(name: string): Promise<SecretVersion | undefined> {
    return this.getSecret(name);
  }

  async getSecretVersions(name: string): Promise<readonly SecretVersion[]> {
    const current = await this.getSecret(name);
    return current ? [current] : [];
  }
}

function setup() {
  let nowMs = 1_000_000;
  const store = new FlakyStore();
  const warnings: string[] = [];
  const cache = new CachedSecretStore(
    store,
    SETTINGS,
    () => new Date(nowMs),
    (line) => warnings.push(line),
  );
  return { store, cache, warnings, advance: (seconds: number) => void (nowMs += seconds * 1000) };
}

/** `count` lookups of `name`, each after the entry has aged out, so each one asks the store. */
async function lookUpAged(
  cache: CachedSecretStore,
  advance: (seconds: number) => void,
  name: string,
  count: number,
): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    advance(SETTINGS.maxAgeSeconds);
    await cache.getSecret(name).catch(() => undefined);
  }
}

describe('CachedSecretStore reports a store outage once', () => {
  it('one line when it starts (stale answers keep flowing), one when it ends, one more for the next outage', async () => {
    const { store, cache, warnings, advance } = setup();
    store.values.set('mr-account-a', KEY);
    await cache.getSecret('mr-account-a');

    store.failWith = new Error('connect ECONNREFUSED 127.0.0.1:443');
    await lookUpAged(cache, advance, 'mr-account-a', 20);
    expect((await cache.getSecret('mr-account-a'))?.value).toBe(KEY); // served stale
    await lookUpAged(cache, advance, 'mr-account-cold', 5); // cold names fail outright
    expect(cache.stats().storeFailures).toBeGreaterThanOrEqual(25);
    expect(warnings).toEqual([
      'secret store: Error: connect ECONNREFUSED 127.0.0.1:443; serving cached answers up to 3600 s past their max age until it answers',
    ]);

    store.failWith = undefined;
    await lookUpAged(cache, advance, 'mr-account-a', 5);
    expect(warnings.slice(1)).toEqual(['secret store: answering again']);

    store.failWith = new DependencyUnavailableError('secret-store', 1, 'Key Vault answered 503');
    await lookUpAged(cache, advance, 'mr-account-a', 5);
    expect(warnings).toHaveLength(3);
    expect(warnings[2]).toMatch(/^secret store: .*Key Vault answered 503/);
    expect(warnings.join('\n')).not.toContain(KEY);
  });

  it('says nothing while the store answers, found or absent', async () => {
    const { store, cache, warnings, advance } = setup();
    store.values.set('mr-account-a', KEY);
    await lookUpAged(cache, advance, 'mr-account-a', 10);
    await lookUpAged(cache, advance, 'mr-account-missing', 10);
    expect(warnings).toEqual([]);
  });
});
