import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { CachedSecretStore, type SecretCacheSettings } from '../../shared/secrets/cachedSecretStore.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import type { SecretStore, SecretVersion } from '../../shared/secrets/secretStore.js';

/**
 * `getFreshSecret`: the read a caller makes when it has evidence that a cached value is out of date (an
 * upstream STS refused the key with a 401). Every store answers it from its source, past its own caching.
 */

const SETTINGS: SecretCacheSettings = {
  maxAgeSeconds: 300,
  negativeMaxAgeSeconds: 30,
  maxEntries: 100,
  maxStaleSeconds: 600,
  vaultTimeoutMs: 200,
};

/** The store behind the cache: one value per name, `failWith` makes every read throw; reads are counted. */
class SourceStore implements SecretStore {
  readonly values = new Map<string, string>();
  failWith: Error | undefined;
  reads = 0;
  freshReads = 0;

  async getSecret(name: string): Promise<SecretVersion | undefined> {
    this.reads += 1;
    if (this.failWith !== undefined) throw this.failWith;
    const value = this.values.get(name);
    return value === undefined ? undefined : { name, version: value, value, enabled: true, createdOn: new Date(0) };
  }

  getFreshSecret(name: string): Promise<SecretVersion | undefined> {
    this.freshReads += 1;
    return this.getSecret(name);
  }

  async getSecretVersions(name: string): Promise<readonly SecretVersion[]> {
    const current = await this.getSecret(name);
    return current ? [current] : [];
  }
}

describe('CachedSecretStore.getFreshSecret', () => {
  const setup = () => {
    const source = new SourceStore();
    /** What the operator is told (the cache's `warn`). */
    const warnings: string[] = [];
    const cache = new CachedSecretStore(
      source,
      SETTINGS,
      () => new Date(1_000_000),
      (line) => warnings.push(line),
    );
    return { source, cache, warnings };
  };

  it('asks the source past a fresh entry, and caches the new value for every later read', async () => {
    const { source, cache } = setup();
    source.values.set('upstream-cs-speech', 'old-key');
    expect((await cache.getSecret('upstream-cs-speech'))?.value).toBe('old-key');
    source.values.set('upstream-cs-speech', 'rotated-key');
    expect((await cache.getSecret('upstream-cs-speech'))?.value).toBe('old-key'); // still fresh in the cache

    expect((await cache.getFreshSecret('upstream-cs-speech'))?.value).toBe('rotated-key');
    expect(source.freshReads).toBe(1);
    const readsAfterFresh = source.reads;
    expect((await cache.getSecret('upstream-cs-speech'))?.value).toBe('rotated-key');
    expect(source.reads).toBe(readsAfterFresh);
  });

  it('is never answered from a stale entry: a failing source fails the fresh read', async () => {
    const { source, cache, warnings } = setup();
    source.values.set('upstream-cs-speech', 'old-key');
    await cache.getSecret('upstream-cs-speech');
    source.failWith = new DependencyUnavailableError('secret-store', 5, 'Key Vault answered 503');
    await expect(cache.getFreshSecret('upstream-cs-speech')).rejects.toBeInstanceOf(DependencyUnavailableError);
    // The operator hears of the failing store once, without the value the cache holds.
    expect(warnings).toEqual([
      'secret store: DependencyUnavailableError ERR_STS_DEPENDENCY_UNAVAILABLE: Key Vault answered 503; serving cached answers up to 600 s past their max age until it answers',
    ]);
  });

  it('remembers that a secret is gone', async () => {
    const { source, cache } = setup();
    source.values.set('upstream-cs-speech', 'old-key');
    await cache.getSecret('upstream-cs-speech');
    source.values.delete('upstream-cs-speech');
    expect(await cache.getFreshSecret('upstream-cs-speech')).toBeUndefined();
    expect(await cache.getSecret('upstream-cs-speech')).toBeUndefined();
  });
});

describe('FileSecretStore.getFreshSecret', () => {
  let folder: string | undefined;
  afterEach(async () => {
    vi.useRealTimers();
    if (folder) await rm(folder, { recursive: true, force: true });
    folder = undefined;
  });

  it('reads the file now, where getSecret checks it at most once a second', async () => {
    // Date frozen: every read below falls inside the store's once-a-second check, however slow the machine.
    vi.useFakeTimers({ toFake: ['Date'] });
    folder = await mkdtemp(join(tmpdir(), 'sts-fresh-read-'));
    const path = join(folder, 'secrets.json');
    const cli = new FileSecretStore(path); // the admin CLI, another process in real life
    const app = new FileSecretStore(path);
    await cli.setSecret('upstream-cs-speech', 'old-key');
    expect((await app.getSecret('upstream-cs-speech'))?.value).toBe('old-key');

    await cli.setSecret('upstream-cs-speech', 'rotated-key');
    // A later modification time, as a later write has (not left to the file system's timestamp granularity).
    const later = new Date(Date.now() + 5_000);
    await utimes(path, later, later);

    expect((await app.getSecret('upstream-cs-speech'))?.value).toBe('old-key');
    expect((await app.getFreshSecret('upstream-cs-speech'))?.value).toBe('rotated-key');
  });
});
