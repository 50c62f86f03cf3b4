import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import type { SecretStore } from '../../shared/secrets/secretStore.js';
import { generateSigningJwk } from '../../shared/tokens/signingKeyMaterial.js';
import { SigningKeyRing, type SigningKeyRingOptions } from '../../shared/tokens/signingKeyRing.js';
import { createSigningKeyFixture, type SigningKeyFixture } from './signingKeyFixture.js';

const MAX_AGE = 60;
const PUBLISH_BEFORE_USE = MAX_AGE + 300;
const RETENTION = 86_400 + 300;

let fixture: SigningKeyFixture;
let reads: number;
let failReads: boolean;
let store: SecretStore;

beforeEach(async () => {
  fixture = await createSigningKeyFixture();
  reads = 0;
  failReads = false;
  // Counts and optionally fails reads, delegating to the real file store.
  store = {
    getSecret: (name) => fixture.store.getSecret(name),
    getFreshSecret: (name) => fixture.store.getFreshSecret(name),
    getSecretVersions: async (name) => {
      reads += 1;
      if (failReads) throw new Error('vault unreachable');
      return fixture.store.getSecretVersions(name);
    },
  };
});
afterEach(() => fixture.dispose());

function newRing(overrides: Partial<SigningKeyRingOptions> = {}): SigningKeyRing {
  return new SigningKeyRing({ secrets: store, clock: fixture.clock, maxAgeSeconds: MAX_AGE, ...overrides });
}

async function kidsOf(ring: SigningKeyRing) {
  const view = await ring.view();
  return { signing: view.signing?.version, verifying: view.verifying.map((key) => key.version) };
}

describe('SigningKeyRing rotation', () => {
  it('the only key signs at once and is published', async () => {
    const v1 = await fixture.addKey();
    expect(await kidsOf(newRing())).toEqual({ signing: v1, verifying: [v1] });
  });

  it('a new key is published first, signs after the publish delay, and the old key verifies until retired', async () => {
    const v1 = await fixture.addKey();
    const ring = newRing();
    expect(await kidsOf(ring)).toEqual({ signing: v1, verifying: [v1] });

    fixture.advance(3_600);
    const v2 = await fixture.addKey();
    fixture.advance(MAX_AGE); // the cache has expired: the ring re-reads without a restart
    expect(await kidsOf(ring)).toEqual({ signing: v1, verifying: [v1, v2] });

    fixture.advance(PUBLISH_BEFORE_USE - MAX_AGE); // v2 has been public long enough
    expect(await kidsOf(ring)).toEqual({ signing: v2, verifying: [v2, v1] });

    fixture.advance(RETENTION - 1); // tokens signed by v1 just before the switch may still be live
    expect(await kidsOf(ring)).toEqual({ signing: v2, verifying: [v2, v1] });

    fixture.advance(1);
    expect(await kidsOf(ring)).toEqual({ signing: v2, verifying: [v2] });
  });

  it('picks a new version up only after the cache max age, with no restart', async () => {
    const v1 = await fixture.addKey();
    const ring = newRing({ publishBeforeUseSeconds: 0 });
    await ring.view();
    const v2 = await fixture.addKey();
    fixture.advance(MAX_AGE - 1);
    expect(await kidsOf(ring)).toEqual({ signing: v1, verifying: [v1] });
    fixture.advance(1);
    expect(await kidsOf(ring)).toEqual({ signing: v2, verifying: [v2, v1] });
    expect(reads).toBe(2);
  });

  it('disabled versions never sign nor appear; a new key signs at once when the old one is disabled', async () => {
    const v1 = await fixture.addKey();
    const v2 = await fixture.addKey();
    await fixture.disable(v2);
    expect(await kidsOf(newRing())).toEqual({ signing: v1, verifying: [v1] });

    const v3 = await fixture.addKey();
    await fixture.disable(v1); // emergency: v1 compromised
    expect(await kidsOf(newRing())).toEqual({ signing: v3, verifying: [v3] });
  });

  it('publishes a version with a future notBefore but signs with it only from then (plus the delay)', async () => {
    const v1 = await fixture.addKey();
    const later = new Date(fixture.clock().getTime() + 3_600_000);
    const jwk = JSON.stringify(generateSigningJwk('ES256'));
    const v2 = (await fixture.store.setSecret(vaultLayout.signingKey, jwk, { notBefore: later })).version;
    const ring = newRing({ publishBeforeUseSeconds: 0 });
    expect(await kidsOf(ring)).toEqual({ signing: v1, verifying: [v1, v2] });
    fixture.advance(3_600);
    expect(await kidsOf(ring)).toEqual({ signing: v2, verifying: [v2, v1] });
  });

  it('skips a version that is not a usable signing key and reports it without key material', async () => {
    const v1 = await fixture.addKey();
    const bad = await fixture.store.setSecret(
      vaultLayout.signingKey,
      JSON.stringify({ kty: 'oct', k: 'c2VjcmV0', d: 'x' }),
    );
    const problems: string[] = [];
    const ring = newRing({ onProblem: (message) => problems.push(message) });
    expect(await kidsOf(ring)).toEqual({ signing: v1, verifying: [v1] });
    expect(problems).toEqual([`signing keys: version ${bad.version} is not a usable signing key; skipped`]);
  });
});

describe('SigningKeyRing reloads', () => {
  it('100 concurrent callers on a cold or expired ring cause one store read', async () => {
    await fixture.addKey();
    const ring = newRing();
    await Promise.all(Array.from({ length: 100 }, () => ring.signingKey()));
    expect(reads).toBe(1);
    fixture.advance(MAX_AGE);
    await Promise.all(Array.from({ length: 100 }, () => ring.publicJwks()));
    expect(reads).toBe(2);
  });

  it('keeps serving the last good ring when the store fails, and retries later', async () => {
    const v1 = await fixture.addKey();
    const ring = newRing({ retryAfterErrorSeconds: 10 });
    await ring.view();
    failReads = true;
    fixture.advance(MAX_AGE);
    expect(await kidsOf(ring)).toEqual({ signing: v1, verifying: [v1] });
    expect(reads).toBe(2);
    fixture.advance(5);
    await ring.view();
    expect(reads).toBe(2); // no hammering of a failing store
    fixture.advance(5);
    await ring.view();
    expect(reads).toBe(3);
  });

  it('is unavailable (503-style) when the store has never answered or holds no key', async () => {
    failReads = true;
    const ring = newRing();
    await expect(ring.view()).rejects.toMatchObject({ name: 'DependencyUnavailableError', dependency: 'secret-store' });
    failReads = false;
    await expect(ring.signingKey()).rejects.toMatchObject({
      name: 'DependencyUnavailableError',
      message: 'No signing key is available',
    });
    expect(await ring.publicJwks()).toEqual([]);
  });
});

describe('SigningKeyRing publishes public members only', () => {
  const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];

  it('EC and RSA keys: exactly the public members, kid, alg and use', async () => {
    await fixture.addKey('RS256');
    await fixture.addKey('ES256');
    const ring = newRing({ publishBeforeUseSeconds: 0 });
    const { keys } = await ring.publicJwkSet();
    expect(keys.map((key) => Object.keys(key).sort())).toEqual([
      ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'],
      ['alg', 'e', 'kid', 'kty', 'n', 'use'],
    ]);
    expect(keys.map((key) => [key.kty, key.alg, key.use])).toEqual([
      ['EC', 'ES256', 'sig'],
      ['RSA', 'RS256', 'sig'],
    ]);
    const serialised = JSON.parse(JSON.stringify({ keys })) as { keys: Record<string, unknown>[] };
    for (const key of serialised.keys) for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
  });
});
