import fc from 'fast-check';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createJwtIssuer, type JwtIssuer } from '../../shared/tokens/jwtIssuer.js';
import { SigningKeyRing } from '../../shared/tokens/signingKeyRing.js';
import { createSigningKeyFixture, type SigningKeyFixture } from './signingKeyFixture.js';

const ISSUER = 'https://sts.example.test/';
const AUDIENCE = 'https://mr.example.test/';

let fixture: SigningKeyFixture;
let ring: SigningKeyRing;
let issuer: JwtIssuer;

beforeEach(async () => {
  fixture = await createSigningKeyFixture();
  ring = new SigningKeyRing({ secrets: fixture.store, clock: fixture.clock, maxAgeSeconds: 60 });
  issuer = createJwtIssuer(ISSUER, ring);
});
afterEach(() => fixture.dispose());

/** The payload as the Java / browser MR SDKs read it: strict standard base64 (atob throws on `-`/`_`). */
function decodeWithStandardBase64(segment: string): unknown {
  const binary = atob(segment);
  return JSON.parse(Buffer.from(binary, 'latin1').toString('utf8'));
}

/** The Python MR SDK: `b64decode(seg + "===")` silently drops characters outside the standard alphabet. */
function decodeLikePython(segment: string): unknown {
  const kept = segment.replace(/[^A-Za-z0-9+/]/g, '');
  return JSON.parse(Buffer.from(kept, 'base64').toString('utf8'));
}

async function verifyLocally(token: string) {
  const jwks = createLocalJWKSet({ keys: [...(await ring.publicJwks())] });
  return jwtVerify(token, jwks, {
    issuer: ISSUER,
    audience: AUDIENCE,
    currentDate: fixture.clock(),
    algorithms: ['ES256', 'RS256'],
  });
}

describe('JwtIssuer', () => {
  it('signs ES256 with kid = RFC 7638 thumbprint, typ JWT, integer iat/nbf/exp, random jti, configured iss', async () => {
    await fixture.addKey('ES256');
    const now = fixture.clock();
    const first = await issuer.issue(
      { aid: 'abc', iss: 'ignored', exp: 'ignored' },
      { audience: AUDIENCE, lifetimeSeconds: 86_400, now },
    );
    const second = await issuer.issue({ aid: 'abc' }, { audience: AUDIENCE, lifetimeSeconds: 86_400, now });
    const { signing } = await ring.view();

    expect(decodeProtectedHeader(first.token)).toEqual({ alg: 'ES256', kid: signing?.kid, typ: 'JWT' });
    expect(signing?.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const { payload } = await verifyLocally(first.token);
    const nowSeconds = now.getTime() / 1000;
    expect(payload).toEqual({
      jti: first.jti,
      aid: 'abc',
      nbf: nowSeconds,
      exp: nowSeconds + 86_400,
      iat: nowSeconds,
      iss: ISSUER,
      aud: AUDIENCE,
    });
    expect(Object.keys(payload)).toEqual(['jti', 'aid', 'nbf', 'exp', 'iat', 'iss', 'aud']);
    expect(first).toMatchObject({ issuedAt: nowSeconds, expiresAt: nowSeconds + 86_400 });
    expect(first.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(second.jti).not.toBe(first.jti);
    // ES256 signatures are IEEE P1363 r||s: 64 bytes
    expect(Buffer.from(first.token.split('.')[2] ?? '', 'base64url')).toHaveLength(64);
  });

  it('signs RS256 when the signing key is RSA', async () => {
    await fixture.addKey('RS256');
    const issued = await issuer.issue({}, { audience: AUDIENCE, lifetimeSeconds: 600, now: fixture.clock() });
    expect(decodeProtectedHeader(issued.token)).toMatchObject({ alg: 'RS256', typ: 'JWT' });
    const { payload, protectedHeader } = await verifyLocally(issued.token);
    expect(payload.exp).toBe(issued.expiresAt);
    expect(protectedHeader.kid).toBe((await ring.view()).signing?.kid);
  });

  it('answers 503-style DependencyUnavailableError when no signing key exists', async () => {
    await expect(
      issuer.issue({}, { audience: AUDIENCE, lifetimeSeconds: 600, now: fixture.clock() }),
    ).rejects.toMatchObject({
      name: 'DependencyUnavailableError',
      dependency: 'secret-store',
    });
  });

  it('writes the real-sample claims so that every decoder agrees (docs/contracts/cross-cutting.md#jwt-encoding)', async () => {
    await fixture.addKey();
    // Values whose plain JSON would put `>`, `?` or `~` at the third byte of a triple, plus non-ASCII.
    const claims = {
      rid: '/subscriptions/x?y=1>2~3',
      apr: 'éü日本😀',
      aao: -1,
      ok: true,
      nested: { a: ['>', '?', '~'] },
    };
    const { token } = await issuer.issue(claims, { audience: AUDIENCE, lifetimeSeconds: 600, now: fixture.clock() });
    const [header = '', payload = ''] = token.split('.');
    for (const segment of [header, payload]) {
      expect(segment).toMatch(/^[A-Za-z0-9]+$|^[A-Za-z0-9+/]+$/);
      expect(segment.length % 4).toBe(0);
    }
    expect(decodeWithStandardBase64(payload)).toMatchObject(claims);
    expect(Buffer.from(payload, 'base64url').toString('ascii')).toMatch(/^\{ {0,2}"jti"/);
    expect(Buffer.from(payload, 'base64url').toString('ascii')).toContain('\\u003e');
  });

  it('property: standard base64, Python-style and base64url decoding all yield the claims, and jose verifies', async () => {
    await fixture.addKey();
    const reserved = new Set(['iss', 'aud', 'iat', 'nbf', 'exp', 'jti']);
    const claimName = fc
      .string({ unit: 'binary', minLength: 1, maxLength: 12 })
      .filter((name) => !reserved.has(name) && name !== '__proto__');
    const claimValue = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: fc.constantFrom('>', '?', '~', 'a', 'é', '😀', '\u007f', '"', '\\'), maxLength: 30 }),
      fc.string({ unit: 'grapheme-ascii', minLength: 200, maxLength: 2_000 }),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
      fc.array(fc.string({ unit: 'binary', maxLength: 8 }), { maxLength: 4 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.dictionary(claimName, claimValue, { maxKeys: 8 }), async (claims) => {
        const { token } = await issuer.issue(claims, {
          audience: AUDIENCE,
          lifetimeSeconds: 600,
          now: fixture.clock(),
        });
        const payload = token.split('.')[1] ?? '';
        expect(payload).not.toMatch(/[-_=]/);
        expect(payload.length % 4).toBe(0);
        const viaBase64Url = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
        expect(decodeWithStandardBase64(payload)).toEqual(viaBase64Url);
        expect(decodeLikePython(payload)).toEqual(viaBase64Url);
        // JSON round trip: -0 becomes 0, which is what any client sees too
        const expected = JSON.parse(JSON.stringify(claims)) as Record<string, unknown>;
        for (const [name, value] of Object.entries(expected)) expect(viaBase64Url[name]).toEqual(value);
        const { payload: verified } = await verifyLocally(token);
        expect(verified).toEqual(viaBase64Url);
      }),
      { numRuns: 150 },
    );
  });
});
