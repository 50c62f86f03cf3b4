import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { StsBaseError } from '../errors.js';
import { sendOutbound } from '../outbound/outboundRequest.js';

/**
 * Verification of this STS's JWTs in a resource server, through discovery and the JWKS, with `jose`.
 * Self-contained on purpose: it is shipped as the package subpath `./verify` and must not pull in the server.
 */

/** Algorithms the STS signs with (docs/contracts/mixed-reality-sts.md#token, docs/contracts/cognitive-issue-token.md#response); everything else (`none`, `HS256`, …) is refused. */
const DEFAULT_ALGORITHMS = ['ES256', 'RS256'] as const;
const DISCOVERY_PATH = '.well-known/openid-configuration';
/** A discovery document or key set is a few kilobytes; anything far larger is refused. */
const MAX_DOCUMENT_BYTES = 256 * 1024;

export interface StsJwtVerifierOptions {
  /** The STS's configured issuer, e.g. `https://sts.contoso.com/`; `iss` must equal it exactly. */
  readonly issuer: string;
  /** The audience(s) this resource server accepts; `aud` must contain one. */
  readonly audience: string | readonly string[];
  /**
   * Which kind of token is accepted (default `access`). A Face limited access token (LAT) has the same `iss`,
   * `aud` and resource claims as a Cognitive access token of the ISV's resource, plus `feature-flags` and
   * `target-azure-resource-id`, and may live 24 h instead of 10 min, so the two must never be taken for
   * each other: `access` refuses any token carrying either LAT claim; `limitedAccess` requires both (a
   * string array and a string) and refuses the rest. See docs/failed-attempts.md, "Token kinds".
   */
  readonly tokenKind?: StsTokenKind;
  /** Allow-list of JWS algorithms (default `ES256`, `RS256`). */
  readonly algorithms?: readonly string[];
  /** Accepted clock difference for `exp`/`nbf`/`iat`, seconds (default 60). */
  readonly clockToleranceSeconds?: number;
  /** Longest accepted age of a token by its `iat`, seconds; unset means only `exp` limits it. */
  readonly maxTokenAgeSeconds?: number;
  /** Discovery document URL (default `<issuer>/.well-known/openid-configuration`). */
  readonly discoveryUrl?: string;
  /** Skip discovery and read the JWK Set here. */
  readonly jwksUrl?: string;
  /** Skip the network: verify against this JWK Set (e.g. one pinned at deploy time). */
  readonly jwks?: JSONWebKeySet;
  /** How long fetched keys are trusted before a refresh, ms (default 10 minutes). */
  readonly cacheMaxAgeMs?: number;
  /** After a fetch, how long an unknown `kid` waits before it may trigger another fetch, ms (default 30 s). */
  readonly cooldownMs?: number;
  /** Network timeout for discovery and JWKS fetches, ms (default 5 s). */
  readonly timeoutMs?: number;
  /** The clock; tests freeze it. */
  readonly now?: () => Date;
}

/** `access`: Mixed Reality and Cognitive access tokens; `limitedAccess`: Face limited access tokens. */
export type StsTokenKind = 'access' | 'limitedAccess';

/** The claims only a limited access token carries. */
const LIMITED_ACCESS_CLAIMS = ['feature-flags', 'target-azure-resource-id'] as const;

/** A verified token's claims (`iss`, `aud`, `exp`, `iat`, `nbf`, `jti` plus the flow's claims). */
export type StsJwtClaims = JWTPayload & Record<string, unknown>;

export interface StsJwtVerifier {
  /**
   * Verifies the signature (key from the JWKS by `kid`, algorithm on the allow-list), `typ: JWT`, `iss`,
   * `aud`, `exp`/`nbf` (with tolerance) and the presence of `exp`, `iat`, `jti`, then returns the claims.
   * Rejects with `jose`'s errors, which carry stable codes: `ERR_JWS_SIGNATURE_VERIFICATION_FAILED`,
   * `ERR_JWKS_NO_MATCHING_KEY`, `ERR_JOSE_ALG_NOT_ALLOWED`, `ERR_JWT_EXPIRED`, `ERR_JWT_CLAIM_VALIDATION_FAILED`
   * (`claim` says which; also a token of the other {@link StsTokenKind}), `ERR_JWS_INVALID`, `ERR_JWT_INVALID`; and {@link StsDiscoveryError} when the
   * discovery document cannot be used.
   */
  verify(token: string): Promise<StsJwtClaims>;
}

/** The discovery document could not be fetched or does not describe the expected issuer. */
export class StsDiscoveryError extends StsBaseError {
  readonly code = 'ERR_STS_DISCOVERY';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StsDiscoveryError';
  }
}

/**
 * Creates a verifier for JWTs issued by the STS for resource servers
 * (docs/verifying-tokens.md#jwt, docs/contracts/cross-cutting.md#jwt-encoding). Keys come from the STS's discovery document and JWKS, fetched once and cached by
 * `jose`'s remote JWK Set (max age, cooldown on an unknown `kid`, one fetch in flight), so a resource server
 * never calls the STS per request and picks up a rotated key by itself.
 *
 * @example
 * import { createStsJwtVerifier } from 'azure-functions-sts/verify';
 * const verifier = createStsJwtVerifier({ issuer: 'https://sts.contoso.com/', audience: 'https://api.contoso.com/' });
 * const claims = await verifier.verify(bearerToken); // throws when the token is not valid
 */
export function createStsJwtVerifier(options: StsJwtVerifierOptions): StsJwtVerifier {
  const algorithms = [...(options.algorithms ?? DEFAULT_ALGORITHMS)];
  if (algorithms.some((alg) => alg === 'none' || alg.startsWith('HS'))) {
    throw new TypeError('Only asymmetric algorithms can verify STS tokens');
  }
  const timeoutMs = options.timeoutMs ?? 5_000;
  const remoteOptions = {
    timeoutDuration: timeoutMs,
    cooldownDuration: options.cooldownMs ?? 30_000,
    cacheMaxAge: options.cacheMaxAgeMs ?? 600_000,
    [customFetch]: jwksFetch(timeoutMs),
  };

  let keys: JWTVerifyGetKey | undefined = options.jwks
    ? createLocalJWKSet(options.jwks)
    : options.jwksUrl
      ? createRemoteJWKSet(new URL(options.jwksUrl), remoteOptions)
      : undefined;
  let discovering: Promise<JWTVerifyGetKey> | undefined;

  const discoveryUrl = options.discoveryUrl ?? `${options.issuer.replace(/\/?$/, '/')}${DISCOVERY_PATH}`;
  const keySource = (): Promise<JWTVerifyGetKey> => {
    if (keys) return Promise.resolve(keys);
    // One discovery in flight; a failure is not cached, so the next token retries. Not a cache: the URI found is
    // kept for good, and the keys are cached by jose's createRemoteJWKSet (this module stands alone for verifiers).
    discovering ??= discoverJwksUri(discoveryUrl, options.issuer, timeoutMs)
      .then((jwksUri) => (keys = createRemoteJWKSet(jwksUri, remoteOptions)))
      .finally(() => {
        discovering = undefined;
      });
    return discovering;
  };

  return {
    async verify(token) {
      const getKey = await keySource();
      const { payload } = await jwtVerify(token, getKey, {
        issuer: options.issuer,
        audience: typeof options.audience === 'string' ? options.audience : [...options.audience],
        algorithms,
        typ: 'JWT',
        clockTolerance: options.clockToleranceSeconds ?? 60,
        requiredClaims: ['exp', 'iat', 'jti'],
        ...(options.maxTokenAgeSeconds === undefined ? {} : { maxTokenAge: options.maxTokenAgeSeconds }),
        ...(options.now ? { currentDate: options.now() } : {}),
      });
      checkTokenKind(payload, options.tokenKind ?? 'access');
      return payload;
    },
  };
}

function checkTokenKind(payload: JWTPayload, kind: StsTokenKind): void {
  if (kind === 'access') {
    const present = LIMITED_ACCESS_CLAIMS.find((claim) => claim in payload);
    if (present)
      throw new errors.JWTClaimValidationFailed(
        'A limited access token is not an access token',
        payload,
        present,
        'unspecified',
      );
    return;
  }
  const flags = payload['feature-flags'];
  if (!Array.isArray(flags) || !flags.every((flag) => typeof flag === 'string')) {
    throw new errors.JWTClaimValidationFailed(
      '"feature-flags" claim must be an array of strings',
      payload,
      'feature-flags',
      'missing',
    );
  }
  const target = payload['target-azure-resource-id'];
  if (typeof target !== 'string' || target === '') {
    throw new errors.JWTClaimValidationFailed(
      '"target-azure-resource-id" claim must be a string',
      payload,
      'target-azure-resource-id',
      'missing',
    );
  }
}

async function discoverJwksUri(discoveryUrl: string, issuer: string, timeoutMs: number): Promise<URL> {
  let document: unknown;
  try {
    const answer = await sendOutbound({
      url: new URL(discoveryUrl),
      headers: { accept: 'application/json' },
      timeoutMs,
      maxResponseBytes: MAX_DOCUMENT_BYTES,
    });
    if (answer.status !== 200) throw new StsDiscoveryError(`Discovery answered ${answer.status}`);
    document = JSON.parse(answer.body);
  } catch (error) {
    if (error instanceof StsDiscoveryError) throw error;
    throw new StsDiscoveryError('The discovery document could not be fetched', { cause: error });
  }
  const { issuer: advertised, jwks_uri: jwksUri } = (document ?? {}) as { issuer?: unknown; jwks_uri?: unknown };
  if (advertised !== issuer) throw new StsDiscoveryError('The discovery document is for another issuer');
  if (typeof jwksUri !== 'string') throw new StsDiscoveryError('The discovery document has no jwks_uri');
  try {
    return new URL(jwksUri);
  } catch (error) {
    throw new StsDiscoveryError('The discovery document has an invalid jwks_uri', { cause: error });
  }
}

/**
 * jose's key-set fetch, through the one outbound client (no redirect followed, bounded in time and size) instead
 * of the global `fetch`; jose reads only the status and the JSON body of what it returns.
 */
function jwksFetch(timeoutMs: number): (url: string, init: RequestInit) => Promise<Response> {
  return async (url, init) => {
    const answer = await sendOutbound({
      url: new URL(url),
      headers: Object.fromEntries(new Headers(init.headers)),
      timeoutMs,
      maxResponseBytes: MAX_DOCUMENT_BYTES,
    });
    const bodiless = answer.status === 204 || answer.status === 205 || answer.status === 304;
    return new Response(bodiless ? null : answer.body, { status: answer.status });
  };
}
