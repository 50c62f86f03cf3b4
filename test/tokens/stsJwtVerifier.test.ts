import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { calculateJwkThumbprint, UnsecuredJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createStsJwtVerifier, verifySwt, type StsJwtVerifierOptions } from '../../shared/verify/index.js';
import { signSwt } from '../../shared/tokens/swt.js';
import { createSigningKeyFixture, type SigningKeyFixture } from './signingKeyFixture.js';
import { startWellKnownServer, type WellKnownServer } from './wellKnownServer.js';

const AUDIENCE = 'https://mr.test.example/';
const DAY = 86_400;
let fixture: SigningKeyFixture;
let server: WellKnownServer;
/** The servers the current test started (none for the SWT tests): each test closes only its own. */
const started: WellKnownServer[] = [];

async function startServer(): Promise<void> {
  server = await startWellKnownServer(fixture);
  started.push(server);
}

beforeEach(async () => {
  fixture = await createSigningKeyFixture();
});
afterEach(async () => {
  for (const running of started.splice(0)) await running.close();
  await fixture.dispose();
});

function verifierFor(options: Partial<StsJwtVerifierOptions> = {}) {
  return createStsJwtVerifier({ issuer: server.issuer, audience: AUDIENCE, now: fixture.clock, ...options });
}

async function issue(claims: Record<string, unknown> = { aid: 'acct' }, lifetimeSeconds = DAY, now = fixture.clock()) {
  return server.services.jwtIssuer.issue(claims, { audience: AUDIENCE, lifetimeSeconds, now });
}

/** Why verification failed, as the stable jose / STS code. */
async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'verified';
  } catch (error) {
    const { code, claim } = error as { code?: string; claim?: string };
    return claim ? `${code}:${claim}` : (code ?? String(error));
  }
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('createStsJwtVerifier through discovery + JWKS over HTTP', () => {
  beforeEach(async () => {
    await fixture.addKey('ES256');
    await startServer();
  });

  it('verifies an issued token and returns its claims', async () => {
    const issued = await issue();
    const claims = await verifierFor().verify(issued.token);
    expect(claims).toMatchObject({
      aid: 'acct',
      iss: server.issuer,
      aud: AUDIENCE,
      jti: issued.jti,
      exp: issued.expiresAt,
    });
    expect(server.hits.get('/.well-known/openid-configuration')).toBe(1);
    expect(server.hits.get('/.well-known/jwks.json')).toBe(1);
  });

  it('caches discovery and keys: 50 verifications, one fetch each', async () => {
    const verifier = verifierFor();
    const { token } = await issue();
    await Promise.all(Array.from({ length: 50 }, () => verifier.verify(token)));
    expect(server.hits.get('/.well-known/openid-configuration')).toBe(1);
    expect(server.hits.get('/.well-known/jwks.json')).toBe(1);
  });

  it('rejects a tampered payload or signature', async () => {
    const { token } = await issue();
    const [header, payload, signature = ''] = token.split('.');
    const forgedPayload = Buffer.from(
      Buffer.from(payload ?? '', 'base64url')
        .toString()
        .replace('"acct"', '"root"'),
    ).toString('base64url');
    const flipped = `${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    const verifier = verifierFor();
    expect(await failure(verifier.verify(`${header}.${forgedPayload}.${signature}`))).toBe(
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    );
    expect(await failure(verifier.verify(`${header}.${payload}.${flipped}`))).toBe(
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    );
  });

  it('rejects a token from a foreign key, with an unknown kid or with our kid', async () => {
    const { token } = await issue();
    const [, payload] = token.split('.');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const foreignKid = await calculateJwkThumbprint(publicKey.export({ format: 'jwk' }));
    const ourKid = (await server.ring.view()).signing?.kid;
    const forge = (kid: string | undefined) => {
      const input = `${b64url({ alg: 'ES256', kid, typ: 'JWT' })}.${payload}`;
      return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    };
    const verifier = verifierFor({ cooldownMs: 60_000 });
    expect(await failure(verifier.verify(forge(foreignKid)))).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(await failure(verifier.verify(forge(ourKid)))).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    // the unknown kid did not make the verifier hammer the JWKS (cooldown)
    expect(await failure(verifier.verify(forge(foreignKid)))).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(server.hits.get('/.well-known/jwks.json')).toBe(1);
  });

  it('rejects alg none and HS256 signed with the published public key', async () => {
    const { token } = await issue();
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >;
    const unsecured = new UnsecuredJWT(claims).encode();
    const verifier = verifierFor();
    expect(await failure(verifier.verify(unsecured))).toBe('ERR_JOSE_ALG_NOT_ALLOWED');

    const [published] = await server.ring.publicJwks();
    const hmacKeys = [
      Buffer.from(JSON.stringify(published)),
      Buffer.from(published && 'x' in published ? published.x : '', 'base64url'),
    ];
    for (const secret of hmacKeys) {
      const input = `${b64url({ alg: 'HS256', kid: published?.kid, typ: 'JWT' })}.${token.split('.')[1]}`;
      const forged = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      expect(await failure(verifier.verify(forged))).toBe('ERR_JOSE_ALG_NOT_ALLOWED');
    }
    expect(() => createStsJwtVerifier({ issuer: server.issuer, audience: AUDIENCE, algorithms: ['HS256'] })).toThrow(
      TypeError,
    );
    expect(() => createStsJwtVerifier({ issuer: server.issuer, audience: AUDIENCE, algorithms: ['none'] })).toThrow(
      TypeError,
    );
  });

  it('rejects expired and not-yet-valid tokens, within the clock tolerance', async () => {
    const { token } = await issue({}, 600);
    const at = (offsetSeconds: number) => () => new Date(fixture.clock().getTime() + offsetSeconds * 1000);
    expect(await failure(verifierFor({ now: at(600 + 60 - 1), clockToleranceSeconds: 60 }).verify(token))).toBe(
      'verified',
    );
    expect(await failure(verifierFor({ now: at(600 + 60), clockToleranceSeconds: 60 }).verify(token))).toBe(
      'ERR_JWT_EXPIRED:exp',
    );
    expect(await failure(verifierFor({ now: at(600), clockToleranceSeconds: 0 }).verify(token))).toBe(
      'ERR_JWT_EXPIRED:exp',
    );
    expect(await failure(verifierFor({ now: at(-120), clockToleranceSeconds: 60 }).verify(token))).toBe(
      'ERR_JWT_CLAIM_VALIDATION_FAILED:nbf',
    );
  });

  it('rejects another audience or issuer', async () => {
    const { token } = await issue();
    expect(await failure(verifierFor({ audience: 'https://other.example/' }).verify(token))).toBe(
      'ERR_JWT_CLAIM_VALIDATION_FAILED:aud',
    );
    expect(await failure(verifierFor({ audience: ['https://other.example/', AUDIENCE] }).verify(token))).toBe(
      'verified',
    );
    const elsewhere = createStsJwtVerifier({
      issuer: 'https://sts.other.example/',
      audience: AUDIENCE,
      now: fixture.clock,
      jwksUrl: `${server.issuer}.well-known/jwks.json`,
    });
    expect(await failure(elsewhere.verify(token))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED:iss');
    // discovery that names another issuer is refused outright
    const misdirected = createStsJwtVerifier({
      issuer: 'https://sts.other.example/',
      audience: AUDIENCE,
      discoveryUrl: `${server.issuer}.well-known/openid-configuration`,
    });
    expect(await failure(misdirected.verify(token))).toBe('ERR_STS_DISCOVERY');
  });
});

describe('rotation as a resource server sees it', () => {
  it('old tokens verify after rotation, new-key tokens verify without restarting the verifier, retired keys are rejected', async () => {
    const v1 = await fixture.addKey('ES256');
    await startServer();
    const maxAge = server.services.config.secretCache.maxAgeSeconds;
    const verifier = verifierFor({ cooldownMs: 0 });
    const firstToken = (await issue()).token;
    expect(await failure(verifier.verify(firstToken))).toBe('verified');

    fixture.advance(3_600);
    const v2 = await fixture.addKey('RS256');
    fixture.advance(maxAge + 300 - 1); // v2 is published but not yet signing
    expect((await server.ring.view()).signing?.version).toBe(v1);
    const lastV1Token = (await issue()).token;
    fixture.advance(1); // published for the cache age plus a full JWKS max-age: v2 signs now
    expect((await server.ring.view()).signing?.version).toBe(v2);
    const newToken = (await issue()).token;
    expect(JSON.parse(Buffer.from(newToken.split('.')[0] ?? '', 'base64url').toString())).toMatchObject({
      alg: 'RS256',
    });

    // the same verifier, never restarted: unknown kid → one JWKS refetch; the old tokens still verify
    expect(await failure(verifier.verify(newToken))).toBe('verified');
    expect(await failure(verifier.verify(firstToken))).toBe('verified');
    expect(await failure(verifier.verify(lastV1Token))).toBe('verified');

    fixture.advance(DAY - 1); // the last v1 token is at the end of its life, v1 still published
    expect((await server.ring.publicJwks()).map((key) => key.alg)).toEqual(['RS256', 'ES256']);
    expect(await failure(verifierFor().verify(lastV1Token))).toBe('verified');

    fixture.advance(301); // 24 h + 300 s skew after v2 took over: v1 is retired
    expect((await server.ring.publicJwks()).map((key) => key.alg)).toEqual(['RS256']);
    const lenient = verifierFor({ clockToleranceSeconds: 10 * DAY });
    expect(await failure(lenient.verify(lastV1Token))).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(await failure(lenient.verify(newToken))).toBe('verified');
  });
});

describe('verifySwt is exported for WRAP resource servers', () => {
  it('verifies an SWT with the shared key and the expected audience', () => {
    const key = Buffer.alloc(32, 3).toString('base64');
    const token = signSwt(
      [
        ['Audience', 'http://ns.servicebus.test/'],
        ['ExpiresOn', '2000000000'],
        ['Issuer', 'https://ns-sb.test/'],
      ],
      key,
    );
    expect(
      verifySwt(token, key, { audience: 'http://ns.servicebus.test/', now: new Date(1_900_000_000_000) }),
    ).toHaveLength(3);
    expect(() => verifySwt(token, key, { audience: 'http://other/', now: new Date(1_900_000_000_000) })).toThrow(
      /another audience/,
    );
  });
});
