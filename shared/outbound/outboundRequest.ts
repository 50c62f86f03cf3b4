import type { Dispatcher } from 'undici';
import { StsBaseError } from '../errors.js';
/**
 * How product code calls another HTTP service: `undici` (the client Node's own `fetch` is built on, and the one
 * the Azure SDK clients' `HttpClient`, azureHttpClient.ts, uses), loaded on first call so an app that never calls out
 * never loads it. Every outbound request of the app goes through here: the managed identity, the Entra authority
 * documents, the verifier export, and each attempt of the upstream client (through its own keep-alive pool). One request, no redirect followed, bounded by one `AbortSignal.timeout` (connect,
 * headers and body together) and by a size limit on the answer, which is read whole and returned as text.
 *
 * Failures throw {@link OutboundRequestError} naming what failed (`unreachable`, `timeout`, `tooLarge`);
 * an answer with any status is returned, not thrown: the caller knows which statuses it expects.
 */

export interface OutboundRequest {
  readonly url: URL;
  readonly method?: 'GET' | 'POST';
  /** May carry a secret (the identity header): never logged here, never put in an error. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Upper bound of the whole exchange. */
  readonly timeoutMs: number;
  /** Larger answers are refused (a hostile or broken endpoint cannot fill memory). */
  readonly maxResponseBytes: number;
  /**
   * Where the request goes out: a caller's own keep-alive pool (the upstream client's, one per origin, with its
   * connect, headers and body timeouts); undici's global agent when absent.
   */
  readonly dispatcher?: Dispatcher;
  /**
   * Whether the answer's body is read, by its status; when false the body is discarded unread (at most
   * `maxResponseBytes` of it drained so the connection can be reused) and `body` is empty. Default: always read.
   */
  readonly readsBodyOf?: (status: number) => boolean;
}

export interface OutboundAnswer {
  readonly status: number;
  /** Header names in lower case; a repeated header is joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export type OutboundFailure = 'unreachable' | 'timeout' | 'tooLarge';

export class OutboundRequestError extends StsBaseError {
  readonly code = 'ERR_STS_OUTBOUND_REQUEST';
  constructor(
    message: string,
    readonly failure: OutboundFailure,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'OutboundRequestError';
  }
}

/**
 * Sends `request` and reads the answer.
 *
 * @example
 * const answer = await sendOutbound({ url: new URL('https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration'),
 *   timeoutMs: 5_000, maxResponseBytes: 256 * 1024 });
 */
export async function sendOutbound(request: OutboundRequest): Promise<OutboundAnswer> {
  const send = await loadUndiciRequest();
  const signal = AbortSignal.timeout(Math.max(1, Math.ceil(request.timeoutMs))); // the timer takes whole ms
  const where = `${request.method ?? 'GET'} ${request.url.origin}${request.url.pathname}`;
  let answer: Awaited<ReturnType<typeof send>>;
  try {
    answer = await send(request.url, {
      method: request.method ?? 'GET',
      headers: { ...request.headers },
      ...(request.body === undefined ? {} : { body: request.body }),
      ...(request.dispatcher === undefined ? {} : { dispatcher: request.dispatcher }),
      signal,
    });
  } catch (error) {
    throw transportError(error, where, request.timeoutMs, signal);
  }
  if (request.readsBodyOf && !request.readsBodyOf(answer.statusCode)) {
    await answer.body.dump({ limit: request.maxResponseBytes }).catch(() => {});
    return { status: answer.statusCode, headers: flatHeaders(answer.headers), body: '' };
  }
  const declared = Number(answer.headers['content-length'] ?? '0');
  if (declared > request.maxResponseBytes) {
    discard(answer.body);
    throw new OutboundRequestError(
      `${where} declared ${declared} bytes (more than ${request.maxResponseBytes})`,
      'tooLarge',
    );
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of answer.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > request.maxResponseBytes) {
        discard(answer.body);
        throw new OutboundRequestError(`${where} sent more than ${request.maxResponseBytes} bytes`, 'tooLarge');
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof OutboundRequestError) throw error;
    throw transportError(error, where, request.timeoutMs, signal);
  }
  return {
    status: answer.statusCode,
    headers: flatHeaders(answer.headers),
    body: Buffer.concat(chunks).toString('utf8'),
  };
}

/** Drops an answer's body unread: destroying it makes undici fail the stream, which nobody reads any more. */
function discard(body: NodeJS.ReadableStream & { destroy(): void }): void {
  body.on('error', () => {});
  body.destroy();
}

/** The part of undici the app uses (undiciCore.ts). */
export type Undici = typeof import('./undiciCore.js');

/**
 * undici's `request`, `Agent` and `Pool` (undiciCore.ts), loaded on first use. In the deployment artifact the
 * files are bundled from CommonJS into a chunk of their own, which a start that never calls out never reads.
 */
export async function loadUndici(): Promise<Undici> {
  return import('./undiciCore.js');
}

async function loadUndiciRequest(): Promise<Undici['request']> {
  return (await loadUndici()).request;
}

function transportError(error: unknown, where: string, timeoutMs: number, signal: AbortSignal): OutboundRequestError {
  if (error instanceof OutboundRequestError) return error;
  if (signal.aborted)
    return new OutboundRequestError(`${where} did not answer within ${timeoutMs} ms`, 'timeout', { cause: error });
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const name = error instanceof Error ? error.name : 'error';
  return new OutboundRequestError(`${where} could not be reached (${code ?? name})`, 'unreachable', { cause: error });
}

function flatHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}
