import { app } from '@azure/functions';
import { notImplemented } from '../shared/errors.js';
import { defineStsFunction } from '../shared/http/stsFunction.js';

/** Mixed Reality STS: `GET /accounts/{accountId}/token` (contracts.md §2). */
export const definition = defineStsFunction({
  name: 'mixedRealityToken',
  route: 'accounts/{accountId}/token',
  methods: ['GET'],
  errorShape: 'mixedReality',
  correlationHeader: 'MS-CV',
  handle: async () => {
    throw notImplemented();
  },
});

app.http(definition.name, definition);
