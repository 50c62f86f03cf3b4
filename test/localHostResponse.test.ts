import { connect } from 'node:net';
import azureFunctions, { type HttpResponseInit } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalHost, type RunningLocalHost } from '../tools/localHost/localHost.js';

/**
 * The local host writes a handler's plain answer (a record of headers, a string or bytes) without building an
 * `HttpResponse`, which costs a web stream per answer. What reaches the client must be byte for byte what the
 * same answer wrapped in `new HttpResponse(init)` makes (that path converts through the library): status line,
 * header names, their order and casing, values, framing and body.
 */

const { HttpResponse } = azureFunctions;

const ANSWERS: Record<string, HttpResponseInit> = {
  'string body, no content type': { status: 200, body: 'plain text' },
  'string body with UTF-8': { body: 'é and ☃', headers: { 'Content-Type': 'text/plain; charset=utf-8' } },
  'a token answer': {
    status: 200,
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
      'MS-CV': 'abc.1',
      'x-content-type-options': 'nosniff',
      'Content-Length': '999',
    },
    body: '{"AccessToken":"eyJ.x.y"}',
  },
  // The same names again, other values: the host works out what follows from the names once, never the values.
  'the same names, values padded and latin1': {
    status: 200,
    headers: {
      'Content-Type': ' application/json ',
      'Cache-Control': 'no-store',
      Pragma: 'caf\u00e9',
      'MS-CV': '\tabc.2',
      'x-content-type-options': 'nosniff',
      'Content-Length': '1',
    },
    body: '{"AccessToken":"é"}',
  },
  'the same names, the same padded values again': {
    status: 200,
    headers: {
      'Content-Type': ' application/json ',
      'Cache-Control': 'no-store',
      Pragma: 'caf\u00e9',
      'MS-CV': '\tabc.2',
      'x-content-type-options': 'nosniff',
      'Content-Length': '1',
    },
    body: '{"AccessToken":"é"}',
  },
  'the same names, a bytes body': {
    status: 200,
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
      'MS-CV': 'abc.3',
      'x-content-type-options': 'nosniff',
      'Content-Length': '999',
    },
    body: new Uint8Array([123, 125]),
  },
  'the same names, a 204': {
    status: 204,
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
      'MS-CV': 'abc.4',
      'x-content-type-options': 'nosniff',
      'Content-Length': '0',
    },
  },
  'the same names, a token answer again': {
    status: 200,
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
      'MS-CV': 'abc.5',
      'x-content-type-options': 'nosniff',
      'Content-Length': '999',
    },
    body: '{"AccessToken":"eyJ.x.z"}',
  },
  'bytes body': { status: 201, body: new Uint8Array([0, 1, 2, 250, 255]) },
  'names differing in case, joined': { headers: { 'X-Twice': 'one', 'x-twice': 'two' }, body: 'b' },
  'values padded with whitespace': { headers: { 'X-Padded': ' \t value \t ' }, body: 'b' },
  'a latin1 header value': { headers: { 'X-Latin': 'caf\u00e9' }, body: 'café' },
  'a 204 with a body': { status: 204, body: 'dropped' },
  'no body': { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } },
  'the same name, a string body': { status: 401, headers: { 'WWW-Authenticate': 'Bearer' }, body: 'no' },
  'the same name, a NUL in its value': { status: 401, headers: { 'WWW-Authenticate': 'Bearer\u0000' } },
  'transfer-encoding from the handler': { headers: { 'Transfer-Encoding': 'chunked' }, body: 'b' },
  'a 500 with an empty string': { status: 500, body: '' },
};

/** The raw answer to one GET, `Date` removed (it changes with the second). */
function rawGet(port: number, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve(Buffer.from(text.replace(/\r\nDate: [^\r]*/, ''), 'latin1'));
    });
    socket.on('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  });
}

describe('a plain answer through the local host', () => {
  let host: RunningLocalHost;
  beforeAll(async () => {
    host = await startLocalHost({
      definitions: [
        {
          name: 'answer',
          route: 'answer/{kind}/{name}',
          methods: ['GET'],
          authLevel: 'anonymous',
          handler: (request) => {
            const init = ANSWERS[request.params.name ?? ''] ?? { status: 404 };
            // A fresh copy each time: the host may edit what it gets.
            const copy = { ...init, ...(init.headers ? { headers: { ...init.headers } } : {}) };
            return Promise.resolve(request.params.kind === 'wrapped' ? new HttpResponse(copy) : copy);
          },
        },
      ],
      port: 0,
      log: false,
    });
  });
  afterAll(() => host.close());

  for (const name of Object.keys(ANSWERS)) {
    it(`is written as HttpResponse writes it: ${name}`, async () => {
      const plain = await rawGet(host.port, `/answer/plain/${encodeURIComponent(name)}`);
      const wrapped = await rawGet(host.port, `/answer/wrapped/${encodeURIComponent(name)}`);
      expect(plain.toString('latin1')).toMatch(/^HTTP\/1\.1 \d{3} /);
      expect(plain.toString('latin1')).toBe(wrapped.toString('latin1'));
    });
  }
});
