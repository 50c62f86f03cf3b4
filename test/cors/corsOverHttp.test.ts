import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError, loadConfig } from '../../shared/config.js';
import { flowCatalogue, flowNames, type FlowName } from '../../shared/flowCatalogue.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';

/**
 * CORS as a browser meets it, over HTTP through the local host (docs/cors.md): preflights of every function,
 * the headers of actual answers, other origins, the default (nothing allowed) and `*`.
 */

const ALLOWED = 'https://app.contoso.example';
const OTHER = 'https://evil.example';
let credentials: TestCredentials;
let host: TestHost;

beforeAll(async () => {
  credentials = await createTestCredentials();
  host = await startTestHost({
    env: {
      STS_LOCAL_STORE_PATH: credentials.storePath,
      STS_CORS_ALLOWED_ORIGINS: `${ALLOWED}, http://127.0.0.1:5173/`,
      STS_CORS_MAX_AGE_SECONDS: '900',
    },
  });
});
afterAll(async () => {
  await host.close();
  await credentials.remove();
});

/** A path that reaches each function (the Mixed Reality one with a real account id). */
function pathOf(flow: FlowName): string {
  const route = flowCatalogue[flow].route;
  return `/${route.replace('{accountId}', credentials.mixedReality.account.accountId)}`;
}

const accessControlHeaders = (headers: Record<string, string | string[] | undefined>): string[] =>
  Object.keys(headers).filter((name) => name.startsWith('access-control-'));

async function preflight(base: string, path: string, origin: string, method: string, requestHeaders?: string) {
  const response = await request(`${base}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': method,
      ...(requestHeaders ? { 'access-control-request-headers': requestHeaders } : {}),
    },
  });
  const body = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body };
}

const EXPECTED_REQUEST_HEADERS: Record<FlowName, string | undefined> = {
  mixedRealityToken: 'Authorization, Content-Type, X-MRC-CV, x-ms-client-request-id, x-ms-return-client-request-id',
  issueToken: 'Ocp-Apim-Subscription-Key, Authorization, Content-Type, x-ms-client-request-id',
  issueLimitedAccessToken: 'Ocp-Apim-Subscription-Key, Authorization, Content-Type, x-ms-client-request-id',
  wrapToken: 'Content-Type',
  openidConfiguration: undefined,
  jwks: undefined,
};

describe('CORS preflights', () => {
  it.each(flowNames)('%s: 204 for an allowed origin, with its methods, request headers and max age', async (flow) => {
    const method = flowCatalogue[flow].methods[0];
    const answer = await preflight(host.url, pathOf(flow), ALLOWED, method, 'authorization');
    expect(answer.status).toBe(204);
    expect(answer.body).toBe('');
    expect(answer.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(answer.headers['access-control-allow-methods']).toBe(flowCatalogue[flow].methods.join(', '));
    expect(answer.headers['access-control-allow-headers']).toBe(EXPECTED_REQUEST_HEADERS[flow]);
    expect(answer.headers['access-control-max-age']).toBe('900');
    expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
    expect(answer.headers.vary).toBe('Origin');
    expect(answer.headers['content-length']).toBeUndefined(); // a 204, framed as Kestrel frames it
  });

  it('accepts an origin configured with a trailing slash, compared as the browser serializes it', async () => {
    const answer = await preflight(host.url, '/sts/v1.0/issueToken', 'http://127.0.0.1:5173', 'POST');
    expect(answer.status).toBe(204);
    expect(answer.headers['access-control-allow-origin']).toBe('http://127.0.0.1:5173');
  });

  it.each([OTHER, 'null', `${ALLOWED}.evil.example`, 'http://app.contoso.example', ALLOWED.toUpperCase()])(
    'refuses the preflight of %s: empty 403 with no CORS header at all',
    async (origin) => {
      const answer = await preflight(host.url, '/sts/v1.0/issueToken', origin, 'POST', 'ocp-apim-subscription-key');
      expect(answer.status).toBe(403);
      expect(answer.body).toBe('');
      expect(accessControlHeaders(answer.headers)).toEqual([]);
      expect(answer.headers.vary).toBe('Origin');
    },
  );

  it("answers an OPTIONS that is no preflight with the host's empty 404, as before", async () => {
    const response = await request(`${host.url}/sts/v1.0/issueToken`, {
      method: 'OPTIONS',
      headers: { origin: ALLOWED },
    });
    expect(await response.body.text()).toBe('');
    expect(response.statusCode).toBe(404);
    expect(accessControlHeaders(response.headers)).toEqual([]);
    expect(response.headers['content-length']).toBe('0');
  });
});

describe('CORS on actual answers', () => {
  it('an allowed origin reads a token and the correlation headers; another origin gets no CORS header', async () => {
    const key = credentials.cognitive.speech.keys[0];
    const ok = await request(`${host.url}/sts/v1.0/issueToken`, {
      method: 'POST',
      headers: { origin: ALLOWED, 'ocp-apim-subscription-key': key },
    });
    await ok.body.dump();
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(ok.headers['access-control-expose-headers']).toBe(
      'MS-CV, apim-request-id, request-id, x-ms-request-id, WWW-Authenticate, Retry-After',
    );
    expect(ok.headers.vary).toBe('Origin');
    expect(ok.headers['apim-request-id']).toBeDefined();

    const other = await request(`${host.url}/sts/v1.0/issueToken`, {
      method: 'POST',
      headers: { origin: OTHER, 'ocp-apim-subscription-key': key },
    });
    await other.body.dump();
    expect(other.statusCode).toBe(200); // CORS is the browser's rule: a non-browser client is not refused by origin
    expect(accessControlHeaders(other.headers)).toEqual([]);
    expect(other.headers.vary).toBe('Origin');
  });

  it('errors carry the CORS headers too, so a page can read the 401', async () => {
    const refused = await request(`${host.url}/sts/v1.0/issueToken`, {
      method: 'POST',
      headers: { origin: ALLOWED, 'ocp-apim-subscription-key': 'f'.repeat(32) },
    });
    expect(await refused.body.text()).toContain('invalid subscription key');
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['access-control-allow-origin']).toBe(ALLOWED);
  });

  it('the discovery documents are readable cross-origin and vary by origin', async () => {
    const response = await request(`${host.url}/.well-known/jwks.json`, { headers: { origin: ALLOWED } });
    await response.body.dump();
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(response.headers.vary).toBe('Origin');
  });
});

describe('CORS settings', () => {
  it('allows nothing by default: preflights are refused and answers carry no CORS header', async () => {
    const plain = await startTestHost({ env: { STS_LOCAL_STORE_PATH: credentials.storePath } });
    try {
      const answer = await preflight(plain.url, '/.well-known/openid-configuration', ALLOWED, 'GET');
      expect(answer.status).toBe(403);
      expect(accessControlHeaders(answer.headers)).toEqual([]);
      const document = await request(`${plain.url}/.well-known/openid-configuration`, { headers: { origin: ALLOWED } });
      await document.body.dump();
      expect(accessControlHeaders(document.headers)).toEqual([]);
      expect(document.headers.vary).toBeUndefined();
    } finally {
      await plain.close();
    }
  });

  it('"*" allows every origin with Access-Control-Allow-Origin: * and never with credentials', async () => {
    const open = await startTestHost({
      env: { STS_LOCAL_STORE_PATH: credentials.storePath, STS_CORS_ALLOWED_ORIGINS: '*' },
    });
    try {
      const answer = await preflight(open.url, '/WRAPv0.9/', OTHER, 'POST', 'content-type');
      expect(answer.status).toBe(204);
      expect(answer.headers['access-control-allow-origin']).toBe('*');
      expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
    } finally {
      await open.close();
    }
  });

  it.each([
    ['*, https://a.example', '"*" allows every origin and must stand alone'],
    ['https://a.example/path', '"https://a.example/path" is not an origin'],
    ['https://*.contoso.com', '"https://*.contoso.com" is not an origin'],
    ['ftp://a.example', '"ftp://a.example" is not an origin'],
    ['a.example', '"a.example" is not an origin'],
    ['https://a.example?x=1', '"https://a.example?x=1" is not an origin'],
  ])('refuses STS_CORS_ALLOWED_ORIGINS=%s at start', (value, problem) => {
    let error: unknown;
    try {
      loadConfig({ STS_LEDGER_MODE: 'off', STS_CORS_ALLOWED_ORIGINS: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(String((error as Error).message)).toContain(problem);
  });
});
