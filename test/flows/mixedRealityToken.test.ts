import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { definition } from '../../functions/mixedRealityToken.js';
import {
  expectSecurityHeaders,
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

const MS_CV = /^[A-Za-z0-9+/]{22}\.0$/;
const COMPACT_BODY = /^\{"AccessToken":"([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"\}$/;

function getToken(accountIdInPath: string, headers: Record<string, string>, query = ''): Promise<ObservedResponse> {
  return harness.invoke(definition, {
    method: 'GET',
    path: `/accounts/${accountIdInPath}/token${query}`,
    params: { accountId: accountIdInPath },
    headers,
  });
}

function tokenOf(response: ObservedResponse): string {
  const match = COMPACT_BODY.exec(response.text);
  if (!match?.[1]) throw new Error(`not a compact AccessToken body: ${response.text.slice(0, 80)}`);
  return match[1];
}

describe('Mixed Reality STS: GET /accounts/{accountId}/token (docs/contracts/mixed-reality-sts.md)', () => {
  it('answers the seed request (PowerShell with -ContentType application/json) with the documented 200', async () => {
    const { accountId, keys, resourceId } = harness.credentials.mixedReality.account;
    const response = await getToken(accountId, {
      Authorization: `Bearer ${accountId}:${keys[0]}`,
      'Content-Type': 'application/json',
    });

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('ms-cv')).toMatch(MS_CV);
    expectSecurityHeaders(response.headers);
    const token = tokenOf(response);

    const { payload } = await harness.verifyJwt(token, TEST_ENV.STS_AUDIENCE_MIXED_REALITY);
    expect(payload).toEqual({
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      aid: accountId,
      cai: accountId,
      tid: '00000000-0000-0000-0000-000000000000',
      apr: 'eastus2',
      rid: resourceId,
      nbf: FROZEN_SECONDS,
      iat: FROZEN_SECONDS,
      exp: FROZEN_SECONDS + 86_400,
      iss: TEST_ENV.STS_ISSUER,
      aud: TEST_ENV.STS_AUDIENCE_MIXED_REALITY,
    });
    // Java/browser/Python SDKs decode the payload with standard base64 (docs/contracts/cross-cutting.md#jwt-encoding).
    const standard = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64').toString('utf8')) as {
      exp: number;
    };
    expect(standard.exp).toBe(FROZEN_SECONDS + 86_400);

    expect(harness.ledgerRows).toEqual([
      expect.objectContaining({
        flow: 'mixedRealityToken',
        outcome: 'issued',
        status: 200,
        credentialId: accountId,
        keySlot: 1,
        audience: TEST_ENV.STS_AUDIENCE_MIXED_REALITY,
        jti: payload.jti,
        expiresAt: new Date((FROZEN_SECONDS + 86_400) * 1000),
      }),
    ]);
  });

  it('accepts the second key, the SDK headers and api-version, and never echoes the client correlation vector', async () => {
    const { accountId, keys } = harness.credentials.mixedReality.account;
    const response = await getToken(
      accountId,
      {
        Authorization: `Bearer ${accountId}:${keys[1]}`,
        Accept: 'application/json',
        'X-MRC-CV': '8cSZ5cMmUEaRFNnmoqYyCA',
        'x-ms-client-request-id': 'e4c1b3f2-6f0e-4a43-9d4e-1b2c3d4e5f60',
        'x-ms-return-client-request-id': 'true',
      },
      '?api-version=2019-02-28-preview',
    );
    expect(response.status).toBe(200);
    tokenOf(response);
    expect(response.headers.get('ms-cv')).toMatch(MS_CV);
    expect(response.headers.get('ms-cv')).not.toContain('8cSZ5cMmUEaRFNnmoqYyCA');
    expect(response.headers.get('x-ms-client-request-id')).toBeNull();
    expect(harness.ledgerRows[0]?.keySlot).toBe(2);
  });

  it('compares the account id case-insensitively between path and header, and the scheme name too', async () => {
    const { accountId, keys } = harness.credentials.mixedReality.account;
    const upper = accountId.toUpperCase();
    for (const [inPath, inHeader, scheme] of [
      [upper, accountId, 'Bearer'],
      [accountId, upper, 'bearer'],
      [upper, upper, 'BEARER'],
    ] as const) {
      const response = await getToken(inPath, { Authorization: `${scheme} ${inHeader}:${keys[0]}` });
      expect(response.status, `${inPath} / ${inHeader}`).toBe(200);
      const { payload } = await harness.verifyJwt(tokenOf(response), TEST_ENV.STS_AUDIENCE_MIXED_REALITY);
      expect(payload.aid).toBe(accountId);
    }
  });

  it('answers two requests with different MS-CV values and different token ids', async () => {
    const { accountId, keys } = harness.credentials.mixedReality.account;
    const headers = { Authorization: `Bearer ${accountId}:${keys[0]}` };
    const [first, second] = [await getToken(accountId, headers), await getToken(accountId, headers)];
    expect(first.headers.get('ms-cv')).not.toBe(second.headers.get('ms-cv'));
    expect(tokenOf(first)).not.toBe(tokenOf(second));
  });

  describe('refusals: 400/401 with WWW-Authenticate, MS-CV, the security headers and an empty body', () => {
    const expectRefusal = (response: ObservedResponse, status: number, wwwAuthenticate: string) => {
      expect({
        status: response.status,
        wwwAuthenticate: response.headers.get('www-authenticate'),
        body: response.text,
      }).toEqual({
        status,
        wwwAuthenticate,
        body: '',
      });
      expect(response.headers.get('ms-cv')).toMatch(MS_CV);
      expectSecurityHeaders(response.headers);
    };

    it('400 when the path id is not a GUID', async () => {
      const { accountId, keys } = harness.credentials.mixedReality.account;
      for (const bad of [
        'not-a-guid',
        `${accountId}0`,
        `{${accountId}}`,
        accountId.replaceAll('-', ''),
        '',
        '%ff%fe',
      ]) {
        const response = await getToken(bad, { Authorization: `Bearer ${accountId}:${keys[0]}` });
        expectRefusal(response, 400, 'Invalid request: The account id in the path must be a GUID.');
      }
      expect(harness.ledgerRows).toEqual([]); // a malformed request is not a credential refusal
    });

    const cases: [string, (id: string, key: string) => Record<string, string>, string, string][] = [
      ['no Authorization header', () => ({}), 'The Authorization header is missing.', 'missing_credentials'],
      [
        'an empty Authorization header',
        () => ({ Authorization: '   ' }),
        'The Authorization header is missing.',
        'missing_credentials',
      ],
      [
        'Basic instead of Bearer',
        (id, key) => ({ Authorization: `Basic ${id}:${key}` }),
        malformed(),
        'malformed_credentials',
      ],
      ['no scheme', (id, key) => ({ Authorization: `${id}:${key}` }), malformed(), 'malformed_credentials'],
      ['no colon', (id) => ({ Authorization: `Bearer ${id}` }), malformed(), 'malformed_credentials'],
      ['an empty id', (_id, key) => ({ Authorization: `Bearer :${key}` }), malformed(), 'malformed_credentials'],
      ['an empty key', (id) => ({ Authorization: `Bearer ${id}:` }), malformed(), 'malformed_credentials'],
      [
        'a key with spaces (a duplicated header, comma-joined)',
        (id, key) => ({ Authorization: `Bearer ${id}:${key}, Bearer ${id}:${key}` }),
        malformed(),
        'malformed_credentials',
      ],
      ['a non-ASCII key', (id) => ({ Authorization: `Bearer ${id}:clé` }), malformed(), 'malformed_credentials'],
      [
        'an oversized header',
        (id) => ({ Authorization: `Bearer ${id}:${'A'.repeat(5_000)}` }),
        malformed(),
        'malformed_credentials',
      ],
      [
        'another account id in the header',
        (_id, key) => ({ Authorization: `Bearer 0b9f4a3e-1111-4222-8333-944445555666:${key}` }),
        'The account id in the Authorization header does not match the account id in the path.',
        'credential_mismatch',
      ],
      [
        'a wrong key',
        (id, key) => ({ Authorization: `Bearer ${id}:${key.slice(0, -4)}AAA=` }),
        'The account id or account key is invalid.',
        'wrong_key',
      ],
      [
        'a key of another account',
        (id) => ({ Authorization: `Bearer ${id}:${harness.credentials.mixedReality.disabled.keys[0]}` }),
        'The account id or account key is invalid.',
        'wrong_key',
      ],
    ];
    for (const [label, headersFor, message, reason] of cases) {
      it(`401 for ${label}`, async () => {
        const { accountId, keys } = harness.credentials.mixedReality.account;
        const response = await getToken(accountId, headersFor(accountId, keys[0]));
        expectRefusal(response, 401, `Invalid token: ${message}`);
        expect(harness.ledgerRows).toEqual([
          expect.objectContaining({
            flow: 'mixedRealityToken',
            outcome: 'refused',
            status: 401,
            reason,
            credentialId: accountId,
          }),
        ]);
      });
    }

    it('401 for an unknown account and for a disabled one, with the same message as a wrong key', async () => {
      const unknown = '3f2504e0-4f89-11d3-9a0c-0305e82c3301';
      const disabled = harness.credentials.mixedReality.disabled;
      const key = harness.credentials.mixedReality.account.keys[0];
      expectRefusal(
        await getToken(unknown, { Authorization: `Bearer ${unknown}:${key}` }),
        401,
        'Invalid token: The account id or account key is invalid.',
      );
      expectRefusal(
        await getToken(disabled.accountId, { Authorization: `Bearer ${disabled.accountId}:${disabled.keys[0]}` }),
        401,
        'Invalid token: The account id or account key is invalid.',
      );
      expect(harness.ledgerRows.map((row) => row.reason)).toEqual(['unknown_credential', 'credential_disabled']);
    });
  });
});

function malformed(): string {
  return "The Authorization header must be 'Bearer {accountId}:{accountKey}'.";
}
