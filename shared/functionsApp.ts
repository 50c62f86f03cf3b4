import { createRequire } from 'node:module';
import type * as AzureFunctions from '@azure/functions';

/**
 * The `app` registry of `@azure/functions`, loaded with `require()`. The package is one large CommonJS
 * bundle: importing it from an ES module makes Node scan the whole bundle for named exports first, which
 * measured ~30 % of the app's module load time (cold start). `require()` skips the scan; it is the same
 * module instance the Functions worker uses.
 */
const requireFromHere = createRequire(import.meta.url);
export const { app } = requireFromHere('@azure/functions') as typeof AzureFunctions;

// HTTP streaming, set before any function file registers (every one imports `app` from here, so this runs
// first). Without it the host hands the worker a body only when the request declares a Content-Length, and
// a chunked POST (API gateways, .NET clients that stream content) reaches the flow empty. With it the host
// proxies the raw request to the worker. See docs/hosts.md and
// https://learn.microsoft.com/azure/azure-functions/functions-reference-node#http-streams
app.setup({ enableHttpStream: true });
