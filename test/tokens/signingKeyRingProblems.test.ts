import { writeFile, utimes } from 'node:fs/promises';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { definition as jwks } from '../../functions/jwks.js';
import { loadConfig } from '../../shared/config.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import type { SecretStore } from '../../shared/secrets/secretStore.js';
import { createServices } from '../../shared/services.js';
import { SigningKeyRing } from '../../shared/tokens/signingKeyRing.js';
import { createSigningKeyFixture, type SigningKeyFixture } from './signingKeyFixture.js';

/**
 * A signing key ring that degrades says so once: when the store fails and the last good keys serve on
 * (again after it recovered and failed anew), and when an enabled version is not a usable key. Never per
 * request, never with key material.
 */

const MAX_AGE = 60;
const RETRY_AFTER_ERROR = 10;
/** A version that parses as JSON but is not a signing key (symmetric, with a private-looking member). */
const UNUSABLE_JWK = JSON.stringify({ kty: 'oct', k: 'c2VjcmV0LWJ1dC1ub3QtYS1zaWduaW5nLWtleQ', d: 'x' });

let fixture: SigningKeyFixture;
let failReads: boolean;
let problems: string[];
let ring: SigningKeyRing;

beforeEach(async () => {
  fixture = await createSigningKeyFixture();
  failReads = false;
  problems = [];
  const store: SecretStore = {
    getSecret: (name) => fixture.store.getSecret(name),
    getFreshSecret: (name) => fixture.store.getFreshSecret(name),
    getSecretVersions: async (name) => {
      if (failReads) throw new Error('vault unreachable');
      return fixture.store.getSecretVersions(name);
    },
  };
  ring = new SigningKeyRing({
    secrets: store,
    clock: fixture.clock,
    maxAgeSeconds: MAX_AGE,
    retryAfterErrorSeconds: RETRY_AFTER_ERROR,
    onProblem: (message) => problems.push(message),
  });
});
afterEach(() => fixture.dispose());

/** Many requests over `seconds`, re-reading the store whenever the ring may (every retry or max age). */
async function serveFor(seconds: number): Promise<void> {
  for (let elapsed = 0; elapsed < seconds; elapsed += 5) {
    await Promise.all(Array.from({ length: 10 }, () => ring.publicJwks()));
    fixture.advance(5);
  }
}

describe('SigningKeyRing reports a failing store once per outage', () => {
  it('one line while the store stays down, one when it answers again, and one more for the next outage', async () => {
    const v1 = await fixture.addKey();
    await ring.view();
    failReads = true;
    fixture.advance(MAX_AGE);
    await serveFor(10 * RETRY_AFTER_ERROR); // ten retries, all failing, hundreds of requests
    expect((await ring.view()).signing?.version).toBe(v1); // served stale throughout
    expect(problems).toEqual([
      'signing keys: store unavailable (Error: vault unreachable); serving the last good ring until it answers',
    ]);

    failReads = false;
    await serveFor(2 * RETRY_AFTER_ERROR);
    expect(problems.slice(1)).toEqual(['signing keys: store answering again; the ring is current']);

    failReads = true;
    fixture.advance(MAX_AGE);
    await serveFor(3 * RETRY_AFTER_ERROR);
    expect(problems).toHaveLength(3);
    expect(problems[2]).toMatch(/^signing keys: store unavailable/);
  });

  it('says nothing while the store answers', async () => {
    await fixture.addKey();
    await serveFor(5 * MAX_AGE);
    expect(problems).toEqual([]);
  });
});

describe('SigningKeyRing reports an unusable version once', () => {
  it('once across every reload; again only when the version is disabled and enabled anew', async () => {
    const v1 = await fixture.addKey();
    const bad = (await fixture.store.setSecret(vaultLayout.signingKey, UNUSABLE_JWK)).version;
    await serveFor(5 * MAX_AGE); // five reloads
    expect((await ring.view()).verifying.map((key) => key.version)).toEqual([v1]);
    const line = `signing keys: version ${bad} is not a usable signing key; skipped`;
    expect(problems).toEqual([line]);

    await fixture.disable(bad);
    await serveFor(2 * MAX_AGE);
    await fixture.store.updateSecretVersion(vaultLayout.signingKey, bad, { enabled: true });
    await serveFor(2 * MAX_AGE);
    expect(problems).toEqual([line, line]);
    expect(problems.join('\n')).not.toContain('c2VjcmV0');
  });
});

describe('the services wire the ring to a logger', () => {
  let mtimeSeconds = 1_900_000_000;
  /** The file store notices a change by its modification time: give each write a distinct one. */
  async function touch(path: string): Promise<void> {
    mtimeSeconds += 10;
    await utimes(path, mtimeSeconds, mtimeSeconds);
  }

  afterEach(() => {
    vi.useRealTimers();
  });

  it('a JWKS served from stale keys after the store broke is logged once, without key material', async () => {
    // The file store checks the file at most once a real second: that clock is frozen and moved by hand too.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-03-01T09:30:00Z'));
    await fixture.addKey();
    const signingKey = (await fixture.store.getSecret(vaultLayout.signingKey))?.value ?? '';
    const privateD = (JSON.parse(signingKey) as { d: string }).d;
    await fixture.store.setSecret(vaultLayout.signingKey, UNUSABLE_JWK);
    await touch(fixture.store.path);
    const warnings: string[] = [];
    const config = loadConfig({
      STS_ISSUER: 'https://sts.test.example/',
      STS_LEDGER_MODE: 'off',
      STS_LOCAL_STORE_PATH: fixture.store.path,
      STS_SECRET_CACHE_MAX_AGE_SECONDS: String(MAX_AGE),
    });
    const services = await createServices(
      config,
      () => new Date(),
      (line) => warnings.push(line),
    );
    const handler = jwks.handlerFor(services);
    const getJwks = async () => {
      const request = new HttpRequest({ method: 'GET', url: 'http://127.0.0.1:7071/.well-known/jwks.json' });
      const answer = (await handler(request, new InvocationContext({ logHandler: () => {} }))) as HttpResponseInit;
      return {
        status: answer.status,
        kids: (JSON.parse(answer.body as string) as { keys: Array<{ kid: string }> }).keys.length,
      };
    };

    expect(await getJwks()).toEqual({ status: 200, kids: 1 });
    await writeFile(fixture.store.path, '{ "secrets": '); // a half-written file: the store cannot be read
    await touch(fixture.store.path);
    for (let i = 0; i < 20; i += 1) {
      vi.setSystemTime(Date.now() + 30_000); // past the max age and every retry
      expect(await getJwks()).toEqual({ status: 200, kids: 1 });
    }

    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^signing keys: version [0-9a-f]+ is not a usable signing key; skipped$/);
    expect(warnings[1]).toMatch(
      /^signing keys: store unavailable \(.+\); serving the last good ring until it answers$/,
    );
    expect(warnings.join('\n')).not.toContain(privateD);
    await services.upstream.close();
  });
});
