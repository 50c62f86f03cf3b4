import { connect } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStsJwtVerifier, verifySwt, type StsTokenKind } from '../../shared/verify/index.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';
import {
  expectSecurityHeaders,
  FROZEN_NOW,
  FROZEN_SECONDS,
  startFlowHarness,
  TEST_ENV,
  type FlowHarness,
} from './flowHarness.js';

/**
 * The four flows over real HTTP through the local host: the seeds' own requests (curl lines, raw HTTP
 * examples replayed byte for byte, the Python LAT sample), path casings and trailing slashes, and malformed
 * requests that must end in a 4xx, never a 5xx.
 */

let harness: FlowHarness;
let host: TestHost;
beforeAll(async () => {
  harness = await startFlowHarness();
  host = await startTestHost({ services: harness.services });
});
afterAll(async () => {
  await host.close();
  await harness.close();
});

interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

async function send(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
): Promise<HttpAnswer> {
  const response = await request(`${host.url}${path}`, {
    method: method as 'GET',
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.body.text();
  const out = new Headers();
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) out.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return { status: response.statusCode, headers: out, text };
}

/** Writes raw bytes to the host and returns the raw response, parsed minimally. */
function sendRaw(raw: string): Promise<HttpAnswer> {
  const { port } = new URL(host.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(5_000, () => socket.destroy(new Error('raw request timed out')));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      let text = Buffer.concat(chunks).toString('latin1');
      for (;;) {
        const end = text.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = text.slice(0, end).split('\r\n');
        const status = Number(head[0]?.split(' ')[1]);
        if (status === 100) {
          // An interim "100 Continue" (the seed sends Expect: 100-continue); the final response follows.
          text = text.slice(end + 4);
          chunks.splice(0, chunks.length, Buffer.from(text, 'latin1'));
          continue;
        }
        const headers = new Headers();
        for (const line of head.slice(1)) {
          const colon = line.indexOf(':');
          headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
        }
        const length = Number(headers.get('content-length'));
        const body = text.slice(end + 4);
        if (body.length < length) return;
        socket.end();
        resolve({ status, headers, text: body.slice(0, length) });
        return;
      }
    });
    socket.on('error', reject);
    socket.write(raw);
  });
}

function expectContentLength(answer: HttpAnswer): void {
  expect(answer.headers.get('transfer-encoding')).toBeNull();
  expect(Number(answer.headers.get('content-length'))).toBe(Buffer.byteLength(answer.text, 'utf8'));
}

/** `body` framed as `Transfer-Encoding: chunked` in pieces of `size` bytes, as streaming clients and gateways send it. */
function chunked(body: string, size: number): string {
  let framed = '';
  for (let i = 0; i < body.length; i += size) {
    const piece = body.slice(i, i + size);
    framed += `${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`;
  }
  return `${framed}0\r\n\r\n`;
}

function jwtVerifier(audience: string, tokenKind: StsTokenKind = 'access') {
  return createStsJwtVerifier({
    issuer: TEST_ENV.STS_ISSUER,
    audience,
    tokenKind,
    jwksUrl: `${host.url}/.well-known/jwks.json`,
    now: () => FROZEN_NOW,
  });
}

describe('Mixed Reality STS over HTTP', () => {
  it('serves /accounts/ (docs) and /Accounts/ (SDKs), with and without api-version and a trailing slash', async () => {
    const { accountId, keys } = harness.credentials.mixedReality.account;
    const verifier = jwtVerifier(TEST_ENV.STS_AUDIENCE_MIXED_REALITY);
    for (const path of [
      `/accounts/${accountId}/token`,
      `/Accounts/${accountId}/token?api-version=2019-02-28-preview`,
      `/Accounts/${accountId.toUpperCase()}/token/`,
      `/ACCOUNTS/${accountId}/TOKEN`,
    ]) {
      const answer = await send('GET', path, {
        Authorization: `Bearer ${accountId}:${keys[0]}`,
        'Content-Type': 'application/json',
      });
      expect(answer.status, path).toBe(200);
      expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(answer.headers.get('ms-cv')).toMatch(/^[A-Za-z0-9+/]{22}\.0$/);
      expectSecurityHeaders(answer.headers);
      expectContentLength(answer);
      const body = JSON.parse(answer.text) as { AccessToken: string };
      expect(Object.keys(body)).toEqual(['AccessToken']);
      expect(answer.text).toBe(`{"AccessToken":"${body.AccessToken}"}`);
      const claims = await verifier.verify(body.AccessToken);
      expect(claims).toMatchObject({ aid: accountId, exp: FROZEN_SECONDS + 86_400 });
    }
  });

  it('answers refusals with MS-CV, WWW-Authenticate and the security headers over the wire', async () => {
    const { accountId } = harness.credentials.mixedReality.account;
    const answer = await send('GET', `/accounts/${accountId}/token`);
    expect({
      status: answer.status,
      wwwAuthenticate: answer.headers.get('www-authenticate'),
      body: answer.text,
    }).toEqual({
      status: 401,
      wwwAuthenticate: 'Invalid token: The Authorization header is missing.',
      body: '',
    });
    expect(answer.headers.get('ms-cv')).toMatch(/^[A-Za-z0-9+/]{22}\.0$/);
    expect(answer.headers.get('content-type')).toBeNull();
    expect(answer.headers.get('content-length')).toBe('0');
    expectSecurityHeaders(answer.headers);
  });

  it('answers malformed requests with a 4xx, never a 5xx', async () => {
    const { accountId, keys } = harness.credentials.mixedReality.account;
    const authorization = `Bearer ${accountId}:${keys[0]}`;
    const attempts: [string, () => Promise<HttpAnswer>][] = [
      ['POST', () => send('POST', `/accounts/${accountId}/token`, { Authorization: authorization })],
      ['DELETE', () => send('DELETE', `/accounts/${accountId}/token`, { Authorization: authorization })],
      ['non-UTF-8 path', () => send('GET', '/accounts/%ff%fe/token', { Authorization: authorization })],
      [
        'duplicated Authorization',
        () =>
          sendRaw(
            `GET /accounts/${accountId}/token HTTP/1.1\r\nHost: x\r\nAuthorization: ${authorization}\r\nAuthorization: ${authorization}\r\nConnection: close\r\n\r\n`,
          ),
      ],
      [
        'oversized Authorization',
        () =>
          send('GET', `/accounts/${accountId}/token`, { Authorization: `Bearer ${accountId}:${'k'.repeat(20_000)}` }),
      ],
      [
        'non-ASCII Authorization bytes',
        () =>
          sendRaw(
            `GET /accounts/${accountId}/token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${accountId}:\u00e9\u00ff\r\nConnection: close\r\n\r\n`,
          ),
      ],
      [
        'a declared 20 kB body',
        () =>
          send(
            'GET',
            `/accounts/${accountId}/token`,
            { Authorization: authorization, 'Content-Length': '20000' },
            Buffer.alloc(20_000, 0x41),
          ),
      ],
    ];
    for (const [label, attempt] of attempts) {
      const answer = await attempt();
      expect(answer.status, label).toBeGreaterThanOrEqual(400);
      expect(answer.status, label).toBeLessThan(500);
    }
  });
});

describe('Cognitive Services issueToken over HTTP', () => {
  const speechKey = () => harness.credentials.cognitive.speech.keys[0];

  it('replays the seed raw HTTP sample byte for byte', async () => {
    const answer = await sendRaw(
      `POST /sts/v1.0/issueToken HTTP/1.1\r\nOcp-Apim-Subscription-Key: ${speechKey()}\r\nHost: eastus.api.cognitive.microsoft.com\r\nContent-type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    );
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/jwt; charset=us-ascii');
    expectSecurityHeaders(answer.headers);
    expectContentLength(answer);
    const claims = await jwtVerifier('urn:ms.speechservices.eastus').verify(answer.text);
    expect(claims).toMatchObject({ region: 'eastus', exp: FROZEN_SECONDS + 600 });
  });

  it('serves the seed curl line and every path casing clients use', async () => {
    for (const path of [
      '/sts/v1.0/issueToken',
      '/sts/v1.0/issuetoken',
      '/STS/V1.0/ISSUETOKEN',
      '/sts/v1.0/issueToken/',
    ]) {
      const answer = await send('POST', path, {
        'Content-type': 'application/x-www-form-urlencoded',
        'Content-Length': '0',
        'Ocp-Apim-Subscription-Key': speechKey(),
      });
      expect(answer.status, path).toBe(200);
      expect(answer.text).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      expectContentLength(answer);
    }
    const viaQuery = await send('POST', `/sts/v1.0/issueToken?subscription-key=${speechKey()}`);
    expect(viaQuery.status).toBe(200);
  });

  it('answers a bad key with the documented 401 body and Content-Length', async () => {
    const answer = await send('POST', '/sts/v1.0/issueToken', {
      'Ocp-Apim-Subscription-Key': 'YOUR_SUBSCRIPTION_KEY',
      'Content-Length': '0',
    });
    expect({ status: answer.status, body: answer.text }).toEqual({
      status: 401,
      body: '{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}',
    });
    expectSecurityHeaders(answer.headers);
    expectContentLength(answer);
  });

  it('answers malformed requests with a 4xx, never a 5xx', async () => {
    const key = speechKey();
    const attempts: [string, () => Promise<HttpAnswer>][] = [
      ['GET', () => send('GET', '/sts/v1.0/issueToken', { 'Ocp-Apim-Subscription-Key': key })],
      ['PUT', () => send('PUT', '/sts/v1.0/issueToken', { 'Ocp-Apim-Subscription-Key': key }, '')],
      [
        'duplicated key header',
        () =>
          sendRaw(
            `POST /sts/v1.0/issueToken HTTP/1.1\r\nHost: x\r\nOcp-Apim-Subscription-Key: ${key}\r\nOcp-Apim-Subscription-Key: ${key}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
          ),
      ],
      [
        'non-ASCII key bytes',
        () =>
          sendRaw(
            `POST /sts/v1.0/issueToken HTTP/1.1\r\nHost: x\r\nOcp-Apim-Subscription-Key: \u00e9\u00ff\u00fe\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
          ),
      ],
      [
        'oversized key header',
        () => send('POST', '/sts/v1.0/issueToken', { 'Ocp-Apim-Subscription-Key': 'a'.repeat(20_000) }),
      ],
      [
        'a 20 kB body',
        () => send('POST', '/sts/v1.0/issueToken', { 'Ocp-Apim-Subscription-Key': key }, Buffer.alloc(20_000, 0x41)),
      ],
      [
        'a 2 MB body',
        () => send('POST', '/sts/v1.0/issueToken', { 'Ocp-Apim-Subscription-Key': key }, Buffer.alloc(2_000_000, 0x41)),
      ],
      ['a non-UTF-8 query key', () => send('POST', '/sts/v1.0/issueToken?Subscription-Key=%ff%fe')],
    ];
    for (const [label, attempt] of attempts) {
      const answer = await attempt();
      expect(answer.status, label).toBeGreaterThanOrEqual(400);
      expect(answer.status, label).toBeLessThan(500);
    }
  });
});

describe('Face issueLimitedAccessToken over HTTP', () => {
  const target =
    '/subscriptions/f55b33ec-371d-415c-89d3-9e3fd27c7dbd/resourceGroups/defaultresourcegroup/providers/Microsoft.CognitiveServices/accounts/target-face-account';
  const headers = () => ({
    'Content-Type': 'application/json',
    'Ocp-Apim-Subscription-Key': harness.credentials.cognitive.isvFace.keys[0],
  });

  it("replays the seed's Python sample, which posts the literal text {body}: 400 BadArgument, never a 500", async () => {
    const answer = await sendRaw(
      `POST /sts/v1.0/issueLimitedAccessToken?expiredTime=3600 HTTP/1.1\r\nHost: virginia.api.cognitive.microsoft.us\r\nAccept-Encoding: identity\r\nContent-Length: 6\r\nContent-Type: application/json\r\nOcp-Apim-Subscription-Key: ${harness.credentials.cognitive.isvFace.keys[0]}\r\nConnection: close\r\n\r\n{body}`,
    );
    expect({ status: answer.status, contentType: answer.headers.get('content-type'), body: answer.text }).toEqual({
      status: 400,
      contentType: 'application/json; charset=utf-8',
      body: '{"error":{"code":"BadArgument","message":"Request body is invalid."}}',
    });
    expectSecurityHeaders(answer.headers);
    expectContentLength(answer);
  });

  it("issues for the API reference's example body, on both path casings", async () => {
    const body = JSON.stringify({ targetAzureResourceId: target, featureFlags: ['Face.Identification'] });
    for (const path of [
      '/sts/v1.0/issueLimitedAccessToken?expiredTime=3600',
      '/sts/v1.0/issuelimitedaccesstoken/?expiredTime=7200',
    ]) {
      const answer = await send('POST', path, headers(), body);
      expect(answer.status, path).toBe(200);
      expect(answer.headers.get('content-type')).toBe('application/jwt; charset=us-ascii');
      expectContentLength(answer);
      const claims = await jwtVerifier('urn:ms.speechservices.westus', 'limitedAccess').verify(answer.text);
      expect(claims).toMatchObject({
        'target-azure-resource-id': target,
        'feature-flags': ['Face.Identification'],
        exp: FROZEN_SECONDS + (path.includes('7200') ? 7200 : 3600),
      });
    }
  });

  it('issues for a chunked body (no Content-Length) exactly as for a sized one, and refuses an oversized one with 413', async () => {
    const body = JSON.stringify({ targetAzureResourceId: target, featureFlags: ['Face.Identification'] });
    const head = `POST /sts/v1.0/issueLimitedAccessToken?expiredTime=3600 HTTP/1.1\r\nHost: westus.api.cognitive.microsoft.com\r\nContent-Type: application/json\r\nOcp-Apim-Subscription-Key: ${harness.credentials.cognitive.isvFace.keys[0]}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
    const answer = await sendRaw(head + chunked(body, 7));
    expect(answer.status, answer.text).toBe(200);
    expectContentLength(answer);
    expect(await jwtVerifier('urn:ms.speechservices.westus', 'limitedAccess').verify(answer.text)).toMatchObject({
      'target-azure-resource-id': target,
      exp: FROZEN_SECONDS + 3600,
    });

    const tooLarge = await sendRaw(head + chunked(' '.repeat(20_000) + body, 4_096));
    expect({ status: tooLarge.status, body: tooLarge.text }).toEqual({
      status: 413,
      body: '{"error":{"code":"413","message":"Request body exceeds 16384 bytes."}}',
    });
  });

  it('refuses duplicated expiredTime parameters seen on the wire', async () => {
    const body = JSON.stringify({ targetAzureResourceId: target, featureFlags: ['Face.Identification'] });
    const answer = await send(
      'POST',
      '/sts/v1.0/issueLimitedAccessToken?expiredTime=60&expiredTime=86400',
      headers(),
      body,
    );
    expect({ status: answer.status, body: answer.text }).toEqual({
      status: 400,
      body: '{"error":{"code":"BadArgument","message":"expiredTime must be given at most once."}}',
    });
  });

  it('answers malformed requests with a 4xx, never a 5xx', async () => {
    const attempts: [string, () => Promise<HttpAnswer>][] = [
      ['GET', () => send('GET', '/sts/v1.0/issueLimitedAccessToken', headers())],
      [
        'non-UTF-8 body',
        () =>
          send(
            'POST',
            '/sts/v1.0/issueLimitedAccessToken',
            headers(),
            Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
          ),
      ],
      [
        'deeply nested JSON',
        () => send('POST', '/sts/v1.0/issueLimitedAccessToken', headers(), `${'['.repeat(5_000)}${']'.repeat(5_000)}`),
      ],
      ['a 20 kB body', () => send('POST', '/sts/v1.0/issueLimitedAccessToken', headers(), Buffer.alloc(20_000, 0x20))],
      [
        'a 2 MB body',
        () => send('POST', '/sts/v1.0/issueLimitedAccessToken', headers(), Buffer.alloc(2_000_000, 0x20)),
      ],
      [
        'expiredTime as an exponent',
        () => send('POST', '/sts/v1.0/issueLimitedAccessToken?expiredTime=1e3', headers(), '{}'),
      ],
    ];
    for (const [label, attempt] of attempts) {
      const answer = await attempt();
      expect(answer.status, label).toBeGreaterThanOrEqual(400);
      expect(answer.status, label).toBeLessThan(500);
    }
  });
});

describe('ACS WRAP v0.9 over HTTP', () => {
  const ownerBody = (scope = 'http%3a%2f%2fcontoso.servicebus.windows.net%2f') => {
    const password = harness.credentials.wrap.owner.keys[0].replace(
      /[+/=]/g,
      (c) => `%${c.charCodeAt(0).toString(16)}`,
    );
    return `wrap_name=owner&wrap_password=${password}&wrap_scope=${scope}`;
  };

  it('replays the seed raw request (with Expect: 100-continue) and returns exactly two parameters', async () => {
    const body = ownerBody();
    const answer = await sendRaw(
      `POST /WRAPv0.9/ HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nHost: contoso-sb.accesscontrol.windows.net\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: Keep-Alive\r\n\r\n${body}`,
    );
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/x-www-form-urlencoded; charset=us-ascii');
    expect(answer.headers.get('request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.headers.get('expires')).toBe('-1');
    expect(answer.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    expectSecurityHeaders(answer.headers);
    expectContentLength(answer);
    expect(answer.text).toMatch(/^wrap_access_token=[A-Za-z0-9%._!*()-]+&wrap_access_token_expires_in=10799$/);
    const token = new URLSearchParams(answer.text).get('wrap_access_token') as string;
    const claims = verifySwt(token, harness.credentials.wrap.namespace.signingKey, {
      now: FROZEN_NOW,
      audience: 'http://contoso.servicebus.windows.net/',
      issuer: TEST_ENV.STS_WRAP_ISSUER,
    });
    expect(claims.map(([name]) => name)).toEqual([
      'net.windows.servicebus.action',
      'http://schemas.microsoft.com/accesscontrolservice/2010/07/claims/identityprovider',
      'Audience',
      'ExpiresOn',
      'Issuer',
    ]);
  });

  it('issues for a chunked form body (no Content-Length) exactly as for a sized one', async () => {
    const answer = await sendRaw(
      `POST /WRAPv0.9/ HTTP/1.1\r\nHost: contoso-sb.accesscontrol.windows.net\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked(ownerBody(), 5)}`,
    );
    expect(answer.status, answer.text).toBe(200);
    expectContentLength(answer);
    expect(answer.text).toMatch(/^wrap_access_token=[A-Za-z0-9%._!*()-]+&wrap_access_token_expires_in=10799$/);
  });

  it('serves /WRAPv0.9 and /WRAPv0.9/ in any casing, with no Content-Type (legacy Python)', async () => {
    for (const path of ['/WRAPv0.9', '/WRAPv0.9/', '/wrapv0.9', '/WRAPV0.9/']) {
      const answer = await send('POST', path, {}, ownerBody());
      expect(answer.status, path).toBe(200);
      expect(answer.text.endsWith('&wrap_access_token_expires_in=10799')).toBe(true);
    }
  });

  it('bad credentials: 401, WWW-Authenticate: WRAP, the ACS error body', async () => {
    const answer = await send(
      'POST',
      '/WRAPv0.9/',
      { 'Content-Type': 'application/x-www-form-urlencoded' },
      'wrap_name=owner&wrap_password=wrong&wrap_scope=http%3a%2f%2fcontoso.servicebus.windows.net%2f',
    );
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toBe('WRAP');
    expect(answer.text).toBe(
      `Error:Code:401:SubCode:T0:Detail:ACS50012: Authentication failed. :TraceID:${answer.headers.get('request-id')}:TimeStamp:2026-03-01 09:30:00Z`,
    );
    expectSecurityHeaders(answer.headers);
    expectContentLength(answer);
  });

  it('answers malformed requests with a 4xx, never a 5xx', async () => {
    const attempts: [string, () => Promise<HttpAnswer>][] = [
      ['GET', () => send('GET', '/WRAPv0.9/')],
      ['no body', () => send('POST', '/WRAPv0.9')],
      ['missing wrap_scope', () => send('POST', '/WRAPv0.9', {}, 'wrap_name=owner&wrap_password=x')],
      ['duplicated field', () => send('POST', '/WRAPv0.9', {}, `${ownerBody()}&wrap_name=owner`)],
      ['non-UTF-8 escapes', () => send('POST', '/WRAPv0.9', {}, 'wrap_name=%ff&wrap_password=%fe&wrap_scope=x')],
      ['raw binary body', () => send('POST', '/WRAPv0.9', {}, Buffer.from([0x00, 0xff, 0x80, 0x3d, 0x26]))],
      ['a 20 kB body', () => send('POST', '/WRAPv0.9', {}, `${ownerBody()}&pad=${'x'.repeat(20_000)}`)],
      ['a 2 MB body', () => send('POST', '/WRAPv0.9', {}, Buffer.alloc(2_000_000, 0x61))],
    ];
    for (const [label, attempt] of attempts) {
      const answer = await attempt();
      expect(answer.status, label).toBeGreaterThanOrEqual(400);
      expect(answer.status, label).toBeLessThan(500);
    }
  });
});
