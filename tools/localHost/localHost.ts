import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { format } from 'node:util';
import azureFunctions, {
  type Cookie,
  type HttpHandler,
  type HttpRequestInit,
  type HttpResponseInit,
} from '@azure/functions';
import { redact, redactPath } from '../../shared/logging/redact.js';
import { KESTREL_LIMITS, kestrelResponseHeaderName, removeDotSegments, requestLineBytes } from './kestrelRequest.js';
import { DeferredFetchRequest } from './deferredFetchRequest.js';
import { handlerUrl } from './handlerUrl.js';
import { plainResponse } from './plainResponse.js';
import { queryText } from './queryInit.js';
import { readHeaderFields, type HeaderFields } from './requestHeaderFields.js';
import { hostJsonPath } from './projectPaths.js';
import { compileRoute, MalformedPathError, splitPath, type CompiledRoute, type RouteParams } from './routeTemplate.js';
import { ensureLocalTlsCertificate } from './tlsCertificate.js';

/**
 * A stand-in for the Azure Functions host, for machines without Core Tools: it serves the very same function
 * definitions over HTTP(S) and answers as the real host does wherever a client can tell (docs/hosts.md lists
 * what still differs, and why). Handlers get real `HttpRequest` and `InvocationContext` objects from
 * `@azure/functions`.
 */

/** What the local host needs of a function: the object each `functions/*.ts` file exports as `definition`. */
export interface HttpFunctionLike {
  name: string;
  route: string;
  methods: string[];
  authLevel: string;
  handler: HttpHandler;
}

export interface LocalHostOptions {
  definitions: readonly HttpFunctionLike[];
  /** Interface to listen on; default `127.0.0.1`. */
  host?: string;
  /** Port; default 7071, 0 = a free port. */
  port?: number;
  /** Serve TLS: `true` for the self-signed certificate under `.sts/tls/`, or an explicit key pair (PEM). */
  https?: boolean | { key: string; cert: string };
  /** Default: `extensions.http.routePrefix` from host.json (`api` when host.json does not say). */
  routePrefix?: string;
  /** Hard cap on a request body; default 1 MiB (the flows apply their own, smaller `STS_MAX_BODY_BYTES`). */
  maxBodyBytes?: number;
  /** Longest request line (`METHOD target HTTP/1.1`) before a bare 414; default Kestrel's 8 KiB. */
  maxRequestLineBytes?: number;
  /** Most header bytes (`name: value` lines) before a bare 431; default Kestrel's 32 KiB. */
  maxHeaderBytes?: number;
  /** Most header fields before a bare 431; default Kestrel's 100. */
  maxHeaderCount?: number;
  /**
   * `/` when no function takes it: the host's homepage (200 text/html) or, as with the app setting
   * `AzureWebJobsDisableHomepage=true`, an empty 204. Default: that setting from the environment.
   */
  homepageDisabled?: boolean;
  /** Longest a handler may run before the host answers 500; default host.json `functionTimeout`, else 30 s. */
  requestTimeoutMs?: number;
  /** How long `close()` lets in-flight requests finish before cutting connections; default 10 s. */
  shutdownGraceMs?: number;
  /**
   * One line per request and every handler log line; default `console.log`. `false`: no log at all, and no
   * line is built (what a benchmark of the app wants).
   */
  log?: ((line: string) => void) | false;
  /** The timers behind `requestTimeoutMs` and `shutdownGraceMs`; default the real ones (tests pass their own). */
  timers?: HostTimers;
}

/** Schedules and cancels the host's timeouts. */
export interface HostTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_TIMERS: HostTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface RunningLocalHost {
  /** Base URL, e.g. `http://127.0.0.1:54321`. */
  url: string;
  port: number;
  /** Stops accepting, lets in-flight requests finish (bounded by `shutdownGraceMs`), then resolves. */
  close(): Promise<void>;
}

// The package is CommonJS bundled so that Node cannot see its class exports by name; take them off the default.
const { HttpRequest, HttpResponse, InvocationContext } = azureFunctions;
type HttpResponse = InstanceType<typeof HttpResponse>;
type HttpRequest = InstanceType<typeof HttpRequest>;

/** Whether this version of `@azure/functions` builds an `HttpRequest` around a given `nativeRequest`. */
const libraryTakesNativeRequest = ((): boolean => {
  const probe = new DeferredFetchRequest('http://probe.invalid/p?q=1', 'GET', { 'x-probe': '1' });
  const request = new HttpRequest({ nativeRequest: probe, params: {} } as HttpRequestInit);
  return request.url === probe.url && request.headers === probe.headers && request.query.get('q') === '1';
})();

/**
 * Whether this version builds the request's `query` with `new URLSearchParams(query)` from a text `query` init
 * (an empty one from a lone `?`), instead of from the URL: then {@link queryText} may stand in for it.
 */
const libraryTakesQueryText = ((): boolean => {
  const probe = new DeferredFetchRequest('http://probe.invalid/p?q=1', 'GET', {});
  const query = (text: string) =>
    new HttpRequest({ nativeRequest: probe, params: {}, query: text } as unknown as HttpRequestInit).query;
  const filled = query('?r=2&r=%203+4');
  const empty = query('?');
  return (
    filled instanceof URLSearchParams &&
    JSON.stringify([...filled]) === JSON.stringify([...new URLSearchParams('r=2&r=%203+4')]) &&
    empty instanceof URLSearchParams &&
    empty.size === 0
  );
})();

const DEFAULTS = {
  host: '127.0.0.1',
  port: 7071,
  maxBodyBytes: 1_048_576,
  ...KESTREL_LIMITS,
  requestTimeoutMs: 30_000,
  shutdownGraceMs: 10_000,
} as const;

interface Route {
  readonly definition: HttpFunctionLike;
  readonly compiled: CompiledRoute;
  readonly methods: ReadonlySet<string>;
}

/** A response the host itself writes (routing and limit errors, the homepage), never a handler's. */
interface HostAnswer {
  readonly status: number;
  /** Only the homepage has one; the real host's own errors are empty. */
  readonly html?: string;
}

/** A stand-in for the host's homepage (the real one is a larger page saying the same). */
const HOMEPAGE_HTML =
  '<!DOCTYPE html><html><head><title>Your Functions 4.0 app is up and running</title></head><body><h1>Your Functions 4.0 app is up and running</h1><p>Local host stand-in for the Functions host homepage; set AzureWebJobsDisableHomepage=true to answer 204.</p></body></html>';

/**
 * Starts serving `definitions` and resolves once listening.
 *
 * Routing as the Functions host does it: dot segments removed first, then `routePrefix` + each `route` template,
 * case-insensitive, one trailing slash tolerated, percent-decoded `{params}`; an empty 404 for an unknown path
 * and for a method the route does not list, HEAD and OPTIONS included (so a HEAD never mints a token nobody
 * receives); `/` is the homepage (200) or 204 per `homepageDisabled`. Kestrel's limits: an empty 414 for a
 * request line over 8 KiB, 431 for headers over 32 KiB or 100 fields; 413 for a body over `maxBodyBytes`; an
 * empty 500 when a handler throws or outlives `requestTimeoutMs`. The socket address reaches the handler as the
 * only `X-Forwarded-For` entry, replacing whatever the client sent, as the real host's streaming proxy does.
 *
 * @example
 * const host = await startLocalHost({ definitions: [definition], port: 0 });
 * await fetch(`${host.url}/accounts/…/token`);
 * await host.close();
 */
export async function startLocalHost(options: LocalHostOptions): Promise<RunningLocalHost> {
  const hostJson = readHostJson();
  const routePrefix = options.routePrefix ?? hostJson.routePrefix;
  const limits = {
    maxBodyBytes: options.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
    maxRequestLineBytes: options.maxRequestLineBytes ?? DEFAULTS.maxRequestLineBytes,
    maxHeaderBytes: options.maxHeaderBytes ?? DEFAULTS.maxHeaderBytes,
    maxHeaderCount: options.maxHeaderCount ?? DEFAULTS.maxHeaderCount,
    requestTimeoutMs: options.requestTimeoutMs ?? hostJson.functionTimeoutMs ?? DEFAULTS.requestTimeoutMs,
  };
  const shutdownGraceMs = options.shutdownGraceMs ?? DEFAULTS.shutdownGraceMs;
  const homepageDisabled =
    options.homepageDisabled ?? process.env.AzureWebJobsDisableHomepage?.trim().toLowerCase() === 'true';
  const log = options.log === false ? () => {} : (options.log ?? ((line: string) => console.log(line)));
  const timers = options.timers ?? REAL_TIMERS;
  const routes = options.definitions.map((definition): Route => ({
    definition,
    compiled: compileRoute(definition.route, routePrefix),
    methods: new Set(definition.methods.map((m) => m.toUpperCase())),
  }));

  const tls = options.https === true ? await ensureLocalTlsCertificate() : options.https || undefined;
  const serverOptions = {
    // Room for the request line and headers at their limits, so those are answered here, as Kestrel does.
    maxHeaderSize: limits.maxRequestLineBytes + limits.maxHeaderBytes + 1_024,
    // Receiving a request (slow clients); the handler's own time is bounded by requestTimeoutMs.
    requestTimeout: 30_000,
    headersTimeout: 10_000,
    keepAliveTimeout: 5_000,
  };
  const scheme = tls ? 'https' : 'http';

  let closing = false;
  const inFlight = new Set<ServerResponse>();
  // Without a log, no request builds a line nobody reads (the handler's own log calls included).
  const logOn = options.log !== false;
  const silentLogHandler = (): void => {};
  const forget = function (this: ServerResponse): void {
    inFlight.delete(this);
    if (closing) server.closeIdleConnections();
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const requestId = randomUUID();
    inFlight.add(res);
    if (logOn) {
      const started = performance.now();
      res.on('close', () => {
        const path = (req.url ?? '').split('?')[0] ?? '';
        log(
          `${req.method ?? '-'} ${redactPath(path)} ${res.statusCode} ${Math.round(performance.now() - started)}ms ${requestId}`,
        );
      });
    }
    res.on('close', forget);
    if (closing) res.setHeader('Connection', 'close');
    try {
      serve(req, res, requestId)?.catch((error: unknown) => failed(req, res, requestId, error));
    } catch (error) {
      failed(req, res, requestId, error);
    }
  };

  const failed = (req: IncomingMessage, res: ServerResponse, requestId: string, error: unknown): void => {
    if (logOn)
      log(
        `local host: request ${requestId} failed: ${redact(error instanceof Error ? error.message : String(error), 1_000)}`,
      );
    if (!res.headersSent) writeHostAnswer(req, res, { status: 500 });
    else res.destroy();
  };

  /** Answers one request; returns a promise only when it has to wait (for the body or the handler). */
  const serve = (req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> | undefined => {
    const target = req.url ?? '/';
    if (requestLineBytes(req) > limits.maxRequestLineBytes) return writeHostAnswer(req, res, { status: 414 });
    const head = readHeaderFields(req);
    if (head.count > limits.maxHeaderCount || head.bytes > limits.maxHeaderBytes)
      return writeHostAnswer(req, res, { status: 431 });
    if (!target.startsWith('/')) return writeHostAnswer(req, res, { status: 400 });

    const queryStart = target.indexOf('?');
    const path = removeDotSegments(queryStart === -1 ? target : target.slice(0, queryStart));
    const query = queryStart === -1 ? '' : target.slice(queryStart);
    let found: { route: Route; params: RouteParams } | undefined;
    try {
      const segments = splitPath(path);
      for (const route of routes) {
        if (!route.methods.has(req.method ?? '')) continue;
        const params = route.compiled.match(segments);
        if (params) {
          found = { route, params };
          break;
        }
      }
    } catch (error) {
      if (error instanceof MalformedPathError) return writeHostAnswer(req, res, { status: 400 });
      throw error;
    }
    if (!found) {
      // The real host has no 405 and no Allow: a method the route does not list is a route that does not exist.
      if (path === '/')
        return writeHostAnswer(req, res, homepageDisabled ? { status: 204 } : { status: 200, html: HOMEPAGE_HTML });
      return writeHostAnswer(req, res, { status: 404 });
    }
    const { route, params } = found;
    const invoke = (body: Buffer): Promise<void> | undefined =>
      invokeHandler(req, res, requestId, route, params, path + query, head, body);
    // A request framed without a body (no Transfer-Encoding, no Content-Length above 0) has nothing to wait for.
    if (!head.hasBody) return invoke(EMPTY_BODY);
    return readBoundedBody(req, limits.maxBodyBytes).then(
      (body) => (body === 'too large' ? writeHostAnswer(req, res, { status: 413 }) : invoke(body)),
      () => {
        // The client aborted, or framed the body so badly that Node gave up on it: a client error, not ours.
        if (logOn) log(`local host: request ${requestId}: the request body could not be read`);
        if (!res.headersSent && req.socket.writable) return writeHostAnswer(req, res, { status: 400 });
        res.destroy();
      },
    );
  };

  const invokeHandler = (
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    route: Route,
    params: RouteParams,
    pathAndQuery: string,
    head: HeaderFields,
    body: Buffer,
  ): Promise<void> | undefined => {
    const { definition } = route;
    const method = req.method ?? 'GET';
    const url = handlerUrl(scheme, authorityOf(head.host, server), pathAndQuery);
    const request = handlerRequest(url, pathAndQuery, method, handlerHeaders(req, head, scheme), body, params);
    const context = new InvocationContext({
      invocationId: requestId,
      functionName: definition.name,
      logHandler: logOn
        ? (level, ...args) => log(`[${level}] ${definition.name} ${requestId} ${redact(format(...args), 1_000)}`)
        : silentLogHandler,
    });

    let pending: Promise<HttpResponseInit | HttpResponse | void>;
    try {
      pending = Promise.resolve(definition.handler(request, context));
    } catch (error) {
      // A handler that throws before returning its promise is answered as one that rejects.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- rethrown as it was thrown
      pending = Promise.reject(error);
    }
    // As the real host's functionTimeout: past it, an empty 500, whatever the handler does later.
    let answered = false;
    const timer = timers.setTimeout(() => {
      if (answered) return;
      answered = true;
      if (logOn) log(`local host: ${definition.name} ${requestId} did not answer within ${limits.requestTimeoutMs} ms`);
      writeHostAnswer(req, res, { status: 500 });
    }, limits.requestTimeoutMs);
    return pending.then(
      (result) => {
        if (answered) return;
        answered = true;
        timers.clearTimeout(timer);
        return writeHandlerResponse(res, result ?? {});
      },
      (error: unknown) => {
        if (answered) return;
        answered = true;
        timers.clearTimeout(timer);
        throw error;
      },
    );
  };

  const server: Server = tls
    ? createHttpsServer({ ...serverOptions, key: tls.key, cert: tls.cert }, onRequest)
    : createHttpServer(serverOptions, onRequest);

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    if (error.code?.startsWith('ERR_SSL')) {
      // A failed TLS handshake (e.g. a client that does not trust the certificate): there is no HTTP to answer.
      log(`- - TLS handshake failed ${error.code}`);
      socket.destroy();
      return;
    }
    // Requests node refuses before we see them (oversized headers, bad syntax, slow headers): answer, log, close.
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const reason =
      status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
    if (socket.writable && !socket.writableEnded) {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else {
      socket.destroy();
    }
    log(`- - ${status} 0ms ${error.code ?? 'client error'}`);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULTS.port, options.host ?? DEFAULTS.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('local host: no TCP address');
  const displayHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closed: Promise<void> | undefined;
  return {
    url: `${scheme}://${displayHost}:${address.port}`,
    port: address.port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        server.close(() => resolve());
        server.closeIdleConnections();
        for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
        timers.setTimeout(() => server.closeAllConnections(), shutdownGraceMs);
      });
      return closed;
    },
  };
}

/**
 * The handler's `HttpRequest`. A GET or HEAD is built as the library's own streaming path builds it in the real
 * worker: around a fetch request (`nativeRequest`, here a {@link DeferredFetchRequest}) with the route's
 * `params`, the query read from the URL. `nativeRequest` is an init field the library leaves out of its public
 * type, hence the cast; {@link libraryTakesNativeRequest} checks once that this version honours it. Any other
 * request (its body is read anyway), or any request under a library that does not honour it, is built from a
 * plain init with the body's bytes.
 */
function handlerRequest(
  url: string,
  pathAndQuery: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer,
  params: RouteParams,
): HttpRequest {
  if (!libraryTakesNativeRequest || (method !== 'GET' && method !== 'HEAD'))
    return new HttpRequest({ method, url, headers, params, body: { bytes: body } });
  const nativeRequest = new DeferredFetchRequest(url, method, headers);
  // With the query's text, the library does not parse the whole URL again to read it (see queryInit.ts). The
  // init types `query` as a record; the library hands it to `new URLSearchParams`, which takes text too.
  const query = libraryTakesQueryText ? queryText(pathAndQuery) : undefined;
  return new HttpRequest({ nativeRequest, params, ...(query === undefined ? {} : { query }) } as HttpRequestInit);
}

/**
 * The request headers as the Functions host hands them over: one value per name, repeated fields joined
 * with ", " (so two `Authorization` headers reach the flow as one malformed value and are refused there, in
 * the flow's own shape, as in Azure). As the host's streaming proxy does, `X-Forwarded-For` is set (not
 * appended) to the socket address, and `X-Forwarded-Proto` and `X-Forwarded-Host` to what this host saw.
 * Edits and returns `head.fields`.
 */
function handlerHeaders(req: IncomingMessage, head: HeaderFields, scheme: string): Record<string, string> {
  const headers = head.fields;
  const remote = req.socket.remoteAddress ?? '';
  headers['x-forwarded-for'] = remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
  headers['x-forwarded-proto'] = scheme;
  if (head.host) headers['x-forwarded-host'] = head.host;
  else delete headers['x-forwarded-host'];
  return headers;
}

/** The Host header when it is a plausible authority, else the listening address (never trust it blindly). */
function authorityOf(host: string | undefined, server: Server): string {
  if (host && isPlausibleAuthority(host)) return host;
  const address = server.address();
  if (!address || typeof address === 'string') return 'localhost';
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

/** Host headers already judged (a client sends the same one on every request); bounded, emptied when full. */
const judgedAuthorities = new Map<string, boolean>();

function isPlausibleAuthority(host: string): boolean {
  let plausible = judgedAuthorities.get(host);
  if (plausible === undefined) {
    // The pattern alone lets through ports above 65535 and malformed IPv6 literals, which no URL accepts.
    plausible =
      /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/.test(host) && URL.canParse(`http://${host}/`);
    if (judgedAuthorities.size >= 256) judgedAuthorities.clear();
    judgedAuthorities.set(host, plausible);
  }
  return plausible;
}

const EMPTY_BODY = Buffer.alloc(0);

/**
 * Reads the body, never buffering more than `maxBytes`: the declared Content-Length is checked first, then
 * bytes are counted as they arrive (chunked bodies). On overflow the rest is left unread for the caller.
 */
function readBoundedBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | 'too large'> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) return Promise.resolve('too large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > maxBytes) {
        cleanUp();
        req.pause();
        resolve('too large');
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = (): void => {
      cleanUp();
      resolve(Buffer.concat(chunks, total));
    };
    const onError = (error: Error): void => {
      cleanUp();
      reject(error);
    };
    const cleanUp = (): void => {
      req.off('data', onData).off('end', onEnd).off('error', onError);
    };
    req.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

/**
 * An answer of the host itself, as Kestrel writes it: status and `Content-Length`, no other header, and no body
 * except the homepage's.
 */
function writeHostAnswer(req: IncomingMessage, res: ServerResponse, answer: HostAnswer): undefined {
  const body = answer.html === undefined ? Buffer.alloc(0) : Buffer.from(answer.html, 'utf8');
  const headers: Record<string, string | number> = {};
  // Kestrel frames a HEAD answer without a length, and a 204 has none.
  if (answer.status !== 204 && req.method !== 'HEAD') headers['Content-Length'] = body.length;
  if (answer.html !== undefined) headers['Content-Type'] = 'text/html';
  // A request whose body we did not read (refused early) cannot share the connection with the next one.
  const bodyPending = hasBody(req) && !req.readableEnded;
  if (bodyPending) headers.Connection = 'close';
  res.writeHead(answer.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  if (bodyPending) drainThenClose(req);
  return undefined;
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/**
 * Reads and discards what is left of a refused request body for a short, bounded while before closing, so the
 * client receives the error instead of a reset.
 */
function drainThenClose(req: IncomingMessage): void {
  let drained = 0;
  const stop = setTimeout(() => req.socket.destroy(), 2_000);
  stop.unref();
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > 4 * 1_048_576) req.socket.destroy();
  });
  req.on('end', () => clearTimeout(stop));
  req.resume();
}

/**
 * Writes a handler's HttpResponseInit or HttpResponse: status, every header, one Content-Length body. A plain
 * init is written directly, exactly as `new HttpResponse(init)` would render it (see {@link plainResponse});
 * anything else goes through `HttpResponse`.
 */
function writeHandlerResponse(res: ServerResponse, result: HttpResponseInit | HttpResponse): Promise<void> | undefined {
  const plain = result instanceof HttpResponse ? undefined : plainResponse(result);
  if (!plain) return writeResponse(res, result);
  // Flat name/value pairs in one writeHead: the same head as setHeader for each, in the same order.
  const { fields, body } = plain;
  if (!UNSIZED_STATUSES.has(plain.status))
    fields.push('Content-Length', String(typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.length));
  res.writeHead(plain.status, fields);
  // A string body goes out in one write with the head (Node joins them), UTF-8; the head is ASCII then.
  res.end(body);
  return undefined;
}

/** Writes any handler answer through `HttpResponse` (the general path of {@link writeHandlerResponse}). */
async function writeResponse(res: ServerResponse, result: HttpResponseInit | HttpResponse): Promise<void> {
  const response = result instanceof HttpResponse ? result : new HttpResponse(result);
  const body = Buffer.from(await response.arrayBuffer());
  res.statusCode = response.status;
  for (const [name, value] of response.headers) {
    if (name === 'set-cookie' || name === 'content-length' || name === 'transfer-encoding') continue;
    res.setHeader(kestrelResponseHeaderName(name), value);
  }
  const cookies = [...response.headers.getSetCookie(), ...response.cookies.map(serializeCookie)];
  if (cookies.length > 0) res.setHeader('Set-Cookie', cookies);
  if (!UNSIZED_STATUSES.has(response.status)) res.setHeader('Content-Length', body.length);
  res.end(body);
}

/** Kestrel writes no `Content-Length` on a 204 or 304 (a CORS preflight's 204 included), as seen with the real worker. */
const UNSIZED_STATUSES = new Set([204, 304]);

function serializeCookie(cookie: Cookie): string {
  const parts = [`${cookie.name}=${cookie.value}`];
  if (cookie.domain) parts.push(`Domain=${cookie.domain}`);
  if (cookie.path) parts.push(`Path=${cookie.path}`);
  if (cookie.expires !== undefined) parts.push(`Expires=${new Date(cookie.expires).toUTCString()}`);
  if (cookie.maxAge !== undefined) parts.push(`Max-Age=${cookie.maxAge}`);
  if (cookie.secure) parts.push('Secure');
  if (cookie.httpOnly) parts.push('HttpOnly');
  if (cookie.sameSite) parts.push(`SameSite=${cookie.sameSite}`);
  return parts.join('; ');
}

interface HostJsonSettings {
  readonly routePrefix: string;
  readonly functionTimeoutMs: number | undefined;
}

/** `extensions.http.routePrefix` (default `api`, as in the real host) and `functionTimeout` from host.json. */
function readHostJson(): HostJsonSettings {
  let parsed: { extensions?: { http?: { routePrefix?: unknown } }; functionTimeout?: unknown };
  try {
    parsed = JSON.parse(readFileSync(hostJsonPath, 'utf8')) as typeof parsed;
  } catch {
    return { routePrefix: 'api', functionTimeoutMs: undefined };
  }
  const prefix = parsed.extensions?.http?.routePrefix;
  const timeout =
    typeof parsed.functionTimeout === 'string' ? /^(\d+):(\d{2}):(\d{2})$/.exec(parsed.functionTimeout) : null;
  return {
    routePrefix: typeof prefix === 'string' ? prefix : 'api',
    functionTimeoutMs: timeout
      ? (Number(timeout[1]) * 3600 + Number(timeout[2]) * 60 + Number(timeout[3])) * 1000
      : undefined,
  };
}
