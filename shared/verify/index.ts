/**
 * `azure-functions-sts/verify`: what a resource server needs to check tokens from this STS without calling
 * it per request (docs/verifying-tokens.md).
 *
 * - JWTs (Mixed Reality, Cognitive Services, Face LAT): {@link createStsJwtVerifier}, keys via discovery/JWKS.
 * - SWTs (ACS WRAP): {@link verifySwt} with the namespace's shared key.
 */
export {
  createStsJwtVerifier,
  StsDiscoveryError,
  type StsJwtClaims,
  type StsJwtVerifier,
  type StsJwtVerifierOptions,
  type StsTokenKind,
} from './stsJwtVerifier.js';
export { SwtError, verifySwt, type SwtClaim, type SwtErrorCode, type SwtVerifyOptions } from '../tokens/swt.js';
