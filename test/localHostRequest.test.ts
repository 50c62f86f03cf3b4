import azureFunctions, { type HttpHandler, type HttpRequest } from '@azure/functions';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalHost, type RunningLocalHost } from '../tools/localHost/localHost.js';

/**
 * What a handler can do with the `HttpRequest` the local host hands it, compared with a fetch `Request` built
 * from the same URL, method, headers and body (what the library wraps in the real worker). The local host
 * builds a GET's fetch request only when a handler asks for more than its URL, method, headers and (null)
 * body; every answer must be the same either way, whatever the handler asks first.
 */

const { HttpRequest: HttpRequestClass } = azureFunctions;

/** Everything observable of a request, in the order a handler might ask; each step's outcome is recorded. */
async function observe(
  req: Pick<Request, 'url' | 'method' | 'headers' | 'body' | 'bodyUsed' | 'text' | 'json'> & {
    clone(): Pick<Request, 'url' | 'method' | 'headers' | 'text'>;
    arrayBuffer(): Promise<ArrayBuffer>;
    formData(): Promise<FormData>;
    blob(): Promise<Blob>;
  },
): Promise<unknown[]> {
  const outcome = async (step: () => unknown): Promise<unknown> => {
    try {
      const value = await step();
      return { value: value instanceof ArrayBuffer ? value.byteLength : value };
    } catch (error) {
      return { threw: (error as Error).name };
    }
  };
  const steps: (() => unknown)[] = [
    () => req.url,
    () => req.method,
    () => req.headers instanceof Headers,
    () => [...req.headers],
    () => (req.body === null ? null : req.body instanceof ReadableStream),
    () => req.bodyUsed,
    async () => {
      const copy = req.clone();
      return [copy.url, copy.method, [...copy.headers], await copy.text()];
    },
    () => req.text(),
    () => req.arrayBuffer(),
    async () => (await req.blob()).size,
    () => req.json(),
    () => req.formData().then((form) => [...form.entries()]),
    () => req.bodyUsed,
  ];
  const seen: unknown[] = [];
  for (const step of steps) seen.push(await outcome(step));
  return seen;
}

/** The same steps, after the handler changed a header first (a `Request` built later must see the change). */
async function observeAfterHeaderChange(req: HttpRequest): Promise<unknown[]> {
  req.headers.set('x-changed', 'yes');
  const copy = req.clone();
  return [[...copy.headers], [...req.headers], await copy.text()];
}

let lastSeen: { first: unknown[]; changed: unknown[]; isHttpRequest: boolean; query: [string, string][] } | undefined;

const probe: HttpHandler = async (req, context) => {
  const order = req.query.get('order');
  if (order === 'clone-first') await req.clone().text();
  lastSeen = {
    first: order === 'change-first' ? [] : await observe(req),
    changed: order === 'change-first' ? await observeAfterHeaderChange(req) : [],
    isHttpRequest: req instanceof HttpRequestClass,
    query: [...req.query.entries()],
  };
  context.log('probed');
  return { status: 204 };
};

describe('the HttpRequest a handler gets from the local host', () => {
  let host: RunningLocalHost;
  beforeAll(async () => {
    host = await startLocalHost({
      definitions: [
        { name: 'probe', route: 'probe/{id}', methods: ['GET', 'POST'], authLevel: 'anonymous', handler: probe },
      ],
      port: 0,
      log: false,
    });
  });
  afterAll(() => host.close());

  const headers = { 'X-Custom': 'one', Authorization: 'Bearer abc:def', 'Content-Type': 'application/json' };

  async function reference(method: string, path: string, body?: string): Promise<unknown[]> {
    const url = `${host.url}${path}`;
    const sent = new Headers(headers);
    sent.set('host', new URL(url).host);
    sent.set('x-forwarded-for', '127.0.0.1');
    sent.set('x-forwarded-proto', 'http');
    sent.set('x-forwarded-host', new URL(url).host);
    if (body !== undefined) sent.set('content-length', String(Buffer.byteLength(body)));
    return observe(new Request(url, { method, headers: sent, ...(body === undefined ? {} : { body }) }));
  }

  /** Header pairs without the ones the HTTP client adds on its own (connection management). */
  function withoutClientHeaders(seen: unknown[]): unknown[] {
    const strip = (pairs: [string, string][]) => pairs.filter(([name]) => name !== 'connection');
    return seen.map((entry, index) => {
      if (index === 3) return { value: strip((entry as { value: [string, string][] }).value) };
      if (index === 6) {
        const [url, method, pairs, text] = (entry as { value: [string, string, [string, string][], string] }).value;
        return { value: [url, method, strip(pairs), text] };
      }
      return entry;
    });
  }

  for (const order of ['as-asked', 'clone-first']) {
    it(`answers a GET as a fetch Request would (${order})`, async () => {
      const path = `/probe/a%20b?order=${order}&x=1&x=2`;
      const response = await request(`${host.url}${path}`, { headers });
      await response.body.dump();
      expect(response.statusCode).toBe(204);
      expect(lastSeen?.isHttpRequest).toBe(true);
      expect(lastSeen?.query).toEqual([
        ['order', order],
        ['x', '1'],
        ['x', '2'],
      ]);
      expect(withoutClientHeaders(lastSeen?.first ?? [])).toEqual(await reference('GET', path));
    });
  }

  for (const path of ['/probe/x?order=as-asked&api-version=2019-02-28-preview&flag', '/probe/x']) {
    it(`gives the handler the URL's own query: ${path}`, async () => {
      const response = await request(`${host.url}${path}`, { headers });
      await response.body.dump();
      expect(response.statusCode).toBe(204);
      expect(lastSeen?.query).toEqual([...new URL(`${host.url}${path}`).searchParams]);
      expect(withoutClientHeaders(lastSeen?.first ?? [])).toEqual(await reference('GET', path));
    });
  }

  it('answers a POST with a body as a fetch Request would', async () => {
    const body = '{"a":1}';
    const response = await request(`${host.url}/probe/x`, { method: 'POST', headers, body });
    await response.body.dump();
    expect(response.statusCode).toBe(204);
    expect(withoutClientHeaders(lastSeen?.first ?? [])).toEqual(await reference('POST', '/probe/x', body));
  });

  it('builds a GET fetch request with the headers as the handler left them', async () => {
    const response = await request(`${host.url}/probe/x?order=change-first`, { headers });
    await response.body.dump();
    const [copyHeaders, ownHeaders, text] = lastSeen?.changed as [[string, string][], [string, string][], string];
    expect(text).toBe('');
    expect(copyHeaders).toContainEqual(['x-changed', 'yes']);
    expect(copyHeaders).toEqual(ownHeaders);
  });
});
