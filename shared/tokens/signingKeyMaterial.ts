import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { StsBaseError } from '../errors.js';

export type SigningAlgorithm = 'ES256' | 'RS256';

/**
 * A new private signing key as a JWK (the value stored in each version of the `sts-signing-key` secret).
 * ES256 (P-256) by default; RS256 with a 2048-bit modulus when asked.
 */
export function generateSigningJwk(alg: SigningAlgorithm = 'ES256'): JsonWebKey & { alg: SigningAlgorithm } {
  const { privateKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), alg };
}

/** The public half of a signing key, exactly as published in the JWKS (no private member ever). */
export type PublicSigningJwk =
  | {
      readonly kty: 'EC';
      readonly crv: 'P-256';
      readonly x: string;
      readonly y: string;
      readonly kid: string;
      readonly alg: 'ES256';
      readonly use: 'sig';
    }
  | {
      readonly kty: 'RSA';
      readonly n: string;
      readonly e: string;
      readonly kid: string;
      readonly alg: 'RS256';
      readonly use: 'sig';
    };

/** One parsed version of `sts-signing-key`: the private key for signing and its public JWK. */
export interface SigningKeyMaterial {
  readonly alg: SigningAlgorithm;
  /** RFC 7638 SHA-256 thumbprint of the public key, base64url. */
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicJwk: PublicSigningJwk;
}

/** Why a stored signing key version was refused (the message never contains key material). */
export class SigningKeyMaterialError extends StsBaseError {
  readonly code = 'ERR_STS_SIGNING_KEY_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'SigningKeyMaterialError';
  }
}

const MIN_RSA_MODULUS_BITS = 2048;

/**
 * Parses one version of the `sts-signing-key` secret (a private JWK as JSON) into a cached `KeyObject` and
 * its public JWK. ES256 needs an EC P-256 key, RS256 an RSA key of at least 2048 bits; a missing `alg` is
 * inferred from `kty` (EC → ES256, RSA → RS256). Only `kty`, `crv`, `x`, `y` / `n`, `e` are copied to the
 * public JWK, so no private member can leak through it.
 */
export function parseSigningJwk(value: string): Promise<SigningKeyMaterial> {
  // A promise, rejected (never thrown) for a bad key: the signing key ring caches it per version.
  return new Promise((resolve) => resolve(signingKeyMaterialOf(value)));
}

function signingKeyMaterialOf(value: string): SigningKeyMaterial {
  let jwk: JsonWebKey & { alg?: unknown };
  try {
    jwk = JSON.parse(value) as JsonWebKey & { alg?: unknown };
  } catch {
    throw new SigningKeyMaterialError('The signing key is not JSON');
  }
  if (!jwk || typeof jwk !== 'object' || typeof jwk.d !== 'string') {
    throw new SigningKeyMaterialError('The signing key is not a private JWK');
  }
  const alg = jwk.alg ?? (jwk.kty === 'EC' ? 'ES256' : jwk.kty === 'RSA' ? 'RS256' : undefined);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  } catch {
    throw new SigningKeyMaterialError('The signing key cannot be imported');
  }
  const exported = createPublicKey(privateKey).export({ format: 'jwk' });
  let publicParts: { kty: 'EC'; crv: 'P-256'; x: string; y: string } | { kty: 'RSA'; n: string; e: string };
  if (alg === 'ES256' && exported.kty === 'EC' && exported.crv === 'P-256' && exported.x && exported.y) {
    publicParts = { kty: 'EC', crv: 'P-256', x: exported.x, y: exported.y };
  } else if (
    alg === 'RS256' &&
    exported.kty === 'RSA' &&
    exported.n &&
    exported.e &&
    (privateKey.asymmetricKeyDetails?.modulusLength ?? 0) >= MIN_RSA_MODULUS_BITS
  ) {
    publicParts = { kty: 'RSA', n: exported.n, e: exported.e };
  } else {
    throw new SigningKeyMaterialError(
      'The signing key must be EC P-256 for ES256 or RSA (2048 bits or more) for RS256',
    );
  }
  const kid = jwkThumbprint(publicParts);
  const publicJwk = (
    publicParts.kty === 'EC'
      ? { ...publicParts, kid, alg: 'ES256', use: 'sig' }
      : { ...publicParts, kid, alg: 'RS256', use: 'sig' }
  ) as PublicSigningJwk;
  return { alg: publicJwk.alg, kid, privateKey, publicJwk };
}

/**
 * RFC 7638 §3: SHA-256 over the JSON of the required public members in lexicographic order, no whitespace,
 * base64url. (Done with node:crypto so the app does not load `jose` at start: cold start matters.)
 */
export function jwkThumbprint(
  publicParts: { kty: 'EC'; crv: string; x: string; y: string } | { kty: 'RSA'; n: string; e: string },
): string {
  const canonical =
    publicParts.kty === 'EC'
      ? JSON.stringify({ crv: publicParts.crv, kty: publicParts.kty, x: publicParts.x, y: publicParts.y })
      : JSON.stringify({ e: publicParts.e, kty: publicParts.kty, n: publicParts.n });
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}
