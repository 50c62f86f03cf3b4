import http, { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import {
  createPipelineFromOptions,
  createPipelineRequest,
  isRestError,
  type PipelineRequest,
  type PipelineRequestOptions,
} from '@azure/core-rest-pipeline';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { azureHttpClient } from '../../shared/outbound/azureHttpClient.js';

/**
 * The HttpClient the Azure SDK clients send through (shared/outbound/azureHttpClient.ts), against a loopback
 * server: what the SDK's pipeline sees (bodies, headers, streams, aborts, errors it can retry). The Key Vault and
 * Azurite suites drive the real SDK clients through it end to end.
 */

type Handler = (request: IncomingMessage, body: Buffer, response: ServerResponse) => void;

let server: Server;
let base: string;
let handler: Handler;
let requests: number;

beforeAll(async () => {
  server = createServer((request, response) => {
    requests += 1;
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => handler(request, Buffer.concat(chunks), response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  requests = 0;
  handler = (_request, _body, response) => response.end('ok');
});

function pipelineRequest(path: string, options: Partial<PipelineRequestOptions> = {}): PipelineRequest {
  return createPipelineRequest({ url: `${base}${path}`, allowInsecureConnection: true, ...options });
}

const client = azureHttpClient();

describe('answers', () => {
  it('reads the body as text and gives headers case-insensitively, repeated ones joined as Node does', async () => {
    handler = (_request, _body, response) => {
      response.setHeader('X-Many', ['a', 'b']);
      response.setHeader('Content-Type', 'application/json');
      response.end('{"value":"s3cret"}');
    };
    const response = await client.sendRequest(pipelineRequest('/secrets/a'));
    expect(response.status).toBe(200);
    expect(response.bodyAsText).toBe('{"value":"s3cret"}');
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('CONTENT-TYPE')).toBe('application/json');
    expect(response.headers.get('x-many')).toBe('a, b');
    expect(response.readableStreamBody).toBeUndefined();
  });

  it('hands the body over as a Node stream when the status is one the SDK streams', async () => {
    handler = (_request, _body, response) => response.end('x'.repeat(100_000));
    const request = pipelineRequest('/blob', { streamResponseStatusCodes: new Set([200]) });
    const response = await client.sendRequest(request);
    expect(response.bodyAsText).toBeUndefined();
    const chunks: Buffer[] = [];
    for await (const chunk of response.readableStreamBody as AsyncIterable<Buffer>) chunks.push(chunk);
    expect(Buffer.concat(chunks).toString()).toBe('x'.repeat(100_000));
  });

  it('buffers a status the SDK did not ask to stream', async () => {
    handler = (_request, _body, response) => {
      response.statusCode = 404;
      response.end('{"error":{"code":"SecretNotFound"}}');
    };
    const response = await client.sendRequest(pipelineRequest('/x', { streamResponseStatusCodes: new Set([200]) }));
    expect(response.status).toBe(404);
    expect(response.bodyAsText).toBe('{"error":{"code":"SecretNotFound"}}');
  });

  it('decodes a gzip answer when the request accepted gzip', async () => {
    handler = (_request, _body, response) => {
      response.setHeader('Content-Encoding', 'gzip');
      response.end(gzipSync('compressed answer'));
    };
    const request = pipelineRequest('/gz');
    request.headers.set('Accept-Encoding', 'gzip');
    expect((await client.sendRequest(request)).bodyAsText).toBe('compressed answer');
  });

  it('gives a HEAD answer no body', async () => {
    handler = (_request, _body, response) => {
      response.setHeader('Content-Length', '5');
      response.end();
    };
    const response = await client.sendRequest(pipelineRequest('/h', { method: 'HEAD' }));
    expect(response.status).toBe(200);
    expect(response.bodyAsText).toBeUndefined();
  });
});

describe('request bodies and headers', () => {
  beforeEach(() => {
    handler = (request, body, response) => {
      response.setHeader('Content-Type', 'application/json');
      response.end(
        JSON.stringify({ body: body.toString(), type: request.headers['content-type'], h: request.headers['x-ms-h'] }),
      );
    };
  });

  const bodies: [string, () => PipelineRequest['body']][] = [
    ['a string', () => '{"value":"v"}'],
    ['a Buffer', () => Buffer.from('{"value":"v"}')],
    ['a Uint8Array', () => new TextEncoder().encode('{"value":"v"}')],
    ['a Node stream', () => Readable.from([Buffer.from('{"value"'), Buffer.from(':"v"}')])],
    ['a function returning a Node stream', () => () => Readable.from([Buffer.from('{"value":"v"}')])],
    ['a web stream', () => new Blob(['{"value":"v"}']).stream()],
    ['a Blob', () => new Blob(['{"value":"v"}'])],
  ];

  for (const [what, body] of bodies) {
    it(`sends ${what}, with the request's headers`, async () => {
      const request = pipelineRequest('/echo', { method: 'PUT', body: body() });
      request.headers.set('Content-Type', 'application/json');
      request.headers.set('x-ms-h', 'one');
      const response = await client.sendRequest(request);
      expect(JSON.parse(response.bodyAsText ?? '')).toEqual({
        body: '{"value":"v"}',
        type: 'application/json',
        h: 'one',
      });
    });
  }

  it('refuses a FormData body as the SDK Node client does (the pipeline turns it into a multipart stream first)', async () => {
    const form = new FormData();
    form.set('a', 'b');
    const failure = await client
      .sendRequest(pipelineRequest('/echo', { method: 'POST', body: form }))
      .catch((e: unknown) => e);
    expect(isRestError(failure)).toBe(true);
    expect(requests).toBe(0);
  });

  it('refuses plain http unless the request allows it', async () => {
    const request = createPipelineRequest({ url: `${base}/x` });
    await expect(client.sendRequest(request)).rejects.toThrow(/allowInsecureConnection/);
    expect(requests).toBe(0);
  });
});

describe('aborts and timeouts', () => {
  it('ends a request that outlives request.timeout with an AbortError', async () => {
    handler = () => undefined; // never answers
    const failure = await client.sendRequest(pipelineRequest('/slow', { timeout: 50 })).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).name).toBe('AbortError');
    expect(isRestError(failure)).toBe(false);
  });

  it("ends a request when the caller's signal aborts, and never sends one already aborted", async () => {
    handler = () => undefined;
    const controller = new AbortController();
    const pending = client.sendRequest(pipelineRequest('/slow', { abortSignal: controller.signal }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });

    const before = requests;
    await expect(client.sendRequest(pipelineRequest('/x', { abortSignal: controller.signal }))).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(requests).toBe(before);
  });

  it('honours an abort signal that is not a native AbortSignal (the pipeline admits any AbortSignalLike)', async () => {
    handler = () => undefined;
    const listeners: ((event: Event) => void)[] = [];
    const like = {
      aborted: false,
      addEventListener: (_type: 'abort', listener: (event: Event) => void): void => {
        listeners.push(listener);
      },
      removeEventListener: () => undefined,
    };
    const pending = client.sendRequest(pipelineRequest('/slow', { abortSignal: like }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    like.aborted = true;
    for (const listener of listeners) listener(new Event('abort'));
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('aborts a streamed body the caller stops waiting for', async () => {
    handler = (_request, _body, response) => response.write('first part'); // never ends
    const controller = new AbortController();
    const request = pipelineRequest('/stream', {
      abortSignal: controller.signal,
      streamResponseStatusCodes: new Set([200]),
    });
    const response = await client.sendRequest(request);
    const reading = (async () => {
      for await (const chunk of response.readableStreamBody as AsyncIterable<Buffer>) void chunk;
    })();
    controller.abort();
    await expect(reading).rejects.toBeInstanceOf(Error);
  });
});

describe('transport errors the pipeline can judge', () => {
  it('a refused connection is a RestError with ECONNREFUSED', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const failure = await client
      .sendRequest(createPipelineRequest({ url: `http://127.0.0.1:${port}/`, allowInsecureConnection: true }))
      .catch((e: unknown) => e);
    expect(isRestError(failure)).toBe(true);
    expect(failure).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('a connection reset before the answer is a RestError with ECONNRESET', async () => {
    handler = (request) => request.socket.destroy();
    const failure = await client.sendRequest(pipelineRequest('/reset')).catch((e: unknown) => e);
    expect(isRestError(failure)).toBe(true);
    expect(failure).toMatchObject({ code: 'ECONNRESET' });
  });
});

describe("through the SDK's own pipeline (retry and throttling policies)", () => {
  const pipeline = createPipelineFromOptions({
    retryOptions: { maxRetries: 1, retryDelayInMs: 1, maxRetryDelayInMs: 1 },
  });

  for (const status of [429, 503]) {
    it(`retries a ${status} after its Retry-After`, async () => {
      handler = (_request, _body, response) => {
        if (requests === 1) {
          response.statusCode = status;
          response.setHeader('Retry-After', '0');
          response.end();
        } else {
          response.end('second time');
        }
      };
      const response = await pipeline.sendRequest(client, pipelineRequest('/throttled'));
      expect(response.status).toBe(200);
      expect(response.bodyAsText).toBe('second time');
      expect(requests).toBe(2);
    });
  }

  it('retries a connection reset (a system error) and returns the next answer', async () => {
    handler = (request, _body, response) => {
      if (requests === 1) request.socket.destroy();
      else response.end('after reset');
    };
    const response = await pipeline.sendRequest(client, pipelineRequest('/flaky'));
    expect(response.bodyAsText).toBe('after reset');
    expect(requests).toBe(2);
  });

  it('does not retry an abort', async () => {
    handler = () => undefined;
    await expect(pipeline.sendRequest(client, pipelineRequest('/slow', { timeout: 50 }))).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(requests).toBe(1);
  });
});

describe('proxies (out of scope)', () => {
  it("sends a request that carries a Node agent (the SDK's proxy policy sets one) through the SDK's own client", async () => {
    const sent = vi.spyOn(http, 'request');
    try {
      const request = pipelineRequest('/via-agent');
      request.agent = new http.Agent();
      const response = await client.sendRequest(request);
      expect(response.bodyAsText).toBe('ok');
      expect(sent).toHaveBeenCalledTimes(1);
      request.agent.destroy();
    } finally {
      sent.mockRestore();
    }
  });
});
