import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { NOT_AT_HAND } from '../../shared/secrets/secretStore.js';

/**
 * `secretAtHand`: the embedded store's answer without a wait, given only when `getSecret` would give the same
 * answer without checking the file; otherwise the caller is sent to `getSecret`, so a rotation on disk is seen
 * exactly as soon as before.
 */

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'sts-at-hand-'));
});
afterEach(async () => {
  vi.useRealTimers();
  await rm(directory, { recursive: true, force: true });
});

describe('FileSecretStore.secretAtHand', () => {
  it('answers as getSecret between file checks, and defers to getSecret once a check is due', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const path = join(directory, 'secrets.json');
    const writer = new FileSecretStore(path);
    await writer.setSecret('demo', 'one');
    const store = new FileSecretStore(path);

    expect(store.secretAtHand('demo')).toBe(NOT_AT_HAND); // never checked yet
    const first = await store.getSecret('demo');
    expect(first?.value).toBe('one');
    expect(store.secretAtHand('demo')).toBe(first);
    expect(store.secretAtHand('unknown')).toBeUndefined();

    await writer.setSecret('demo', 'two');
    // Within the check interval getSecret still answers from the snapshot, and so does secretAtHand.
    expect(await store.getSecret('demo')).toBe(first);
    expect(store.secretAtHand('demo')).toBe(first);

    vi.setSystemTime(Date.now() + 1_000);
    expect(store.secretAtHand('demo')).toBe(NOT_AT_HAND);
    const second = await store.getSecret('demo');
    expect(second?.value).toBe('two');
    expect(store.secretAtHand('demo')).toBe(second);
  });

  it('gives no answer while a reload is under way', async () => {
    const path = join(directory, 'secrets.json');
    await new FileSecretStore(path).setSecret('demo', 'one');
    const store = new FileSecretStore(path);
    const reading = store.getFreshSecret('demo');
    expect(store.secretAtHand('demo')).toBe(NOT_AT_HAND);
    expect((await reading)?.value).toBe('one');
    expect(store.secretAtHand('demo')).toMatchObject({ value: 'one' });
  });
});
