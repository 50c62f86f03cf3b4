import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import type { SecretStore } from '../secrets/secretStore.js';
import { vaultLayout } from '../credentials/vaultLayout.js';
import { DependencyUnavailableError } from '../errors.js';

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

/**
 * First cut: signs with the newest enabled version of `sts-signing-key`, re-read per call through the
 * (cached) store. Superseded by the signing key ring (issue: signed tokens anyone can verify).
 */
export function createJwtIssuer(issuer: string, secrets: SecretStore): JwtIssuer {
  return {
    async issue(claims, { audience, lifetimeSeconds, now }) {
      const secret = await secrets.getSecret(vaultLayout.signingKey);
      if (!secret) throw new DependencyUnavailableError('secret-store', 30, 'No signing key is available');
      const jwk = JSON.parse(secret.value) as JWK & { alg: string };
      const key = await importJWK(jwk, jwk.alg);
      const issuedAt = Math.floor(now.getTime() / 1000);
      const expiresAt = issuedAt + lifetimeSeconds;
      const jti = randomUUID();
      const token = await new SignJWT({ ...claims })
        .setProtectedHeader({ alg: jwk.alg, typ: 'JWT' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt(issuedAt)
        .setNotBefore(issuedAt)
        .setExpirationTime(expiresAt)
        .setJti(jti)
        .sign(key);
      return { token, jti, issuedAt, expiresAt };
    },
  };
}
