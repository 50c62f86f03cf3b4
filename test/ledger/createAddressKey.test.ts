import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LEDGER_ADDRESS_KEY_SECRET, MIN_ADDRESS_KEY_CHARS } from '../../shared/ledger/ledgerAddress.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { command as createAddressKey } from '../../tools/sts/commands/createAddressKey.js';

// `npm run sts -- create-address-key` on the embedded store: the keyed-hash key is written, never printed.

let folder: string;
const savedEnv = { ...process.env };

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'sts-address-key-'));
});
afterAll(async () => {
  process.env = { ...savedEnv };
  await rm(folder, { recursive: true, force: true });
});

async function run(storePath: string): Promise<string> {
  process.env = { ...savedEnv, STS_LOCAL_STORE_PATH: storePath };
  delete process.env.KEY_VAULT_URL;
  const printed: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void printed.push(parts.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void printed.push(parts.join(' ')));
  try {
    expect(await createAddressKey.run([])).toBe(0);
    return printed.join('\n');
  } finally {
    vi.restoreAllMocks();
    process.env = { ...savedEnv };
  }
}

describe('create-address-key', () => {
  it('writes a random key of the required length as a new version each time, and never prints it', async () => {
    const storePath = join(folder, 'secrets.json');
    const first = await run(storePath);
    const store = new FileSecretStore(storePath);
    const key = await store.getSecret(LEDGER_ADDRESS_KEY_SECRET);
    expect(key?.value.length).toBeGreaterThanOrEqual(MIN_ADDRESS_KEY_CHARS);
    expect(first).toContain(LEDGER_ADDRESS_KEY_SECRET);
    expect(first).not.toContain(key?.value);

    const second = await run(storePath);
    const versions = await new FileSecretStore(storePath).getSecretVersions(LEDGER_ADDRESS_KEY_SECRET);
    expect(versions).toHaveLength(2);
    expect(versions[0]?.value).not.toBe(versions[1]?.value);
    expect(second).not.toContain(versions[0]?.value);
  });
});
