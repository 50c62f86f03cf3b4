import { app } from '@azure/functions';
import { notImplemented } from '../shared/errors.js';
import { defineStsFunction } from '../shared/http/stsFunction.js';

/** Cognitive Services `POST /sts/v1.0/issueLimitedAccessToken` (contracts.md §4). */
export const definition = defineStsFunction({
  name: 'issueLimitedAccessToken',
  route: 'sts/v1.0/issueLimitedAccessToken',
  methods: ['POST'],
  errorShape: 'cognitive',
  correlationHeader: 'apim-request-id',
  handle: async () => {
    throw notImplemented();
  },
});

app.http(definition.name, definition);
