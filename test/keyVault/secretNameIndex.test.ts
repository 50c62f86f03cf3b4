import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { SecretNameIndex } from '../../shared/secrets/secretNameIndex.js';
import type { ListableSecretStore, SecretListing, SecretVersion } from '../../shared/secrets/secretStore.js';

/**
 * The secret name index on its own, over a scripted lister whose pages the test releases one at a time, on a
 * clock moved by hand: what a cold instance waits for, how refreshes and their failures behave, and which
 * names are reported as changed.
 */

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

function deferred(): Deferred {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A lister serving `vault` in pages of `pageSize`; with `gated`, each page waits for `release()`. */
class ScriptedLister implements ListableSecretStore {
  vault: SecretListing[] = [];
  listings = 0;
  pageCalls = 0;
  failWith: Error | undefined;
  gated = false;
  private gates: Deferred[] = [];

  constructor(private readonly pageSize = 2) {}

  async listSecrets(onPage: (page: readonly SecretListing[]) => void): Promise<void> {
    this.listings += 1;
    const snapshot = [...this.vault];
    for (let start = 0; start === 0 || start < snapshot.length; start += this.pageSize) {
      if (this.gated) {
        const gate = deferred();
        this.gates.push(gate);
        await gate.promise;
      }
      this.pageCalls += 1;
      if (this.failWith) throw this.failWith;
      onPage(snapshot.slice(start, start + this.pageSize));
    }
  }

  /** Lets the oldest waiting page through and gives the index a turn to handle it. */
  async release(): Promise<void> {
    for (let i = 0; i < 10 && this.gates.length === 0; i += 1) await Promise.resolve();
    this.gates.shift()?.resolve();
    for (let i = 0; i < 10; i += 1) await Promise.resolve();
  }

  getSecret(): Promise<SecretVersion | undefined> {
    throw new Error('not used');
  }
  getFreshSecret(): Promise<SecretVersion | undefined> {
    throw new Error('not used');
  }
  getSecretVersions(): Promise<readonly SecretVersion[]> {
    throw new Error('not used');
  }
}

const listed = (name: string, updatedOnMs: number, enabled = true): SecretListing => ({
  name,
  enabled,
  updatedOn: new Date(updatedOnMs),
});

function setup(refreshSeconds = 60) {
  const lister = new ScriptedLister();
  let nowMs = 1_000_000_000_000;
  const warnings: string[] = [];
  const changes: string[][] = [];
  // random() = 1: every interval is the longest, 1.2 × refreshSeconds.
  const index = new SecretNameIndex(
    lister,
    { refreshSeconds },
    () => new Date(nowMs),
    (line) => warnings.push(line),
    () => 1,
  );
  index.onChange((names) => changes.push([...names].sort()));
  return {
    lister,
    index,
    warnings,
    changes,
    now: () => nowMs,
    advance: (seconds: number) => {
      nowMs += seconds * 1000;
    },
  };
}

describe('SecretNameIndex: a cold instance', () => {
  it('one listing for every concurrent lookup; a name is answered as soon as its page arrives', async () => {
    const { lister, index, now } = setup();
    lister.vault = [
      listed('a', now() - 60_000),
      listed('b', now() - 60_000),
      listed('c', now() - 60_000),
      listed('d', now() - 60_000),
    ];
    lister.gated = true;
    const answers: string[] = [];
    const lookups = ['A', 'c', 'zzz', 'a'].map((name) =>
      index.lookup(name).then((entry) => answers.push(`${name}:${entry ? 'listed' : 'absent'}`)),
    );

    await lister.release(); // page 1: a, b
    expect(answers.sort()).toEqual(['A:listed', 'a:listed']);
    expect(index.loaded).toBe(false);
    await lister.release(); // page 2: c, d, and the end
    await Promise.all(lookups);
    expect(answers.sort()).toEqual(['A:listed', 'a:listed', 'c:listed', 'zzz:absent']);
    expect(lister.listings).toBe(1);
    expect(index.stats()).toMatchObject({ size: 4, listings: 1, pages: 2 });
  });

  it('a failed first listing answers 503 with the vault’s Retry-After, lists again only after it', async () => {
    const { lister, index, warnings, advance } = setup();
    lister.vault = [listed('a', 0)];
    lister.failWith = new DependencyUnavailableError('secret-store', 7, 'Key Vault throttled the request (429)');
    await expect(index.lookup('a')).rejects.toMatchObject({ retryAfterSeconds: 7 });
    await expect(index.lookup('a')).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(lister.listings).toBe(1); // no second listing inside the Retry-After
    expect(warnings).toHaveLength(1);

    lister.failWith = undefined;
    advance(7);
    expect(await index.lookup('a')).toBeDefined();
    expect(lister.listings).toBe(2);
    expect(warnings.at(-1)).toMatch(/listing again/);
  });
});

describe('SecretNameIndex: refreshes', () => {
  it('a lookup past the interval lists in the background, answered from the current index meanwhile', async () => {
    const { lister, index, now, advance } = setup();
    lister.vault = [listed('a', now() - 60_000)];
    expect(await index.lookup('a')).toBeDefined();
    lister.vault = [listed('a', now() - 60_000), listed('new', now())];

    advance(71); // under 1.2 × 60 s: no listing yet
    expect(await index.lookup('new')).toBeUndefined();
    expect(lister.listings).toBe(1);
    advance(2);
    expect(await index.lookup('new')).toBeUndefined(); // answered from the index it had; a listing starts
    expect(lister.listings).toBe(2);
    await index.refreshNow();
    expect(await index.lookup('new')).toBeDefined();
  });

  it('reports new, changed, disabled and gone names, not unchanged ones; recent updates once more at the next listing', async () => {
    const { lister, index, changes, now, advance } = setup();
    const old = now() - 3_600_000;
    lister.vault = [listed('same', old), listed('rotated', old), listed('disabled', old), listed('gone', old)];
    await index.refreshNow(); // the first listing, landed

    advance(1);
    lister.vault = [
      listed('same', old),
      listed('rotated', now()),
      listed('disabled', old, false),
      listed('fresh', now()),
    ];
    await index.refreshNow();
    expect(changes).toEqual([['disabled', 'fresh', 'gone', 'rotated']]);
    expect(await index.lookup('gone')).toBeUndefined();
    expect((await index.lookup('disabled'))?.enabled).toBe(false);

    // 'rotated' and 'fresh' were updated within 5 s of that listing's start: a second change in the same
    // second would look the same, so they are reported again.
    advance(100);
    await index.refreshNow();
    expect(changes.at(-1)).toEqual(['fresh', 'rotated']);
    advance(100);
    await index.refreshNow();
    expect(changes).toHaveLength(2); // nothing changed, nothing recent: no report
  });

  it('a failed refresh keeps the index, warns once, and is retried after the Retry-After', async () => {
    const { lister, index, warnings, advance } = setup();
    lister.vault = [listed('a', 0)];
    await index.refreshNow();
    lister.failWith = new DependencyUnavailableError('secret-store', 9, 'Key Vault answered 503');
    advance(73);
    await expect(index.refreshNow()).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(await index.lookup('a')).toBeDefined();
    advance(5);
    await index.lookup('a');
    expect(lister.listings).toBe(2); // inside the Retry-After: no new listing
    advance(5);
    await index.lookup('a');
    expect(lister.listings).toBe(3);
    expect(warnings).toHaveLength(1);
  });

  it('a name a read found gone is refused until the next listing, which reports it', async () => {
    const { lister, index, changes, advance } = setup();
    lister.vault = [listed('a', 0)];
    await index.lookup('a');
    index.forget('A');
    expect(await index.lookup('a')).toBeUndefined();
    advance(1);
    await index.refreshNow();
    expect(await index.lookup('a')).toBeDefined();
    expect(changes).toEqual([['a']]);
  });
});
