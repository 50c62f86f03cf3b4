import { app } from '../shared/functionsApp.js';
import { publicCacheHeaders } from '../shared/http/responseHeaders.js';
import { defineStsFunction } from '../shared/app/stsFunction.js';
import { buildDiscoveryDocument, DISCOVERY_MAX_AGE_SECONDS } from '../shared/tokens/discoveryDocument.js';

/**
 * `GET /.well-known/openid-configuration`: issuer, `jwks_uri`, the four token endpoints and the signing
 * algorithms, from configuration only. Public and cacheable for {@link DISCOVERY_MAX_AGE_SECONDS}.
 */
export const definition = defineStsFunction({
  name: 'openidConfiguration',
  // Built from configuration alone: nothing to wait for.
  handle: ({ services }) =>
    Promise.resolve({
      response: {
        status: 200,
        headers: {
          ...publicCacheHeaders(DISCOVERY_MAX_AGE_SECONDS),
          'Content-Type': 'application/json; charset=utf-8',
        },
        body: JSON.stringify(buildDiscoveryDocument(services.config)),
      },
    }),
});

app.http(definition.name, definition);
