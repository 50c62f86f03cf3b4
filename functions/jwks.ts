import { app } from '@azure/functions';
import { notImplemented } from '../shared/errors.js';
import { defineStsFunction } from '../shared/http/stsFunction.js';

/** The public signing keys (JWK Set) that verify every JWT this STS issues. */
export const definition = defineStsFunction({
  name: 'jwks',
  route: '.well-known/jwks.json',
  methods: ['GET'],
  errorShape: 'oauthJson',
  cacheable: true,
  handle: async () => {
    throw notImplemented();
  },
});

app.http(definition.name, definition);
