import { randomUUID } from 'node:crypto';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowPrincipal } from '../../tools/sts/credentials/principalProvisioning.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';
import { startOpenIdIssuer, type OpenIdIssuer } from '../support/openIdIssuer.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';
import { browserMessages, launchChromium } from './chromium.js';
import { startPageOrigin, type PageOrigin } from './pageOrigin.js';

/**
 * Pages in a real headless Chromium calling the STS on another loopback origin with `fetch` (docs/web-pages.md):
 * a token from every flow with a key, from the three JWT flows with an Entra token, a 401 the
 * page can read, and a page on an origin that is not allowed refused by the browser itself.
 */

const AUDIENCE = 'api://sts-browser-test';
const USER_OBJECT_ID = randomUUID();
const STRANGER_OBJECT_ID = randomUUID();
const TARGET =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/app-face';

let issuer: OpenIdIssuer;
let credentials: TestCredentials;
let allowedPage: PageOrigin;
let otherPage: PageOrigin;
let sts: TestHost;
let browser: Browser;

beforeAll(async () => {
  issuer = await startOpenIdIssuer();
  credentials = await createTestCredentials();
  const signIn = (user: string): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    const oid = user === 'stranger' ? STRANGER_OBJECT_ID : USER_OBJECT_ID;
    return issuer.sign({
      iss: issuer.authority,
      aud: AUDIENCE,
      tid: issuer.tenantId,
      oid,
      iat: now,
      nbf: now,
      exp: now + 3_600,
    });
  };
  allowedPage = await startPageOrigin(signIn);
  otherPage = await startPageOrigin(signIn);
  const user = { tenantId: issuer.tenantId, objectId: USER_OBJECT_ID };
  await allowPrincipal(credentials.store, credentials.mixedReality.account.accountId, user);
  await allowPrincipal(credentials.store, { cognitiveResource: credentials.cognitive.speech.name }, user);
  await allowPrincipal(credentials.store, { cognitiveResource: credentials.cognitive.isvFace.name }, user);
  sts = await startTestHost({
    env: {
      STS_LOCAL_STORE_PATH: credentials.storePath,
      STS_CORS_ALLOWED_ORIGINS: allowedPage.origin,
      STS_ENTRA_AUTHORITY: issuer.authority,
      STS_ENTRA_AUDIENCE: AUDIENCE,
    },
  });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await sts?.close();
  await allowedPage?.close();
  await otherPage?.close();
  await credentials?.remove();
  await issuer?.close();
});

interface FetchInit {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** Sent as `application/x-www-form-urlencoded` (a simple request: no preflight). */
  readonly form?: Record<string, string>;
}

/** What the page's script sees: the status, the headers it may read and the body; or the error fetch threw. */
type PageResult = { status: number; headers: Record<string, string>; body: string } | { error: string };

async function openPage(origin: PageOrigin): Promise<{ page: Page; messages: string[] }> {
  const page = await browser.newPage();
  const messages = browserMessages(page);
  await page.goto(`${origin.origin}/`);
  return { page, messages };
}

/** Runs `fetch` in the page, as a page's script would. */
function pageFetch(page: Page, url: string, init: FetchInit = {}): Promise<PageResult> {
  return page.evaluate(
    async (target: string, options: FetchInit): Promise<PageResult> => {
      try {
        const response = await fetch(target, {
          method: options.method ?? 'GET',
          ...(options.headers ? { headers: options.headers } : {}),
          ...(options.form
            ? { body: new URLSearchParams(options.form) }
            : options.body !== undefined
              ? { body: options.body }
              : {}),
        });
        const headers: Record<string, string> = {};
        response.headers.forEach((value, name) => {
          headers[name] = value;
        });
        return { status: response.status, headers, body: await response.text() };
      } catch (error) {
        return { error: String(error) };
      }
    },
    url,
    init,
  );
}

/** The page signs in (its origin hands it the user's Entra access token), as a page using MSAL would. */
function signIn(page: Page, user = 'user'): Promise<string> {
  return page.evaluate(async (who: string) => {
    const response = await fetch(`/signin?as=${who}`);
    return ((await response.json()) as { accessToken: string }).accessToken;
  }, user);
}

const claimsOf = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

function ok(result: PageResult): { status: number; headers: Record<string, string>; body: string } {
  if ('error' in result) throw new Error(`the page's fetch failed: ${result.error}`);
  return result;
}

describe('a page on an allowed origin, with keys', () => {
  it('gets a Mixed Reality token (Authorization header, preflighted) and reads MS-CV', async () => {
    const { page } = await openPage(allowedPage);
    const { accountId, keys } = credentials.mixedReality.account;
    const answer = ok(
      await pageFetch(page, `${sts.url}/accounts/${accountId}/token`, {
        headers: { Authorization: `Bearer ${accountId}:${keys[0]}` },
      }),
    );
    expect(answer.status).toBe(200);
    expect(claimsOf((JSON.parse(answer.body) as { AccessToken: string }).AccessToken)).toMatchObject({
      aid: accountId,
    });
    expect(answer.headers['ms-cv']).toMatch(/\.0$/);
    await page.close();
  });

  it('gets an issueToken token with the key in the header and with the key in the query', async () => {
    const { page } = await openPage(allowedPage);
    const key = credentials.cognitive.speech.keys[0];
    const inHeader = ok(
      await pageFetch(page, `${sts.url}/sts/v1.0/issueToken`, {
        method: 'POST',
        headers: { 'Ocp-Apim-Subscription-Key': key },
      }),
    );
    expect(inHeader.status).toBe(200);
    expect(claimsOf(inHeader.body)).toMatchObject({ region: 'eastus' });
    expect(inHeader.headers['apim-request-id']).toBeDefined();
    const inQuery = ok(
      await pageFetch(page, `${sts.url}/sts/v1.0/issueToken?Subscription-Key=${key}`, { method: 'POST' }),
    );
    expect(inQuery.status).toBe(200);
    expect(claimsOf(inQuery.body)).toMatchObject({ region: 'eastus' });
    await page.close();
  });

  it('gets a limited access token (JSON body, preflighted)', async () => {
    const { page } = await openPage(allowedPage);
    const answer = ok(
      await pageFetch(page, `${sts.url}/sts/v1.0/issueLimitedAccessToken?expiredTime=600`, {
        method: 'POST',
        headers: {
          'Ocp-Apim-Subscription-Key': credentials.cognitive.isvFace.keys[0],
          'Content-Type': 'application/json',
        },
        body: JSON.stringify({ targetAzureResourceId: TARGET, featureFlags: ['Face.Identification'] }),
      }),
    );
    expect(answer.status).toBe(200);
    expect(claimsOf(answer.body)).toMatchObject({
      'target-azure-resource-id': TARGET,
      'feature-flags': ['Face.Identification'],
    });
    await page.close();
  });

  it('gets a WRAP token (form body) and reads request-id', async () => {
    const { page } = await openPage(allowedPage);
    const owner = credentials.wrap.owner;
    const answer = ok(
      await pageFetch(page, `${sts.url}/WRAPv0.9/`, {
        method: 'POST',
        form: {
          wrap_name: owner.name,
          wrap_password: owner.keys[0],
          wrap_scope: 'http://contoso.servicebus.windows.net/',
        },
      }),
    );
    expect(answer.status).toBe(200);
    expect(answer.body).toMatch(/^wrap_access_token=.+&wrap_access_token_expires_in=\d+$/);
    expect(answer.headers['request-id']).toBeDefined();
    await page.close();
  });

  it('reads the discovery document and the JWKS', async () => {
    const { page } = await openPage(allowedPage);
    const discovery = ok(await pageFetch(page, `${sts.url}/.well-known/openid-configuration`));
    expect(discovery.status).toBe(200);
    const jwksUri = (JSON.parse(discovery.body) as { jwks_uri: string }).jwks_uri;
    expect(jwksUri).toMatch(/\/\.well-known\/jwks\.json$/);
    const jwks = ok(await pageFetch(page, `${sts.url}/.well-known/jwks.json`));
    expect((JSON.parse(jwks.body) as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
    await page.close();
  });
});

describe('a page signed in with Microsoft Entra', () => {
  it('gets an issueToken token and a Mixed Reality token with its Entra token, naming the user', async () => {
    const { page } = await openPage(allowedPage);
    const entraToken = await signIn(page);
    const cognitive = ok(
      await pageFetch(page, `${sts.url}/sts/v1.0/issueToken?resource=${credentials.cognitive.speech.name}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${entraToken}` },
      }),
    );
    expect(cognitive.status).toBe(200);
    expect(claimsOf(cognitive.body)).toMatchObject({ region: 'eastus', tid: issuer.tenantId, oid: USER_OBJECT_ID });

    const { accountId } = credentials.mixedReality.account;
    const mixedReality = ok(
      await pageFetch(page, `${sts.url}/accounts/${accountId}/token`, {
        headers: { Authorization: `Bearer ${entraToken}` },
      }),
    );
    expect(mixedReality.status).toBe(200);
    expect(claimsOf((JSON.parse(mixedReality.body) as { AccessToken: string }).AccessToken)).toMatchObject({
      aid: accountId,
      oid: USER_OBJECT_ID,
    });
    await page.close();
  });

  it('gets a limited access token with its Entra token, scoped and naming the user', async () => {
    const { page } = await openPage(allowedPage);
    const entraToken = await signIn(page);
    const resource = credentials.cognitive.isvFace.name;
    const answer = ok(
      await pageFetch(page, `${sts.url}/sts/v1.0/issueLimitedAccessToken?expiredTime=600&resource=${resource}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${entraToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ targetAzureResourceId: TARGET, featureFlags: ['Face.Identification'] }),
      }),
    );
    expect(answer.status).toBe(200);
    expect(claimsOf(answer.body)).toMatchObject({
      'target-azure-resource-id': TARGET,
      'feature-flags': ['Face.Identification'],
      tid: issuer.tenantId,
      oid: USER_OBJECT_ID,
    });
    await page.close();
  });

  it('a principal that is not allowed gets a 401 the page can read', async () => {
    const { page } = await openPage(allowedPage);
    const entraToken = await signIn(page, 'stranger');
    const cognitive = ok(
      await pageFetch(page, `${sts.url}/sts/v1.0/issueToken?resource=${credentials.cognitive.speech.name}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${entraToken}` },
      }),
    );
    expect(cognitive.status).toBe(401);
    expect(JSON.parse(cognitive.body)).toEqual({
      error: { code: '401', message: 'The caller is not allowed to obtain tokens for this resource.' },
    });

    const { accountId } = credentials.mixedReality.account;
    const mixedReality = ok(
      await pageFetch(page, `${sts.url}/accounts/${accountId}/token`, {
        headers: { Authorization: `Bearer ${entraToken}` },
      }),
    );
    expect(mixedReality.status).toBe(401);
    expect(mixedReality.headers['www-authenticate']).toBe(
      'Invalid token: The caller is not allowed to obtain tokens for this account.',
    );
    await page.close();
  });
});

describe('a page on an origin that is not allowed', () => {
  it("is refused by the browser: a preflighted call never happens, and fetch fails with the browser's CORS error", async () => {
    const { page, messages } = await openPage(otherPage);
    const result = await pageFetch(page, `${sts.url}/sts/v1.0/issueToken`, {
      method: 'POST',
      headers: { 'Ocp-Apim-Subscription-Key': credentials.cognitive.speech.keys[0] },
    });
    expect(result).toEqual({ error: 'TypeError: Failed to fetch' });
    await expect
      .poll(() => messages.join('\n'))
      .toContain(
        `from origin '${otherPage.origin}' has been blocked by CORS policy: Response to preflight request doesn't pass access control check`,
      );
    await page.close();
  });

  it('cannot read a simple GET either (no Access-Control-Allow-Origin in the answer)', async () => {
    const { page, messages } = await openPage(otherPage);
    expect(await pageFetch(page, `${sts.url}/.well-known/jwks.json`)).toEqual({ error: 'TypeError: Failed to fetch' });
    await expect
      .poll(() => messages.join('\n'))
      .toContain("No 'Access-Control-Allow-Origin' header is present on the requested resource");
    await page.close();
  });
});
