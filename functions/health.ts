import { app } from '../shared/functionsApp.js';
import { defineHealthFunction } from '../shared/health/healthFunction.js';

/**
 * `GET /health`: whether this instance can issue tokens (the vault with the app's identity, the signing key and
 * its age, the ledger table, the Entra authority when configured), as `200 {"status":"healthy",…}` or `503`.
 * States and ages only; cached per instance for a few seconds. See docs/operations.md, "Health endpoint".
 */
export const definition = defineHealthFunction();

app.http(definition.name, definition);
