import { randomUUID, sign, type KeyObject } from 'node:crypto';
import { encodeJwtSegment, encodeJwtSegmentJson } from './jwtSegment.js';
import type { SigningAlgorithm } from './signingKeyMaterial.js';
import type { RingKey } from './signingKeyRing.js';

export interface IssuedJwt {
  readonly token: string;
  readonly jti: string;
  /** Seconds since the epoch. */
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export interface JwtIssueOptions {
  readonly audience: string;
  readonly lifetimeSeconds: number;
  readonly now: Date;
}

/**
 * Signs JWTs for the flows. Adds `iss` (configured), `aud`, integer `iat`/`nbf`/`exp` and a random `jti`
 * to the flow's claims.
 */
export interface JwtIssuer {
  issue(claims: Readonly<Record<string, unknown>>, options: JwtIssueOptions): Promise<IssuedJwt>;
}

/** Where the issuer gets the key to sign with at a given instant: normally the signing key ring (`SigningKeyRing`). */
export interface SigningKeySource {
  signingKey(now: Date): Promise<RingKey>;
}

/** Claims the issuer sets itself; a flow's claim of the same name is overwritten. */
const RESERVED_CLAIMS = new Set(['iss', 'aud', 'iat', 'nbf', 'exp', 'jti']);

/**
 * The JWT issuer of docs/contracts/cross-cutting.md#jwt-encoding, docs/contracts/mixed-reality-sts.md#token, docs/contracts/cognitive-issue-token.md#response, docs/contracts/cognitive-limited-access-token.md#response: JWS compact form, `{alg, kid, typ: "JWT"}` with
 * `kid` the RFC 7638 thumbprint of the signing key, ES256 (P-256, IEEE P1363 `r||s`) or RS256 (PKCS#1 v1.5)
 * by key type. Header and payload are written with {@link encodeJwtSegmentJson}, so the payload decodes with
 * standard base64 as well as base64url. Signs with the ring's cached `KeyObject` (nothing is re-imported
 * per token), synchronously on the calling thread (see {@link signJws}).
 *
 * Claim order follows the real Mixed Reality sample: `jti`, the flow's claims, `nbf`, `exp`, `iat`, `iss`,
 * `aud`.
 *
 * @example
 * const issuer = createJwtIssuer(config.issuer, ring);
 * const { token, expiresAt } = await issuer.issue({ aid: accountId }, { audience, lifetimeSeconds: 86_400, now });
 */
export function createJwtIssuer(issuer: string, source: SigningKeySource): JwtIssuer {
  return {
    async issue(claims, { audience, lifetimeSeconds, now }) {
      if (!Number.isSafeInteger(lifetimeSeconds) || lifetimeSeconds <= 0) {
        throw new RangeError('lifetimeSeconds must be a positive whole number');
      }
      const key = await source.signingKey(now);
      const issuedAt = Math.floor(now.getTime() / 1000);
      const expiresAt = issuedAt + lifetimeSeconds;
      const jti = randomUUID();
      // Built in claim order in one object (no intermediate entry arrays: this runs once per token).
      const payload: Record<string, unknown> = { jti };
      for (const name of Object.keys(claims)) if (!RESERVED_CLAIMS.has(name)) payload[name] = claims[name];
      payload.nbf = issuedAt;
      payload.exp = expiresAt;
      payload.iat = issuedAt;
      payload.iss = issuer;
      payload.aud = audience;
      const header = headerSegment(key);
      const payloadSegment = encodeJwtSegment(payload);
      const signature = signJws(key.alg, key.privateKey, signingInputBytes(header, payloadSegment));
      return { token: `${header}.${payloadSegment}.${signature.toString('base64url')}`, jti, issuedAt, expiresAt };
    },
  };
}

/** The protected header depends on the key only: encoded once per key. */
const headerSegments = new WeakMap<RingKey, string>();
function headerSegment(key: RingKey): string {
  let segment = headerSegments.get(key);
  if (segment === undefined) {
    segment = encodeJwtSegmentJson({ alg: key.alg, kid: key.kid, typ: 'JWT' }).toString('base64url');
    headerSegments.set(key, segment);
  }
  return segment;
}

/**
 * The ASCII bytes of `header.payload`, the JWS signing input, in a reused buffer (read by the signature at once,
 * before the next token writes it again); a longer input gets its own.
 */
function signingInputBytes(header: string, payload: string): Buffer {
  const length = header.length + 1 + payload.length;
  const out = length <= SIGNING_INPUT.length ? SIGNING_INPUT : Buffer.allocUnsafe(length);
  out.write(header, 0, 'latin1');
  out[header.length] = 0x2e; // .
  out.write(payload, header.length + 1, 'latin1');
  return out.subarray(0, length);
}

const SIGNING_INPUT = Buffer.alloc(16_384);

/**
 * Signs synchronously: one ES256 signature is ~30 µs of CPU, less than the thread-pool round trip of the
 * async form costs under load (measured with `npm run bench`).
 */
function signJws(alg: SigningAlgorithm, privateKey: KeyObject, data: Buffer): Buffer {
  switch (alg) {
    case 'ES256':
      return sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    case 'RS256':
      return sign('sha256', data, privateKey);
  }
}
