import { createHmac } from 'node:crypto';
import { parse as parseQueryString } from 'node:querystring';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { definition } from '../../functions/wrapToken.js';
import { verifySwt } from '../../shared/verify/index.js';
import {
  expectSecurityHeaders,
  FROZEN_NOW,
  FROZEN_SECONDS,
  startFlowHarness,
  TEST_ENV,
  type FlowHarness,
  type ObservedResponse,
} from './flowHarness.js';

let harness: FlowHarness;
beforeAll(async () => {
  harness = await startFlowHarness();
});
afterAll(() => harness.close());
beforeEach(() => {
  harness.ledgerRows.length = 0;
});

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NAMESPACE_ROOT = 'http://contoso.servicebus.windows.net/';
const IDENTITY_PROVIDER = 'http://schemas.microsoft.com/accesscontrolservice/2010/07/claims/identityprovider';
const LIFETIME = 10_800;

/** .NET `HttpUtility.UrlEncode`, written out independently of the code under test. */
function dotNetUrlEncode(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((byte) => {
      const char = String.fromCharCode(byte);
      if (/[A-Za-z0-9\-_.!*()]/.test(char)) return char;
      if (byte === 0x20) return '+';
      return `%${byte.toString(16).padStart(2, '0')}`;
    })
    .join('');
}

/** The whole response body the seed's example leads us to expect (docs/contracts/acs-wrap.md#response, #swt). */
function expectedBody(scope: string, rights: string): string {
  const unsigned = [
    ['net.windows.servicebus.action', rights],
    [IDENTITY_PROVIDER, TEST_ENV.STS_WRAP_ISSUER],
    ['Audience', scope],
    ['ExpiresOn', String(FROZEN_SECONDS + LIFETIME)],
    ['Issuer', TEST_ENV.STS_WRAP_ISSUER],
  ]
    .map(([name, value]) => `${dotNetUrlEncode(name as string)}=${dotNetUrlEncode(value as string)}`)
    .join('&');
  const key = Buffer.from(harness.credentials.wrap.namespace.signingKey, 'base64');
  const signature = createHmac('sha256', key).update(unsigned, 'ascii').digest('base64');
  const swt = `${unsigned}&HMACSHA256=${dotNetUrlEncode(signature)}`;
  return `wrap_access_token=${dotNetUrlEncode(swt)}&wrap_access_token_expires_in=${LIFETIME - 1}`;
}

function form(fields: Record<string, string>, encode: (text: string) => string = dotNetUrlEncode): string {
  return Object.entries(fields)
    .map(([name, value]) => `${name}=${encode(value)}`)
    .join('&');
}

function ownerForm(scope = NAMESPACE_ROOT, password = harness.credentials.wrap.owner.keys[0]): string {
  return form({ wrap_name: 'owner', wrap_password: password, wrap_scope: scope });
}

function post(
  body: string | Uint8Array | undefined,
  headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded' },
  path = '/WRAPv0.9/',
) {
  return harness.invoke(definition, { method: 'POST', path, headers, ...(body === undefined ? {} : { body }) });
}

function expectIssued(response: ObservedResponse, scope: string, rights = 'Listen,Manage,Send'): void {
  expect(response.status).toBe(200);
  expect(response.text).toBe(expectedBody(scope, rights));
  expect(response.headers.get('content-type')).toBe('application/x-www-form-urlencoded; charset=us-ascii');
  expect(response.headers.get('expires')).toBe('-1');
  expect(response.headers.get('request-id')).toMatch(GUID);
  expect(response.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
  expectSecurityHeaders(response.headers);
  expect(response.text).not.toMatch(/[\r\n]/);
}

/** The token as the Node SDK reads it (`querystring.parse`), verified with the verification module. */
function swtOf(response: ObservedResponse): string {
  const parsed = parseQueryString(response.text);
  expect(Object.keys(parsed)).toEqual(['wrap_access_token', 'wrap_access_token_expires_in']);
  return parsed.wrap_access_token as string;
}

function expectAcsError(response: ObservedResponse, status: number, detail: string): void {
  const requestId = response.headers.get('request-id');
  expect(requestId).toMatch(GUID);
  expect({
    status: response.status,
    wwwAuthenticate: response.headers.get('www-authenticate'),
    contentType: response.headers.get('content-type'),
    body: response.text,
  }).toEqual({
    status,
    wwwAuthenticate: status === 401 ? 'WRAP' : null,
    contentType: 'text/plain; charset=us-ascii',
    body: `Error:Code:${status}:SubCode:T0:Detail:${detail} :TraceID:${requestId}:TimeStamp:2026-03-01 09:30:00Z`,
  });
  expectSecurityHeaders(response.headers);
}

const AUTHENTICATION_FAILED = 'ACS50012: Authentication failed.';
const missing = (name: string) => `ACS50000: There was an error issuing a token. The ${name} parameter is missing.`;
const repeated = (name: string) => `ACS50000: There was an error issuing a token. The ${name} parameter is repeated.`;
const MALFORMED = 'ACS50000: There was an error issuing a token. The request body is not a valid form.';
const INVALID_SCOPE =
  'ACS50000: There was an error issuing a token. The wrap_scope parameter must be an absolute http(s) URI on a Service Bus namespace host, without percent-encoding, dot segments, path parameters or a fragment.';
const SCOPE_NOT_ALLOWED =
  'ACS50000: There was an error issuing a token. The issuer is not allowed tokens for this wrap_scope.';

describe('ACS OAuth WRAP v0.9: POST /WRAPv0.9 (docs/contracts/acs-wrap.md)', () => {
  describe('the seed request', () => {
    it('issues exactly the documented response: 200, two parameters, token first, headers of docs/contracts/acs-wrap.md#response', async () => {
      const response = await post(ownerForm(), {
        'Content-Type': 'application/x-www-form-urlencoded',
        Expect: '100-continue',
        Connection: 'Keep-Alive',
      });
      expectIssued(response, NAMESPACE_ROOT);

      const claims = verifySwt(swtOf(response), harness.credentials.wrap.namespace.signingKey, {
        now: FROZEN_NOW,
        audience: NAMESPACE_ROOT,
      });
      expect(claims).toEqual([
        ['net.windows.servicebus.action', 'Listen,Manage,Send'],
        [IDENTITY_PROVIDER, TEST_ENV.STS_WRAP_ISSUER],
        ['Audience', NAMESPACE_ROOT],
        ['ExpiresOn', String(FROZEN_SECONDS + LIFETIME)],
        ['Issuer', TEST_ENV.STS_WRAP_ISSUER],
      ]);
      expect(harness.ledgerRows).toEqual([
        expect.objectContaining({
          flow: 'wrapToken',
          outcome: 'issued',
          status: 200,
          credentialId: 'contoso/owner',
          keySlot: 1,
          scope: NAMESPACE_ROOT,
          expiresAt: new Date((FROZEN_SECONDS + LIFETIME) * 1000),
        }),
      ]);
    });

    it('answers byte for byte the SWT written out independently, token after token and scope after scope', async () => {
      for (const scope of [NAMESPACE_ROOT, `${NAMESPACE_ROOT}orders/eu-1`, NAMESPACE_ROOT]) {
        const response = await post(ownerForm(scope));
        expect(response.status).toBe(200);
        expect(response.text).toBe(expectedBody(scope, 'Listen,Manage,Send'));
      }
    });

    it('reads the token the way legacy Python does: between the first "=" and the last "&"', async () => {
      const response = await post(ownerForm());
      const text = response.text;
      const token = decodeURIComponent(text.slice(text.indexOf('=') + 1, text.lastIndexOf('&')));
      expect(verifySwt(token, harness.credentials.wrap.namespace.signingKey, { now: FROZEN_NOW })).toHaveLength(5);
      expect(/ExpiresOn=(\d+)&/.exec(token)?.[1]).toBe(String(FROZEN_SECONDS + LIFETIME));
    });
  });

  it('parses the body as a form whatever the Content-Type says, or without one', async () => {
    const contentTypes: Record<string, string>[] = [
      { 'Content-Type': 'application/atom+xml;type=entry;charset=utf-8' },
      {},
      { 'Content-Type': 'text/plain' },
    ];
    for (const headers of contentTypes) {
      expectIssued(await post(ownerForm(), headers), NAMESPACE_ROOT);
    }
  });

  it('decodes upper-case hex escapes (Node encodeURIComponent) and accepts a trailing CRLF', async () => {
    const body = form(
      { wrap_name: 'owner', wrap_password: harness.credentials.wrap.owner.keys[1], wrap_scope: NAMESPACE_ROOT },
      encodeURIComponent,
    );
    expectIssued(await post(`${body}\r\n`), NAMESPACE_ROOT);
    expect(harness.ledgerRows[0]?.keySlot).toBe(2);
  });

  it('echoes deep per-entity scopes, query included, as Audience', async () => {
    for (const scope of [
      'http://contoso.servicebus.windows.net/myqueue',
      'http://contoso.servicebus.windows.net/q/messages/head?timeout=60',
      'http://contoso.servicebus.windows.net/footopic/Subscriptions/9999967',
      'https://contoso.servicebus.windows.net/',
      'http://CONTOSO.servicebus.windows.net/',
    ]) {
      expectIssued(await post(ownerForm(scope)), scope);
    }
  });

  describe('scope prefixes match within the namespace at a path boundary', () => {
    const listenerForm = (scope: string) =>
      form({
        wrap_name: 'orders-listener',
        wrap_password: harness.credentials.wrap.listener.keys[0],
        wrap_scope: scope,
      });

    it("a prefix covers itself, its sub-paths and other casings, with only the issuer's rights", async () => {
      for (const scope of [
        'http://contoso.servicebus.windows.net/orders',
        'http://contoso.servicebus.windows.net/orders/',
        'http://contoso.servicebus.windows.net/orders/messages/head?timeout=60',
        'http://contoso.servicebus.windows.net/Orders',
        'http://contoso.servicebus.windows.net/orders?x=1',
      ]) {
        expectIssued(await post(listenerForm(scope)), scope, 'Listen');
      }
    });

    it('403 for a sibling that merely shares the prefix text, or the namespace root (another host is a 400)', async () => {
      for (const scope of [
        'http://contoso.servicebus.windows.net/orders2',
        'http://contoso.servicebus.windows.net/orders-archive/messages',
        'http://contoso.servicebus.windows.net/',
      ]) {
        expectAcsError(await post(listenerForm(scope)), 403, SCOPE_NOT_ALLOWED);
      }
      expect(harness.ledgerRows.every((row) => row.outcome === 'refused' && row.reason === 'scope_not_allowed')).toBe(
        true,
      );
    });
  });

  describe('401 with WWW-Authenticate: WRAP and the ACS error body', () => {
    const cases: [string, () => string, string][] = [
      [
        'a wrong password',
        () => ownerForm(NAMESPACE_ROOT, 'r8LuxCKD6DWY8auQcFql4M7euH2UuhcLcV1TaJTqNNE='),
        'wrong_key',
      ],
      [
        'an unknown issuer',
        () =>
          form({
            wrap_name: 'nobody',
            wrap_password: harness.credentials.wrap.owner.keys[0],
            wrap_scope: NAMESPACE_ROOT,
          }),
        'unknown_credential',
      ],
      [
        'an issuer name in another case',
        () =>
          form({
            wrap_name: 'Owner',
            wrap_password: harness.credentials.wrap.owner.keys[0],
            wrap_scope: NAMESPACE_ROOT,
          }),
        'unknown_credential',
      ],
      ['an unknown namespace', () => ownerForm('http://fabrikam.servicebus.windows.net/'), 'unknown_credential'],
      [
        'a host label that cannot be a namespace',
        () => ownerForm('http://-bad-.servicebus.windows.net/'),
        'unknown_credential',
      ],
      [
        'a disabled issuer',
        () =>
          form({
            wrap_name: 'retired',
            wrap_password: harness.credentials.wrap.disabled.keys[0],
            wrap_scope: NAMESPACE_ROOT,
          }),
        'credential_disabled',
      ],
    ];
    for (const [label, body, reason] of cases) {
      it(label, async () => {
        expectAcsError(await post(body()), 401, AUTHENTICATION_FAILED);
        expect(harness.ledgerRows).toEqual([
          expect.objectContaining({ flow: 'wrapToken', outcome: 'refused', status: 401, reason }),
        ]);
      });
    }
  });

  describe('400 for missing, repeated or malformed parameters', () => {
    it('each missing or empty required parameter', async () => {
      const full = {
        wrap_name: 'owner',
        wrap_password: harness.credentials.wrap.owner.keys[0],
        wrap_scope: NAMESPACE_ROOT,
      };
      for (const name of ['wrap_name', 'wrap_password', 'wrap_scope'] as const) {
        const without = Object.fromEntries(Object.entries(full).filter(([key]) => key !== name));
        expectAcsError(await post(form(without)), 400, missing(name));
        expectAcsError(await post(form({ ...full, [name]: '' })), 400, missing(name));
      }
      expectAcsError(await post(undefined), 400, missing('wrap_name'));
      expectAcsError(
        await post('{"wrap_name":"owner"}', { 'Content-Type': 'application/json' }),
        400,
        missing('wrap_name'),
      );
      expect(harness.ledgerRows).toEqual([]);
    });

    it('a repeated parameter, even with the same value', async () => {
      expectAcsError(
        await post(`${ownerForm()}&wrap_scope=${dotNetUrlEncode(NAMESPACE_ROOT)}`),
        400,
        repeated('wrap_scope'),
      );
      expectAcsError(await post(`wrap_name=owner&${ownerForm()}`), 400, repeated('wrap_name'));
    });

    it('a body that is not form-encoded ASCII/UTF-8', async () => {
      for (const body of [
        Buffer.from('wrap_name=owner&wrap_password=caf\u00e9&wrap_scope=x', 'latin1'),
        Buffer.from('wrap_name=owner&wrap_password=%zz&wrap_scope=x'),
        Buffer.from('wrap_name=owner&wrap_password=%ff%fe&wrap_scope=x'),
        Buffer.from('wrap_name=owner\u0000&wrap_password=a&wrap_scope=x'),
      ]) {
        expectAcsError(await post(body), 400, MALFORMED);
      }
    });

    it('a scope that is not an absolute http(s) URI in canonical form', async () => {
      for (const scope of [
        'not a uri',
        'contoso.servicebus.windows.net/',
        'ftp://contoso.servicebus.windows.net/',
        'http://contoso.servicebus.windows.net/orders/../admin',
        'http://contoso.servicebus.windows.net/orders/%2e%2e/admin',
        'http://contoso.servicebus.windows.net/orders%2fadmin',
        'http://contoso.servicebus.windows.net/orders/%252e%252e/admin',
        'http://contoso.servicebus.windows%2enet/',
        'http://contoso.servicebus.windows.net/%64emo',
        'http://contoso.servicebus.windows.net/orders%20x',
        'http://CONTOSO%2eservicebus.windows.net/',
        'http://contoso.servicebus.windows.net:80x/',
        'http://contoso.servicebus.windows.net\\orders',
        'http://user:pw@contoso.servicebus.windows.net/',
        'http://contoso.servicebus.windows.net/#fragment',
        `http://contoso.servicebus.windows.net/${'a'.repeat(3_000)}`,
        // Not a Service Bus namespace host: the namespace's key never signs for a foreign audience.
        'http://contoso.attacker.example/',
        'http://contoso.servicebus.windows.net.evil.com/',
        'http://x.contoso.servicebus.windows.net/',
        'http://contoso.servicebus.windows.net.:80/',
        // Path parameters, which some servers strip (`/q/..;/q2` is `/q2` to them).
        'http://contoso.servicebus.windows.net/orders/..;/admin',
        'http://contoso.servicebus.windows.net/orders;x=1/messages',
      ]) {
        expectAcsError(await post(ownerForm(scope)), 400, INVALID_SCOPE);
      }
    });
  });

  it('answers an oversized body with 413 in the ACS shape', async () => {
    const response = await post(`${ownerForm()}&padding=${'x'.repeat(20_000)}`);
    expectAcsError(response, 413, 'Request body exceeds 16384 bytes.');
  });
});
