import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { generateSigningJwk, type SigningAlgorithm } from '../../shared/tokens/signingKeyMaterial.js';

/** A temp file store holding `sts-signing-key` versions, and a clock the test moves by hand. */
export interface SigningKeyFixture {
  readonly store: FileSecretStore;
  readonly clock: () => Date;
  /** Moves the frozen clock forward. */
  advance(seconds: number): void;
  /** Writes a new signing key version created "now" (on the frozen clock); returns its version id. */
  addKey(alg?: SigningAlgorithm): Promise<string>;
  disable(version: string): Promise<void>;
  dispose(): Promise<void>;
}

export async function createSigningKeyFixture(start = new Date('2025-04-01T12:00:00Z')): Promise<SigningKeyFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'sts-keys-'));
  let nowMs = start.getTime();
  const clock = () => new Date(nowMs);
  const store = new FileSecretStore(join(dir, 'secrets.json'), clock);
  return {
    store,
    clock,
    advance(seconds) {
      nowMs += seconds * 1000;
    },
    async addKey(alg = 'ES256') {
      const created = await store.setSecret(vaultLayout.signingKey, JSON.stringify(generateSigningJwk(alg)), {
        contentType: 'application/jwk+json',
      });
      return created.version;
    },
    async disable(version) {
      await store.updateSecretVersion(vaultLayout.signingKey, version, { enabled: false });
    },
    async dispose() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}
