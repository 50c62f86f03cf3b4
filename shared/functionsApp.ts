import { app } from '@azure/functions';
import { raiseWorkerProxyHeaderLimit } from './http/workerProxyHeaderLimit.js';

/**
 * The `app` registry of `@azure/functions`, imported statically so that `npm run package` (esbuild) can bundle
 * the library into the deployment artifact; only `@azure/functions-core`, which the Functions worker provides,
 * stays external. It is the same module instance the worker uses.
 *
 * HTTP streaming is switched on here, before any function file registers (every one imports `app` from this
 * module, so this runs first). Without it the host hands the worker a body only when the request declares a
 * Content-Length, and a chunked POST (API gateways, .NET clients that stream content) reaches the flow empty.
 * With it the host proxies the raw request to the worker. See docs/hosts.md and
 * https://learn.microsoft.com/azure/azure-functions/functions-reference-node#http-streams
 * The streaming proxy's head limit is raised first (shared/http/workerProxyHeaderLimit.ts).
 */
raiseWorkerProxyHeaderLimit();
app.setup({ enableHttpStream: true });

export { app };
