import http from 'node:http';
import { connect } from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  raiseWorkerProxyHeaderLimit,
  WORKER_PROXY_MAX_HEADER_BYTES,
} from '../../shared/http/workerProxyHeaderLimit.js';

/** Sends one request with a `size`-byte header to `server` and returns the status line. */
async function statusFor(server: http.Server, size: number): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const socket = connect(port, '127.0.0.1');
  socket.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(size)}\r\nConnection: close\r\n\r\n`);
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  await once(socket, 'close');
  server.close();
  return text.split('\r\n')[0] ?? '';
}

/** Node keeps the option on the server (read per connection); @types/node does not declare it. */
const maxHeaderSizeOf = (server: http.Server): unknown =>
  (server as http.Server & { maxHeaderSize?: number }).maxHeaderSize;

describe('the worker proxy head limit (no languageWorkers__node__arguments needed)', () => {
  it('gives an option-less createServer (the streaming proxy) room for Kestrel-sized heads; options win', async () => {
    raiseWorkerProxyHeaderLimit();
    raiseWorkerProxyHeaderLimit(); // idempotent
    const proxyLike = http.createServer((_req, res) => res.end('ok'));
    expect(maxHeaderSizeOf(proxyLike)).toBe(WORKER_PROXY_MAX_HEADER_BYTES);
    // 20 KB is over Node's 16 KiB default and under Kestrel's 32 KiB: it must reach the app.
    expect(await statusFor(proxyLike, 20_000)).toBe('HTTP/1.1 200 OK');

    const explicit = http.createServer({ maxHeaderSize: 8_192 }, (_req, res) => res.end('ok'));
    expect(maxHeaderSizeOf(explicit)).toBe(8_192);
    expect(await statusFor(explicit, 20_000)).toBe('HTTP/1.1 431 Request Header Fields Too Large');
  });
});
