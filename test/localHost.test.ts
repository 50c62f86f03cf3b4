import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { get } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import azureFunctions, { type HttpHandler } from '@azure/functions';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLocalHost, type HttpFunctionLike, type RunningLocalHost } from '../tools/localHost/localHost.js';
import { demoCurlGuide, ensureDemoCredentials } from '../tools/demoCredentials.js';
import { projectRoot } from '../tools/localHost/projectPaths.js';
import { ensureLocalTlsCertificate } from '../tools/localHost/tlsCertificate.js';
import { loadConfig } from '../shared/config.js';
import {
  createCognitiveResource,
  createMixedRealityAccount,
  ensureSigningKey,
} from '../tools/sts/credentials/provisioning.js';
import type { CognitiveResource, MixedRealityAccount } from '../shared/credentials/records.js';
import { defineStsFunction } from '../shared/app/stsFunction.js';
import { FileSecretStore } from '../shared/secrets/fileSecretStore.js';
import { startTestHost, type TestHost } from './support/localHostFixture.js';
import { manualTimers } from './support/manualTimers.js';

/**
 * The local host over real HTTP(S), as a client sees it, answering as the real Functions host does
 * (docs/hosts.md): routing, the host's own empty 404s, the homepage, dot segments, Kestrel's limits, the
 * client address, the objects handed to handlers, the log line, TLS and shutdown.
 */

const { HttpRequest, InvocationContext } = azureFunctions;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** What the echo handler saw, returned as JSON. */
interface Seen {
  method: string;
  url: string;
  params: Record<string, string>;
  query: [string, string][];
  forwardedFor: string | null;
  authorization: string | null;
  bodyLength: number;
  realRequest: boolean;
  realContext: boolean;
  invocationId: string;
  functionName: string;
}

let calls = 0;
const echo: HttpHandler = async (req, context) => {
  calls++;
  context.log('echo handler ran');
  const body = Buffer.from(await req.arrayBuffer());
  const seen: Seen = {
    method: req.method,
    url: req.url,
    params: { ...req.params },
    query: [...req.query.entries()],
    forwardedFor: req.headers.get('x-forwarded-for'),
    authorization: req.headers.get('authorization'),
    bodyLength: body.length,
    realRequest: req instanceof HttpRequest,
    realContext: context instanceof InvocationContext,
    invocationId: context.invocationId,
    functionName: context.functionName,
  };
  return { jsonBody: seen };
};

const fake = (name: string, route: string, methods: string[], handler: HttpHandler = echo): HttpFunctionLike => ({
  name,
  route,
  methods,
  authLevel: 'anonymous',
  handler,
});

const FAKES: HttpFunctionLike[] = [
  fake('accountToken', 'accounts/{accountId}/token', ['GET']),
  fake('cognitiveToken', 'sts/v1.0/issueToken', ['POST']),
  fake('wrap', 'WRAPv0.9', ['POST']),
  fake('optional', 'items/{id?}', ['GET', 'PUT']),
  fake('shaped', 'shaped', ['GET'], async () => ({
    status: 201,
    headers: [
      ['X-Multi', 'one'],
      ['X-Multi', 'two'],
      ['Content-Type', 'application/octet-stream'],
    ],
    cookies: [
      { name: 'a', value: '1', httpOnly: true },
      { name: 'b', value: '2', path: '/' },
    ],
    body: new Uint8Array([0, 1, 2, 250, 255]),
  })),
  fake('json', 'json', ['GET'], async () => ({ jsonBody: { ok: 'é' } })),
  fake('throws', 'throws', ['GET'], async () => {
    throw new Error('boom with a key 0f3c9a7b5d1e2f4a6b8c0d2e4f6a8b0c');
  }),
  fake('hangs', 'hangs', ['GET'], () => new Promise(() => {})),
];

async function call(url: string, options: Parameters<typeof request>[1] = {}) {
  const response = await request(url, options);
  const bytes = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, headers: response.headers, text: bytes.toString('utf8'), bytes };
}
const seenOf = (text: string): Seen => JSON.parse(text) as Seen;

/** What the real host sends for its own errors: the status, `Content-Length: 0`, nothing else. */
function expectBareHostAnswer(response: Awaited<ReturnType<typeof call>>, status: number, { head = false } = {}): void {
  expect(response.status).toBe(status);
  expect(response.bytes.length).toBe(0);
  const headers = Object.keys(response.headers).filter((name) => !['date', 'connection', 'keep-alive'].includes(name));
  const sized = status !== 204 && !head;
  expect(headers).toEqual(sized ? ['content-length'] : []);
  if (sized) expect(response.headers['content-length']).toBe('0');
}

describe('routing like the Functions host', () => {
  let host: RunningLocalHost;
  const log: string[] = [];
  const timers = manualTimers();
  beforeAll(async () => {
    host = await startLocalHost({
      definitions: FAKES,
      port: 0,
      maxBodyBytes: 1_024,
      requestTimeoutMs: 300,
      timers,
      homepageDisabled: false,
      log: (l) => log.push(l),
    });
  });
  afterAll(() => host.close());

  it('listens on 127.0.0.1 and reports a free port', () => {
    expect(host.url).toBe(`http://127.0.0.1:${host.port}`);
    expect(host.port).toBeGreaterThan(0);
  });

  it('matches routes case-insensitively (/Accounts/ and /accounts/, issueToken and issuetoken)', async () => {
    for (const path of ['/Accounts/abc/token', '/accounts/abc/TOKEN']) {
      const response = await call(`${host.url}${path}`);
      expect(response.status, path).toBe(200);
      expect(seenOf(response.text)).toMatchObject({ functionName: 'accountToken', params: { accountId: 'abc' } });
    }
    for (const path of ['/sts/v1.0/issueToken', '/sts/v1.0/issuetoken', '/STS/V1.0/ISSUETOKEN']) {
      const response = await call(`${host.url}${path}`, { method: 'POST', body: '' });
      expect(response.status, path).toBe(200);
      expect(seenOf(response.text).functionName).toBe('cognitiveToken');
    }
  });

  it('tolerates one trailing slash (/WRAPv0.9 and /WRAPv0.9/) and nothing more', async () => {
    for (const path of ['/WRAPv0.9', '/WRAPv0.9/', '/wrapv0.9/']) {
      expect((await call(`${host.url}${path}`, { method: 'POST', body: 'a=b' })).status, path).toBe(200);
    }
    expect((await call(`${host.url}/WRAPv0.9//`, { method: 'POST', body: 'a=b' })).status).toBe(404);
  });

  it('percent-decodes route parameters, keeps the query, and refuses malformed encoding with 400', async () => {
    const response = await call(`${host.url}/accounts/a%20b%2Fc%C3%A9/token?api-version=2019-02-28-preview&x=1&x=2`);
    expect(seenOf(response.text)).toMatchObject({
      params: { accountId: 'a b/cé' },
      query: [
        ['api-version', '2019-02-28-preview'],
        ['x', '1'],
        ['x', '2'],
      ],
    });
    expect((await call(`${host.url}/accounts/%E0%A4%A/token`)).status).toBe(400);
  });

  it('binds an optional trailing parameter only when present', async () => {
    expect(seenOf((await call(`${host.url}/items`)).text).params).toEqual({});
    expect(seenOf((await call(`${host.url}/items/42`)).text).params).toEqual({ id: '42' });
  });

  it('answers an empty 404 for unknown paths, including the /api prefix host.json turns off', async () => {
    const before = calls;
    for (const path of [
      '/nope',
      '/api/accounts/abc/token',
      '/accounts/abc',
      '/accounts/abc/token/extra',
      '/accounts//token',
    ]) {
      expectBareHostAnswer(await call(`${host.url}${path}`), 404);
    }
    expect(calls).toBe(before);
  });

  it('answers a wrong method, HEAD and OPTIONS with the same empty 404 (no 405, no Allow), running nothing', async () => {
    const before = calls;
    expectBareHostAnswer(await call(`${host.url}/accounts/abc/token`, { method: 'POST', body: 'x' }), 404);
    expectBareHostAnswer(await call(`${host.url}/sts/v1.0/issuetoken`, { method: 'OPTIONS' }), 404);
    expectBareHostAnswer(await call(`${host.url}/sts/v1.0/issuetoken`, { method: 'GET' }), 404);
    expectBareHostAnswer(await call(`${host.url}/accounts/abc/token`, { method: 'HEAD' }), 404, { head: true });
    expectBareHostAnswer(await call(`${host.url}/items/1`, { method: 'DELETE' }), 404);
    expect(calls).toBe(before);
  });

  it('serves the homepage at / (200 text/html) when AzureWebJobsDisableHomepage is not true', async () => {
    const page = await call(`${host.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html');
    expect(page.text).toContain('Your Functions 4.0 app is up and running');
    expect(page.headers['content-length']).toBe(String(page.bytes.length));
  });

  it('removes dot segments before routing, plain or percent-encoded, and never climbs above the root', async () => {
    // node:http sends the path as given (a URL object would normalise it before it leaves the client).
    const rawGet = (path: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        get({ host: '127.0.0.1', port: host.port, path }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        }).on('error', reject);
      });
    for (const path of [
      '/x/../accounts/abc/token',
      '/accounts/./abc/token',
      '/accounts/abc/x/%2E%2E/token',
      '/../../accounts/abc/token?q=1',
    ]) {
      const response = await rawGet(path);
      expect(response.status, path).toBe(200);
      expect(seenOf(response.text), path).toMatchObject({ functionName: 'accountToken', params: { accountId: 'abc' } });
      expect(seenOf(response.text).url, path).toBe(
        `http://127.0.0.1:${host.port}/accounts/abc/token${path.includes('?') ? '?q=1' : ''}`,
      );
    }
    expect((await rawGet('/accounts/abc/token/../../x')).status).toBe(404);
  });

  it('hands the handler a real HttpRequest and InvocationContext whose invocation id is the logged request id', async () => {
    const response = await call(`${host.url}/WRAPv0.9/?q=1`, { method: 'POST', body: 'wrap_name=owner' });
    const seen = seenOf(response.text);
    expect(seen).toMatchObject({
      method: 'POST',
      realRequest: true,
      realContext: true,
      functionName: 'wrap',
      bodyLength: 15,
    });
    expect(seen.url).toBe(`${host.url}/WRAPv0.9/?q=1`);
    expect(seen.invocationId).toMatch(UUID);
    expect(log).toContain(
      `POST /WRAPv0.9/ 200 ${/ (\d+)ms /.exec(log.find((l) => l.endsWith(seen.invocationId)) ?? '')?.[1]}ms ${seen.invocationId}`,
    );
    expect(log).toContain(`[information] wrap ${seen.invocationId} echo handler ran`);
  });

  it('writes the response back: status, repeated headers, cookies, exact bytes, Content-Length and never chunked', async () => {
    const shaped = await call(`${host.url}/shaped`);
    expect(shaped.status).toBe(201);
    expect(shaped.headers['x-multi']).toBe('one, two');
    expect(shaped.headers['set-cookie']).toEqual(['a=1; HttpOnly', 'b=2; Path=/']);
    expect([...shaped.bytes]).toEqual([0, 1, 2, 250, 255]);
    expect(shaped.headers['content-length']).toBe('5');
    expect(shaped.headers['transfer-encoding']).toBeUndefined();
    const json = await call(`${host.url}/json`);
    expect(json.headers['content-type']).toBe('application/json');
    expect(json.text).toBe('{"ok":"é"}');
    expect(json.headers['content-length']).toBe(String(Buffer.byteLength('{"ok":"é"}')));
  });

  it("spells the response header names Kestrel knows as Kestrel does, and the others as the handler's response did", async () => {
    const names = await new Promise<string[]>((resolve, reject) => {
      get({ host: '127.0.0.1', port: host.port, path: '/shaped' }, (res) => {
        res.resume();
        resolve(res.rawHeaders.filter((_, i) => i % 2 === 0));
      }).on('error', reject);
    });
    expect(names).toEqual(expect.arrayContaining(['Content-Type', 'Content-Length', 'Set-Cookie', 'x-multi']));
    expect(names).not.toContain('content-type');
  });

  it('turns a throwing handler into a bare 500 and a hanging one into a bare 500 when the timeout fires', async () => {
    expectBareHostAnswer(await call(`${host.url}/throws`), 500);
    const hung = call(`${host.url}/hangs`);
    await timers.scheduled(300);
    expect(timers.fire(300)).toBe(1);
    expectBareHostAnswer(await hung, 500);
    expect(log.join('\n')).not.toContain('0f3c9a7b5d1e2f4a6b8c0d2e4f6a8b0c');
  });
});

describe('limits', () => {
  let host: RunningLocalHost;
  const log: string[] = [];
  beforeAll(async () => {
    // Kestrel's defaults for the request line and headers; a small body cap to exercise it.
    host = await startLocalHost({ definitions: FAKES, port: 0, maxBodyBytes: 1_024, log: (l) => log.push(l) });
  });
  afterAll(() => host.close());

  it('accepts a body of exactly the limit', async () => {
    const response = await call(`${host.url}/WRAPv0.9`, { method: 'POST', body: 'x'.repeat(1_024) });
    expect(response.status).toBe(200);
    expect(seenOf(response.text).bodyLength).toBe(1_024);
  });

  it('answers 413 from Content-Length, before reading the body', async () => {
    const before = calls;
    const response = await call(`${host.url}/WRAPv0.9`, { method: 'POST', body: Buffer.alloc(3_000_000, 97) });
    expectBareHostAnswer(response, 413);
    expect(calls).toBe(before);
  });

  it('answers 413 for a chunked body (no Content-Length) once it passes the limit', async () => {
    async function* chunks() {
      for (let i = 0; i < 2_000; i++) yield Buffer.alloc(1_024, 98);
    }
    const before = calls;
    const response = await call(`${host.url}/WRAPv0.9`, { method: 'POST', body: Readable.from(chunks()) });
    expect(response.status).toBe(413);
    expect(calls).toBe(before);
  });

  it("answers Kestrel's empty 414 for a request line over 8 KiB (path or query), and serves one just under", async () => {
    const line = (target: string) => Buffer.byteLength(`GET ${target} HTTP/1.1\r\n`);
    const under = `/accounts/abc/token?pad=${'a'.repeat(8_192 - line('/accounts/abc/token?pad='))}`;
    expect(line(under)).toBe(8_192);
    expect((await call(`${host.url}${under}`)).status).toBe(200);
    expectBareHostAnswer(await call(`${host.url}${under}a`), 414);
    expectBareHostAnswer(await call(`${host.url}/accounts/${'a'.repeat(8_200)}/token`), 414);
  });

  it("answers Kestrel's empty 431 for headers over 32 KiB or more than 100 fields", async () => {
    expectBareHostAnswer(
      await call(`${host.url}/accounts/abc/token`, { headers: { 'x-pad': 'a'.repeat(33_000) } }),
      431,
    );
    const fields = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, '1']));
    // undici adds host, connection; the count is of fields as sent.
    expect((await call(`${host.url}/accounts/abc/token`, { headers: fields(98) })).status).toBe(200);
    expectBareHostAnswer(await call(`${host.url}/accounts/abc/token`, { headers: fields(99) }), 431);
    // Far beyond, Node itself stops reading the head: still a 431, logged.
    expect((await call(`${host.url}/accounts/abc/token`, { headers: { 'x-pad': 'a'.repeat(60_000) } })).status).toBe(
      431,
    );
    expect(log.some((l) => / 431 .*HPE_HEADER_OVERFLOW/.test(l))).toBe(true);
  });

  it('hands repeated Authorization headers to the handler joined with ", ", as the Functions host does', async () => {
    const response = await call(`${host.url}/accounts/abc/token`, {
      headers: { authorization: ['Bearer first', 'Bearer second'] },
    });
    expect(response.status).toBe(200);
    expect(seenOf(response.text).authorization).toBe('Bearer first, Bearer second');
    expect(
      seenOf((await call(`${host.url}/accounts/abc/token`, { headers: { authorization: 'Bearer one' } })).text)
        .authorization,
    ).toBe('Bearer one');
  });

  it('gives the handler the socket address as the only X-Forwarded-For entry, forged or missing alike', async () => {
    const forged = await call(`${host.url}/accounts/abc/token`, {
      headers: { 'x-forwarded-for': '203.0.113.9, 198.51.100.7' },
    });
    expect(seenOf(forged.text).forwardedFor).toBe('127.0.0.1');
    expect(seenOf((await call(`${host.url}/accounts/abc/token`)).text).forwardedFor).toBe('127.0.0.1');
  });
});

describe('routePrefix', () => {
  it('reads host.json by default ("" here) and applies an explicit prefix like the real host', async () => {
    const prefixed = await startLocalHost({ definitions: FAKES, port: 0, routePrefix: 'api', log: () => {} });
    try {
      expect((await call(`${prefixed.url}/API/accounts/abc/token`)).status).toBe(200);
      expect((await call(`${prefixed.url}/accounts/abc/token`)).status).toBe(404);
    } finally {
      await prefixed.close();
    }
  });
});

describe('TLS (--https)', () => {
  it('serves with the self-signed certificate under .sts/tls/, which a client can trust explicitly', async () => {
    const host = await startLocalHost({ definitions: FAKES, port: 0, https: true, log: () => {} });
    const trusting = new Agent({ connect: { ca: (await ensureLocalTlsCertificate()).cert } });
    const untrusting = new Agent();
    try {
      expect(host.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const certificate = await readFile(join(projectRoot, '.sts', 'tls', 'cert.pem'), 'utf8');
      expect((await ensureLocalTlsCertificate()).cert).toBe(certificate);
      const response = await call(`${host.url}/accounts/abc/token`, { dispatcher: trusting });
      expect(response.status).toBe(200);
      expect(seenOf(response.text).url).toMatch(/^https:/);
      const localhost = await call(`${host.url.replace('127.0.0.1', 'localhost')}/accounts/abc/token`, {
        dispatcher: trusting,
      });
      expect(localhost.status).toBe(200);
      await expect(request(`${host.url}/accounts/abc/token`, { dispatcher: untrusting })).rejects.toThrow(
        /self[- ]signed|certificate/i,
      );
    } finally {
      await Promise.all([trusting.close(), untrusting.close()]);
      await host.close();
    }
  });
});

describe('graceful close', () => {
  it('stops accepting, lets the in-flight request finish, then resolves', async () => {
    let release: () => void = () => {};
    let entered: () => void = () => {};
    const handlerEntered = new Promise<void>((resolve) => (entered = resolve));
    const slow = fake('slow', 'slow', ['GET'], async () => {
      entered();
      await new Promise<void>((resolve) => (release = resolve));
      return { body: 'finished' };
    });
    const host = await startLocalHost({ definitions: [slow], port: 0, log: () => {} });
    const inFlight = call(`${host.url}/slow`);
    await handlerEntered;

    let closed = false;
    const closing = host.close().then(() => (closed = true));
    const fresh = new Agent();
    try {
      await expect(request(`${host.url}/slow`, { dispatcher: fresh })).rejects.toThrow(
        /ECONNREFUSED|other side closed|socket/i,
      );
    } finally {
      await fresh.close();
    }
    // The refused connection proves close() has begun; the in-flight request still holds it open.
    expect(closed).toBe(false);

    release();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(response.text).toBe('finished');
    expect(response.headers.connection).toBe('close');
    await closing;
    expect(closed).toBe(true);
  });

  it('cuts connections that outlive the grace period', async () => {
    let entered: () => void = () => {};
    const handlerEntered = new Promise<void>((resolve) => (entered = resolve));
    const hangs = fake('hangs', 'hangs', ['GET'], () => {
      entered();
      return new Promise(() => {});
    });
    const timers = manualTimers();
    const host = await startLocalHost({
      definitions: [hangs],
      port: 0,
      shutdownGraceMs: 200,
      requestTimeoutMs: 60_000,
      timers,
      log: () => {},
    });
    const inFlight = request(`${host.url}/hangs`).then(
      () => 'answered',
      () => 'cut',
    );
    await handlerEntered;
    const closing = host.close();
    await timers.scheduled(200);
    expect(timers.fire(200)).toBe(1);
    await closing;
    expect(await inFlight).toBe('cut');
  });
});

describe('with the real function definitions', () => {
  let storeFolder: string;
  let account: MixedRealityAccount;
  let speech: CognitiveResource;
  let host: TestHost | undefined;

  beforeAll(async () => {
    storeFolder = await mkdtemp(join(tmpdir(), 'sts-local-host-test-'));
    const store = new FileSecretStore(join(storeFolder, 'secrets.json'));
    await ensureSigningKey(store);
    account = await createMixedRealityAccount(store, { accountDomain: 'eastus2.mixedreality.azure.com' });
    speech = await createCognitiveResource(store, {
      name: 'speech-host-test',
      region: 'eastus',
      resourceKind: 'SpeechServices',
    });
  });
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });
  afterAll(() => rm(storeFolder, { recursive: true, force: true }));

  const env = (): Record<string, string> => ({
    STS_LOCAL_STORE_PATH: join(storeFolder, 'secrets.json'),
    STS_ISSUER: 'https://sts.test.example/',
  });

  it('issues a Mixed Reality token on /Accounts/ and /accounts/ with Content-Length, and logs neither key nor token', async () => {
    host = await startTestHost({ env: env() });
    const tokens: string[] = [];
    for (const segment of ['Accounts', 'accounts']) {
      const response = await call(`${host.url}/${segment}/${account.accountId}/token?api-version=2019-02-28-preview`, {
        headers: { authorization: `Bearer ${account.accountId}:${account.keys[0]}` },
      });
      expect(response.status, segment).toBe(200);
      expect(response.headers['content-length']).toBe(String(response.bytes.length));
      expect(response.headers['transfer-encoding']).toBeUndefined();
      tokens.push((JSON.parse(response.text) as { AccessToken: string }).AccessToken);
    }
    const refused = await call(`${host.url}/accounts/${account.accountId}/token`, {
      headers: {
        authorization: `Bearer ${account.accountId}:${account.keys[0].replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}`,
      },
    });
    expect(refused.status).toBe(401);

    const logged = host.logLines.join('\n');
    expect(host.logLines.filter((l) => l.startsWith('GET '))).toHaveLength(3);
    for (const line of host.logLines.filter((l) => l.startsWith('GET '))) {
      expect(line).toMatch(new RegExp(`^GET /[Aa]ccounts/${account.accountId}/token (200|401) \\d+ms [0-9a-f-]{36}$`));
    }
    for (const secret of [account.keys[0], ...tokens, 'api-version']) expect(logged).not.toContain(secret);
  });

  it('issues a Cognitive token on lower-case issuetoken with the key in the query, and never logs the query', async () => {
    host = await startTestHost({ env: env() });
    const response = await call(`${host.url}/sts/v1.0/issuetoken?Subscription-Key=${speech.keys[0]}`, {
      method: 'POST',
      body: '',
    });
    expect(response.status).toBe(200);
    expect(response.text).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(host.logLines).toContainEqual(
      expect.stringMatching(/^POST \/sts\/v1\.0\/issuetoken 200 \d+ms [0-9a-f-]{36}$/),
    );
    const logged = host.logLines.join('\n');
    for (const secret of [speech.keys[0], response.text, 'Subscription-Key']) expect(logged).not.toContain(secret);
  });

  it('reports the socket address as the client IP through the shared function wrapper', async () => {
    // A GET flow without a correlation header of its own (so `x-ms-request-id`), moved to a route of its own.
    const reportIp = {
      ...defineStsFunction({
        name: 'jwks',
        handle: async ({ clientIp, requestId }) => ({ response: { jsonBody: { clientIp, requestId } } }),
      }),
      route: 'test/client-ip',
    };
    host = await startTestHost({ env: env(), definitions: [reportIp] });
    const response = await call(`${host.url}/test/client-ip`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    const body = JSON.parse(response.text) as { clientIp: string; requestId: string };
    expect(body.clientIp).toBe('127.0.0.1');
    expect(response.headers['x-ms-request-id']).toBe(body.requestId);
    expect(host.logLines.at(-1)).toMatch(new RegExp(`^GET /test/client-ip 200 \\d+ms ${body.requestId}$`));
  });

  it('serves the real functions over HTTPS, trusted through the returned certificate', async () => {
    host = await startTestHost({ env: env(), https: true });
    const agent = new Agent({ connect: { ca: host.ca } });
    try {
      const response = await call(`${host.url}/Accounts/${account.accountId}/token`, {
        headers: { authorization: `Bearer ${account.accountId}:${account.keys[1]}` },
        dispatcher: agent,
      });
      expect(response.status).toBe(200);
      expect(JSON.parse(response.text)).toHaveProperty('AccessToken');
    } finally {
      await agent.close();
    }
  });

  it('serves two hosts at once, each answering with its own services', async () => {
    host = await startTestHost({ env: env() });
    const other = await startTestHost({ env: { ...env(), STS_ISSUER: 'https://sts.other.test.example/' } });
    try {
      const issuerOf = async (url: string) =>
        (JSON.parse((await call(`${url}/.well-known/openid-configuration`)).text) as { issuer: string }).issuer;
      expect(await issuerOf(host.url)).toBe('https://sts.test.example/');
      expect(await issuerOf(other.url)).toBe('https://sts.other.test.example/');
      const id = randomUUID();
      expect(
        (await call(`${host.url}/accounts/${id}/token`, { headers: { authorization: `Bearer ${id}:x` } })).status,
      ).toBe(401);
    } finally {
      await other.close();
    }
  });
});

describe('the demo credentials of the first `npm start`', () => {
  let folder: string;
  let host: TestHost | undefined;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'sts-demo-test-'));
  });
  afterAll(async () => {
    await host?.close();
    await rm(folder, { recursive: true, force: true });
  });

  it('are created once, only for the embedded store, and every flow answers 200 with them as the guide shows', async () => {
    const storePath = join(folder, 'nested', 'secrets.json');
    const config = loadConfig({ STS_LEDGER_MODE: 'off', STS_LOCAL_STORE_PATH: storePath });
    const first = await ensureDemoCredentials(config);
    if (first.outcome !== 'created') throw new Error(`expected creation, got ${first.outcome}`);
    expect(await ensureDemoCredentials(config)).toEqual({ outcome: 'store exists', storePath });
    expect(
      await ensureDemoCredentials(
        loadConfig({
          STS_LEDGER_MODE: 'off',
          KEY_VAULT_URL: 'https://demo.vault.azure.net/',
          STS_LOCAL_STORE_PATH: join(folder, 'unused.json'),
        }),
      ),
    ).toEqual({ outcome: 'key vault' });

    const demo = first.credentials;
    host = await startTestHost({ env: { STS_LOCAL_STORE_PATH: storePath } });
    const guide = demoCurlGuide(demo, { baseUrl: host.url });
    for (const key of [demo.mixedReality.accountKey, demo.speech.key, demo.isvFace.key, demo.wrap.key])
      expect(guide).toContain(key);

    const mr = await call(`${host.url}/accounts/${demo.mixedReality.accountId}/token`, {
      headers: { authorization: `Bearer ${demo.mixedReality.accountId}:${demo.mixedReality.accountKey}` },
    });
    expect(mr.status).toBe(200);
    const issued = await call(`${host.url}/sts/v1.0/issueToken`, {
      method: 'POST',
      headers: { 'ocp-apim-subscription-key': demo.speech.key, 'content-length': '0' },
    });
    expect(issued.status).toBe(200);
    const limited = await call(`${host.url}/sts/v1.0/issueLimitedAccessToken?expiredTime=3600`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'ocp-apim-subscription-key': demo.isvFace.key },
      body: JSON.stringify({ targetAzureResourceId: demo.speech.resourceId, featureFlags: ['Face.Identification'] }),
    });
    expect(limited.status, limited.text).toBe(200);
    const plainCannotGrant = await call(`${host.url}/sts/v1.0/issueLimitedAccessToken?expiredTime=3600`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'ocp-apim-subscription-key': demo.speech.key },
      body: JSON.stringify({ targetAzureResourceId: demo.speech.resourceId, featureFlags: ['Face.Identification'] }),
    });
    expect(plainCannotGrant.status).toBeGreaterThanOrEqual(400);
    expect(plainCannotGrant.status).toBeLessThan(500);
    const wrap = await call(`${host.url}/WRAPv0.9/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        wrap_name: demo.wrap.name,
        wrap_password: demo.wrap.key,
        wrap_scope: demo.wrap.scope,
      }).toString(),
    });
    expect(wrap.status).toBe(200);
    expect(wrap.text).toMatch(/^wrap_access_token=.+&wrap_access_token_expires_in=\d+$/);

    const logged = host.logLines.join('\n');
    for (const key of [demo.mixedReality.accountKey, demo.speech.key, demo.isvFace.key, demo.wrap.key])
      expect(logged).not.toContain(key);
  });
});
