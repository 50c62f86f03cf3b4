import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';

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
