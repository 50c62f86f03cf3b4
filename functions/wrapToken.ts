import { app } from '@azure/functions';
import { notImplemented } from '../shared/errors.js';
import { defineStsFunction } from '../shared/http/stsFunction.js';

/** ACS OAuth WRAP v0.9 `POST /WRAPv0.9/` (contracts.md §5). */
export const definition = defineStsFunction({
  name: 'wrapToken',
  route: 'WRAPv0.9',
  methods: ['POST'],
  errorShape: 'wrap',
  correlationHeader: 'request-id',
  handle: async () => {
    throw notImplemented();
  },
});

app.http(definition.name, definition);
