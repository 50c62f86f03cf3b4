import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { format } from 'node:util';
import azureFunctions, { type Cookie, type HttpHandler, type HttpResponseInit } from '@azure/functions';
import { redact, redactPath } from '../../shared/logging/redact.js';
import {
  headerFootprint,
  KESTREL_LIMITS,
  kestrelResponseHeaderName,
  removeDotSegments,
  requestLineBytes,
} from './kestrelRequest.js';
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
  /** One line per request and every handler log line; default `console.log`. */
  log?: (line: string) => void;
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
  const log = options.log ?? ((line: string) => console.log(line));
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

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const requestId = randomUUID();
    inFlight.add(res);
    res.on('close', () => {
      inFlight.delete(res);
      const path = (req.url ?? '').split('?')[0] ?? '';
      log(
        `${req.method ?? '-'} ${redactPath(path)} ${res.statusCode} ${Math.round(performance.now() - started)}ms ${requestId}`,
      );
      if (closing) server.closeIdleConnections();
    });
    if (closing) res.setHeader('Connection', 'close');
    serve(req, res, requestId).catch((error: unknown) => {
      log(
        `local host: request ${requestId} failed: ${redact(error instanceof Error ? error.message : String(error), 1_000)}`,
      );
      if (!res.headersSent) writeHostAnswer(req, res, { status: 500 });
      else res.destroy();
    });
  };

  const serve = async (req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> => {
    const target = req.url ?? '/';
    if (requestLineBytes(req) > limits.maxRequestLineBytes) return writeHostAnswer(req, res, { status: 414 });
    const headers = headerFootprint(req);
    if (headers.count > limits.maxHeaderCount || headers.bytes > limits.maxHeaderBytes)
      return writeHostAnswer(req, res, { status: 431 });
    if (!target.startsWith('/')) return writeHostAnswer(req, res, { status: 400 });

    const queryStart = target.indexOf('?');
    const path = removeDotSegments(queryStart === -1 ? target : target.slice(0, queryStart));
    const query = queryStart === -1 ? '' : target.slice(queryStart);
    let found: { route: Route; params: RouteParams } | undefined;
    try {
      for (const route of routes) {
        if (!route.methods.has(req.method ?? '')) continue;
        const params = route.compiled.match(splitPath(path));
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

    let body: Buffer | 'too large';
    try {
      body = await readBoundedBody(req, limits.maxBodyBytes);
    } catch {
      // The client aborted, or framed the body so badly that Node gave up on it: a client error, not ours.
      log(`local host: request ${requestId}: the request body could not be read`);
      if (!res.headersSent && req.socket.writable) return writeHostAnswer(req, res, { status: 400 });
      res.destroy();
      return;
    }
    if (body === 'too large') {
      return writeHostAnswer(req, res, { status: 413 });
    }

    const { definition } = found.route;
    const request = new HttpRequest({
      method: req.method ?? 'GET',
      url: `${scheme}://${authorityOf(req, server)}${path}${query}`,
      headers: handlerHeaders(req, scheme),
      params: found.params,
      body: { bytes: body },
    });
    const context = new InvocationContext({
      invocationId: requestId,
      functionName: definition.name,
      logHandler: (level, ...args) =>
        log(`[${level}] ${definition.name} ${requestId} ${redact(format(...args), 1_000)}`),
    });

    const result = await withTimeout(
      Promise.resolve(definition.handler(request, context)),
      limits.requestTimeoutMs,
      timers,
    );
    if (result === 'timed out') {
      log(`local host: ${definition.name} ${requestId} did not answer within ${limits.requestTimeoutMs} ms`);
      return writeHostAnswer(req, res, { status: 500 });
    }
    await writeHandlerResponse(res, result ?? {});
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
 * The request headers as the Functions host hands them over: one value per name, repeated fields joined
 * with ", " (so two `Authorization` headers reach the flow as one malformed value and are refused there, in
 * the flow's own shape, as in Azure). As the host's streaming proxy does, `X-Forwarded-For` is set (not
 * appended) to the socket address, and `X-Forwarded-Proto` and `X-Forwarded-Host` to what this host saw.
 */
function handlerHeaders(req: IncomingMessage, scheme: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (values) headers[name] = values.join(name === 'cookie' ? '; ' : ', ');
  }
  const remote = req.socket.remoteAddress ?? '';
  headers['x-forwarded-for'] = remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
  headers['x-forwarded-proto'] = scheme;
  if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;
  else delete headers['x-forwarded-host'];
  return headers;
}

/** The Host header when it is a plausible authority, else the listening address (never trust it blindly). */
function authorityOf(req: IncomingMessage, server: Server): string {
  const host = req.headers.host;
  // The pattern alone lets through ports above 65535 and malformed IPv6 literals, which no URL accepts.
  if (
    host &&
    /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/.test(host) &&
    URL.canParse(`http://${host}/`)
  )
    return host;
  const address = server.address();
  if (!address || typeof address === 'string') return 'localhost';
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

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
function writeHostAnswer(req: IncomingMessage, res: ServerResponse, answer: HostAnswer): void {
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
async function writeHandlerResponse(res: ServerResponse, result: HttpResponseInit | HttpResponse): Promise<void> {
  const plain = result instanceof HttpResponse ? undefined : plainResponse(result);
  if (plain) {
    res.statusCode = plain.status;
    for (const [name, value] of plain.headers) res.setHeader(kestrelResponseHeaderName(name), value);
    if (!UNSIZED_STATUSES.has(plain.status)) res.setHeader('Content-Length', plain.body.length);
    res.end(plain.body);
    return;
  }
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

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Kestrel writes no `Content-Length` on a 204 or 304 (a CORS preflight's 204 included), as seen with the real worker. */
const UNSIZED_STATUSES = new Set([204, 304]);
const NULL_BODY_STATUSES = new Set([204, 205, 304]);

/**
 * What `new HttpResponse(init)` (a fetch `Response`) makes of a plain init, without building one: it costs a
 * web stream per response, a quarter of this host's own CPU per request (measured with `npm run bench`).
 * Plain means: no `jsonBody`, no cookies, a status from 200 to 599, headers as a record of strings without
 * `Set-Cookie`, a string, bytes or no body. Same result: header names lower-cased and sorted, values trimmed
 * of HTTP whitespace, repeated names joined with ", ", `text/plain;charset=UTF-8` for a string body without a
 * Content-Type, no body for 204/205/304, Content-Length and Transfer-Encoding left to the host. Anything
 * `Response` would refuse (a bad name or value) is left to it too: undefined means "take the general path".
 */
function plainResponse(
  init: HttpResponseInit,
): { status: number; headers: [string, string][]; body: Buffer } | undefined {
  const { status = 200, headers, body, cookies } = init;
  const jsonBody: unknown = init.jsonBody;
  if (jsonBody !== undefined || (cookies !== undefined && cookies.length > 0)) return undefined;
  if (!Number.isInteger(status) || status < 200 || status > 599) return undefined;
  if (
    headers !== undefined &&
    (headers === null || typeof headers !== 'object' || Object.getPrototypeOf(headers) !== Object.prototype)
  ) {
    return undefined;
  }
  if (!(body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array))
    return undefined;
  const merged = new Map<string, string>();
  for (const [name, value] of Object.entries((headers ?? {}) as Record<string, unknown>)) {
    if (typeof value !== 'string' || !HEADER_NAME.test(name)) return undefined;
    const lower = name.toLowerCase();
    if (lower === 'set-cookie') return undefined;
    const trimmed = value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '');
    if (/[\0\r\n]/.test(trimmed)) return undefined;
    const previous = merged.get(lower);
    merged.set(lower, previous === undefined ? trimmed : `${previous}, ${trimmed}`);
  }
  const noBody = NULL_BODY_STATUSES.has(status) || body === undefined || body === null;
  if (!noBody && typeof body === 'string' && !merged.has('content-type'))
    merged.set('content-type', 'text/plain;charset=UTF-8');
  merged.delete('content-length');
  merged.delete('transfer-encoding');
  return {
    status,
    headers: [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    body: noBody ? Buffer.alloc(0) : typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body),
  };
}

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

async function withTimeout<T>(work: Promise<T>, ms: number, timers: HostTimers): Promise<T | 'timed out'> {
  let timer: unknown;
  const timeout = new Promise<'timed out'>((resolve) => {
    timer = timers.setTimeout(() => resolve('timed out'), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    timers.clearTimeout(timer);
  }
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
