import type * as nodeHttp from 'node:http';
import { createRequire } from 'node:module';

/**
 * Room for request heads in the worker's HTTP streaming proxy: Kestrel's limits (8 KiB request line + 32 KiB of
 * header fields) and some slack, so a head that Kestrel lets through reaches the app, which refuses it in the
 * flow's own shape (docs/hosts.md), instead of Node's bare 431.
 */
export const WORKER_PROXY_MAX_HEADER_BYTES = 49_152;

let installed = false;

/**
 * Under HTTP streaming `@azure/functions` starts its proxy with `http.createServer()` and no options, so the
 * server takes Node's process-wide 16 KiB head limit. That limit used to be raised with the app setting
 * `languageWorkers__node__arguments=--max-http-header-size=…`, but any worker argument stops the Functions host
 * from reusing its pre-started placeholder worker (docs/deploy.md, "The placeholder worker"). Instead, a
 * `createServer` call with no options (the proxy's) gets `maxHeaderSize`; calls with options are untouched.
 * Idempotent.
 */
export function raiseWorkerProxyHeaderLimit(maxHeaderSize = WORKER_PROXY_MAX_HEADER_BYTES): void {
  if (installed) return;
  installed = true;
  // The CommonJS module object, the one `@azure/functions` requires, taken without an ES module import: importing
  // `node:http` as an ES module reads every export, `WebSocket` included, and that getter loads Node's built-in
  // undici (about 20 ms of a cold start) long before any request needs it (docs/deploy.md, "Cold start of the
  // artifact").
  const http = createRequire(import.meta.url)('node:http') as typeof nodeHttp;
  const original = http.createServer;
  const withRoom = ((...args: unknown[]) => {
    const [first] = args;
    // createServer() or createServer(listener): no options object, so no head limit was asked for.
    if (first === undefined || typeof first === 'function') {
      return original({ maxHeaderSize }, first as nodeHttp.RequestListener | undefined);
    }
    return (original as (...a: unknown[]) => nodeHttp.Server)(...args);
  }) as typeof http.createServer;
  http.createServer = withRoom;
}
