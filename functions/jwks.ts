import { app } from '../shared/functionsApp.js';
import { publicCacheHeaders } from '../shared/http/responseHeaders.js';
import { defineStsFunction } from '../shared/app/stsFunction.js';
import { JWKS_MAX_AGE_SECONDS } from '../shared/tokens/signingKeyRing.js';

/**
 * `GET /.well-known/jwks.json`: the public keys (RFC 7517 JWK Set) that verify every JWT this STS issues,
 * from the signing key ring; private members never appear. Public and cacheable for
 * {@link JWKS_MAX_AGE_SECONDS}, far less than the 24 h a superseded key stays published. A store outage
 * before the first successful read is a 503 with `Retry-After`.
 */
export const definition = defineStsFunction({
  name: 'jwks',
  handle: async ({ services, now }) => ({
    response: {
      status: 200,
      headers: { ...publicCacheHeaders(JWKS_MAX_AGE_SECONDS), 'Content-Type': 'application/json; charset=utf-8' },
      body: JSON.stringify(await services.signingKeys.publicJwkSet(now)),
    },
  }),
});

app.http(definition.name, definition);
