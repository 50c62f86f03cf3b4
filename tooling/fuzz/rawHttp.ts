import { connect } from 'node:net';
import type { FuzzRequest } from './fuzzCases.js';

/**
 * Sending a request as raw bytes over a fresh loopback TCP connection, for what undici refuses to send
 * (CR/LF and non-ASCII in headers, odd methods and versions, conflicting framing), and reading the first
 * response back.
 */

export interface RawAnswer {
  /** The first final status, or undefined when the connection closed without one. */
  readonly status: number | undefined;
  readonly head: string;
  readonly body: Buffer;
  /** 'timeout' when neither a response nor a close came in time. */
  readonly outcome: 'response' | 'closed' | 'timeout' | 'error';
  readonly error?: string;
}

/** Serialises a fuzz request, framing included, with `Connection: close` so the server ends the exchange. */
export function serializeRequest(request: FuzzRequest, authority: string): Buffer {
  const lines: string[] = [
    `${request.method} ${request.target}${request.httpVersion ? ` ${request.httpVersion}` : ''}`,
  ];
  if (!request.omitHost && !request.headers.some(([name]) => name.toLowerCase() === 'host'))
    lines.push(`Host: ${authority}`);
  for (const [name, value] of request.headers) lines.push(`${name}: ${value}`);
  lines.push('Connection: close');
  let body = request.body;
  switch (request.framing) {
    case 'content-length':
      if (body.length > 0 || request.method !== 'GET') lines.push(`Content-Length: ${body.length}`);
      break;
    case 'chunked':
      lines.push('Transfer-Encoding: chunked');
      body = chunk(body, false);
      break;
    case 'bad-chunked':
      lines.push('Transfer-Encoding: chunked');
      body = chunk(body, true);
      break;
    case 'cl-and-te':
      lines.push(`Content-Length: ${body.length}`, 'Transfer-Encoding: chunked');
      body = chunk(body, false);
      break;
    case 'two-lengths':
      lines.push(`Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`);
      break;
    case 'short-length':
      // The rest of the body is read as the next (garbage) request on the connection.
      lines.push(`Content-Length: ${Math.floor(body.length / 2)}`);
      body = Buffer.concat([body, Buffer.from('\r\n\r\nGARBAGE / HTTP/1.1\r\n\r\n')]);
      break;
    case 'huge-length':
      // Beyond any body cap, so the server refuses at once instead of waiting for the bytes.
      lines.push(`Content-Length: ${body.length + 50_000_000}`);
      break;
    case 'none':
      break;
  }
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

function chunk(body: Buffer, broken: boolean): Buffer {
  if (broken) {
    return Buffer.concat([
      Buffer.from(`${(body.length + 7).toString(16)};ext=1\r\n`),
      body,
      Buffer.from('\r\nzz\r\n0\r\n\r\n'),
    ]);
  }
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += 1_000) {
    const piece = body.subarray(at, at + 1_000);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/**
 * Writes `bytes` to 127.0.0.1:`port` from `localAddress` (any 127.x address, so that many clients can be
 * simulated) and resolves with the first final response (interim 1xx skipped), read by its Content-Length,
 * or when the server closes, or at `timeoutMs`.
 */
export function sendRaw(
  port: number,
  bytes: Buffer,
  options: { timeoutMs: number; localAddress?: string; method: string },
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect({
      port,
      host: '127.0.0.1',
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (answer: RawAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(
      () => finish({ ...parse(Buffer.concat(chunks), options.method), outcome: 'timeout' }),
      options.timeoutMs,
    );
    socket.on('connect', () => {
      socket.write(bytes, () => undefined);
    });
    socket.on('data', (data: Buffer) => {
      chunks.push(data);
      const parsed = parse(Buffer.concat(chunks), options.method);
      if (parsed.complete) finish({ ...parsed, outcome: 'response' });
    });
    socket.on('end', () => {
      const parsed = parse(Buffer.concat(chunks), options.method);
      finish({ ...parsed, outcome: parsed.status === undefined ? 'closed' : 'response' });
    });
    socket.on('close', () => {
      const parsed = parse(Buffer.concat(chunks), options.method);
      finish({ ...parsed, outcome: parsed.status === undefined ? 'closed' : 'response' });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const parsed = parse(Buffer.concat(chunks), options.method);
      // EPIPE/ECONNRESET after the server answered and closed early (a refused body) is normal.
      if (parsed.status !== undefined) finish({ ...parsed, outcome: 'response' });
      else
        finish({
          ...parsed,
          outcome: error.code === 'ECONNRESET' || error.code === 'EPIPE' ? 'closed' : 'error',
          error: error.code ?? error.message,
        });
    });
  });
}

interface Parsed {
  readonly status: number | undefined;
  readonly head: string;
  readonly body: Buffer;
  readonly complete: boolean;
}

function parse(data: Buffer, method: string): Parsed {
  let offset = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', offset, 'latin1');
    if (end === -1) return { status: undefined, head: '', body: Buffer.alloc(0), complete: false };
    const head = data.subarray(offset, end).toString('latin1');
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(head)?.[1]);
    if (!Number.isInteger(status)) return { status: undefined, head, body: Buffer.alloc(0), complete: false };
    if (status >= 100 && status < 200) {
      offset = end + 4; // interim response (100 Continue): the final one follows
      continue;
    }
    const lengthHeader = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
    const bodyStart = end + 4;
    const noBody = method === 'HEAD' || status === 204 || status === 304;
    const length = noBody ? 0 : lengthHeader === undefined ? undefined : Number(lengthHeader);
    const available = data.subarray(bodyStart);
    if (length === undefined) return { status, head, body: available, complete: false };
    return { status, head, body: available.subarray(0, length), complete: available.length >= length };
  }
}
