import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  createDefaultHttpClient,
  createHttpHeaders,
  RestError,
  type HttpClient,
  type HttpHeaders,
  type PipelineRequest,
  type PipelineResponse,
  type TlsSettings,
} from '@azure/core-rest-pipeline';
import type { Dispatcher } from 'undici';
import { loadUndici, type Undici } from './outboundRequest.js';

/**
 * The `HttpClient` the Azure SDK clients (Key Vault `SecretClient`, `TableClient`, `TableServiceClient`,
 * `@azure/identity` credentials) send through, so every outbound call of the product goes through undici, the
 * one client of `sendOutbound` (outboundRequest.ts). It keeps the semantics of the SDK's own Node client, which the pipeline's
 * policies (retry, throttling, Key Vault's challenge) are written against:
 *
 * - `request.abortSignal` and `request.timeout` (one `AbortSignal.timeout`) cancel the exchange, the body
 *   included, and throw an `AbortError` (the retry policy does not retry an abort);
 * - a transport failure throws `RestError` with the system error's code (`ECONNREFUSED`, `ECONNRESET`,
 *   `ETIMEDOUT`, `ENOTFOUND`: the codes the exponential retry strategy retries) or `REQUEST_SEND_ERROR`;
 * - every status is returned, not thrown: a 429 or 503 with `Retry-After` reaches the throttling policy;
 * - the body is read as text unless `streamResponseStatusCodes` names the status, then it is handed over as a
 *   Node stream (`readableStreamBody`; `browserStreamBody` with `enableBrowserStreams`); `gzip` and `deflate`
 *   answers are decoded when the request asked for them; a `HEAD` answer has no body;
 * - request bodies: strings, bytes, Node and web streams (or a function returning one), Blobs. `FormData` never
 *   reaches a client in Node (the pipeline's form-data policy turns it into a multipart stream first) and is
 *   refused, as the SDK's Node client refuses it;
 * - TLS through Node's default trust store, so `NODE_EXTRA_CA_CERTS` applies; `tlsSettings` (client certificate,
 *   CA) get their own undici agent;
 * - upload and download progress callbacks are not reported (no SDK call the product makes asks for them).
 *
 * Proxies are out of scope: when the pipeline's proxy policy attaches a Node agent (`HTTPS_PROXY` set) or a
 * caller passes its own `agent`, that request goes through the SDK's default client, as it did before.
 *
 * @example
 * const client = new SecretClient(vaultUrl, credential, { httpClient: azureHttpClient() });
 */
export function azureHttpClient(): HttpClient {
  shared ??= new UndiciHttpClient();
  return shared;
}

let shared: HttpClient | undefined;

/**
 * What the caller's signal or `request.timeout` ending an exchange throws: an `Error` named `AbortError`, the
 * name the pipeline (and every SDK) looks for; not a class of its own, since nothing here catches it by type.
 */
function abortError(message: string, cause?: unknown): Error {
  const error = new Error(message, { cause });
  error.name = 'AbortError';
  return error;
}

/** undici's own error codes mapped to the system codes the SDK's retry strategy knows. */
const SYSTEM_CODE_OF: Readonly<Record<string, string>> = {
  UND_ERR_CONNECT_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_HEADERS_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_BODY_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_SOCKET: 'ECONNRESET',
  UND_ERR_CLOSED: 'ECONNRESET',
};

class UndiciHttpClient implements HttpClient {
  private readonly tlsAgents = new WeakMap<TlsSettings, Dispatcher>();
  private agent: Dispatcher | undefined;
  private fallback: HttpClient | undefined;

  async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
    if (request.agent) {
      this.fallback ??= createDefaultHttpClient();
      return this.fallback.sendRequest(request);
    }
    if (request.abortSignal?.aborted) {
      throw abortError('The operation was aborted. Request has already been canceled.');
    }
    const url = new URL(request.url);
    if (url.protocol !== 'https:' && !request.allowInsecureConnection) {
      throw new Error(`Cannot connect to ${request.url} while allowInsecureConnection is false.`);
    }
    const signals = [
      ...(request.abortSignal ? [nativeSignal(request.abortSignal)] : []),
      ...(request.timeout > 0 ? [AbortSignal.timeout(request.timeout)] : []),
    ];
    const signal = signals.length === 0 ? undefined : AbortSignal.any(signals);
    const undici = await loadUndici();
    const aborted = (cause: unknown): Error =>
      abortError(
        request.abortSignal?.aborted
          ? 'The operation was aborted.'
          : `The request to ${url.origin} did not complete within ${request.timeout} ms.`,
        cause,
      );

    let answer: Dispatcher.ResponseData;
    try {
      answer = await undici.request(url, {
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers.toJSON({ preserveCase: true }),
        body: requestBody(request),
        signal,
        reset: request.disableKeepAlive === true,
        dispatcher: request.tlsSettings ? this.tlsAgent(undici, request.tlsSettings) : this.sharedAgent(undici),
      });
    } catch (error) {
      if (signal?.aborted) throw aborted(error);
      throw sendError(error, request);
    }

    const headers = responseHeaders(answer.headers);
    const response: PipelineResponse = { status: answer.statusCode, headers, request };
    if (request.method === 'HEAD') {
      answer.body.resume();
      return response;
    }
    const body = await decoded(answer.body, headers, request.headers.get('Accept-Encoding'));
    const streamed =
      request.streamResponseStatusCodes?.has(Number.POSITIVE_INFINITY) === true ||
      request.streamResponseStatusCodes?.has(answer.statusCode) === true;
    if (streamed) {
      if (request.enableBrowserStreams) {
        response.browserStreamBody = Readable.toWeb(body);
      } else {
        response.readableStreamBody = body;
      }
      return response;
    }
    try {
      response.bodyAsText = await textOf(body);
    } catch (error) {
      if (signal?.aborted) throw aborted(error);
      throw new RestError(`Error reading response as text: ${error instanceof Error ? error.message : 'unknown'}`, {
        code: RestError.PARSE_ERROR,
        request,
      });
    }
    // undici hands a kept-alive connection back to its pool only on the next turn of the event loop (with one
    // request in flight per connection it resumes the connection from a `setImmediate`). The pipeline sends its
    // next request at once (the Key Vault challenge's retry, a read right after the listing), which would find
    // the connection still busy and open a new one: another TLS handshake with the vault on a cold start.
    await afterPendingIo();
    return response;
  }

  /**
   * The agent of every SDK request without its own TLS settings: keep-alive connections per origin, HTTP/1.1
   * only, as the SDK's Node client speaks it (undici would otherwise offer HTTP/2 to a server that wants it).
   */
  private sharedAgent(undici: Undici): Dispatcher {
    this.agent ??= new undici.Agent({ allowH2: false });
    return this.agent;
  }

  /** One undici agent per `tlsSettings` object, as the SDK's client keeps one Node agent per settings object. */
  private tlsAgent(undici: Undici, tls: TlsSettings): Dispatcher {
    let agent = this.tlsAgents.get(tls);
    if (!agent) {
      agent = new undici.Agent({ allowH2: false, connect: { ...tls } });
      this.tlsAgents.set(tls, agent);
    }
    return agent;
  }
}

/**
 * The caller's signal as a native `AbortSignal` (what `AbortSignal.any` and undici take): the pipeline's type
 * admits any `AbortSignalLike`, which the SDK's own default client wraps the same way.
 */
function nativeSignal(like: NonNullable<PipelineRequest['abortSignal']>): AbortSignal {
  if (like instanceof AbortSignal) return like;
  const controller = new AbortController();
  if (like.aborted) controller.abort();
  else like.addEventListener('abort', () => controller.abort(), { once: true });
  return controller.signal;
}

type UndiciBody = string | Buffer | Uint8Array | Readable | null;

function requestBody(request: PipelineRequest): UndiciBody {
  const body = typeof request.body === 'function' ? request.body() : request.body;
  if (body === undefined || body === null) return null;
  if (typeof body === 'string' || Buffer.isBuffer(body)) return body;
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (isNodeReadable(body)) return body instanceof Readable ? body : Readable.from(body);
  if (body instanceof ReadableStream) return Readable.fromWeb(body);
  if (body instanceof Blob) return Readable.fromWeb(body.stream() as WebReadableStream<Uint8Array>);
  throw new RestError('Unrecognized body type', { code: RestError.REQUEST_SEND_ERROR, request });
}

function isNodeReadable(body: unknown): body is NodeJS.ReadableStream {
  return typeof (body as { pipe?: unknown }).pipe === 'function';
}

/** A transport failure as the pipeline expects it: a `RestError` whose code the retry strategy can judge. */
function sendError(error: unknown, request: PipelineRequest): Error {
  if (error instanceof RestError || (error instanceof Error && error.name === 'AbortError')) return error;
  const raw =
    (error as NodeJS.ErrnoException | undefined)?.code ?? (error as { cause?: { code?: string } }).cause?.code;
  const code = raw === undefined ? RestError.REQUEST_SEND_ERROR : (SYSTEM_CODE_OF[raw] ?? raw);
  const message = error instanceof Error ? error.message : 'request failed';
  return new RestError(message, { code, request });
}

/**
 * Response headers as Node's HTTP client gives them: repeated fields joined with `, `, except `set-cookie`,
 * of which the first is kept (as the SDK's Node client keeps it).
 */
function responseHeaders(raw: Record<string, string | string[] | undefined>): HttpHeaders {
  const headers = createHttpHeaders();
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    if (!Array.isArray(value)) headers.set(name, value);
    else if (value.length > 0) headers.set(name, name === 'set-cookie' ? (value[0] ?? '') : value.join(', '));
  }
  return headers;
}

/** The body decoded when the request accepted `gzip`/`deflate` and the answer is so encoded; zlib is loaded then only. */
async function decoded(body: Readable, headers: HttpHeaders, acceptEncoding: string | undefined): Promise<Readable> {
  if (!acceptEncoding?.includes('gzip') && !acceptEncoding?.includes('deflate')) return body;
  const encoding = headers.get('content-encoding');
  if (encoding !== 'gzip' && encoding !== 'deflate') return body;
  const zlib = await import('node:zlib');
  const decoder = encoding === 'gzip' ? zlib.createGunzip() : zlib.createInflate();
  body.on('error', (error) => decoder.destroy(error));
  return body.pipe(decoder);
}

/** Resolves once the I/O callbacks already due have run (a `setImmediate`). */
function afterPendingIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function textOf(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
