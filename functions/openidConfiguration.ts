import { app } from '@azure/functions';
import { notImplemented } from '../shared/errors.js';
import { defineStsFunction } from '../shared/http/stsFunction.js';

/** OpenID Provider metadata: issuer, `jwks_uri`, token endpoints, algorithms. */
export const definition = defineStsFunction({
  name: 'openidConfiguration',
  route: '.well-known/openid-configuration',
  methods: ['GET'],
  errorShape: 'oauthJson',
  cacheable: true,
  handle: async () => {
    throw notImplemented();
  },
});

app.http(definition.name, definition);
