import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { definition } from '../../functions/issueToken.js';
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

const BARE_JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MISSING_KEY =
  '{"error":{"code":"401","message":"Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."}}';
const INVALID_KEY =
  '{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}';

function post(path: string, headers: Record<string, string>, body?: string): Promise<ObservedResponse> {
  return harness.invoke(definition, { method: 'POST', path, headers, ...(body === undefined ? {} : { body }) });
}

async function expectSpeechToken(response: ObservedResponse, keySlot: 1 | 2 = 1): Promise<void> {
  const speech = harness.credentials.cognitive.speech;
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('application/jwt; charset=us-ascii');
  expect(response.headers.get('apim-request-id')).toMatch(GUID);
  expectSecurityHeaders(response.headers);
  expect(response.text).toMatch(BARE_JWT);
  const { payload } = await harness.verifyJwt(response.text, 'urn:ms.speechservices.eastus');
  expect(payload).toEqual({
    jti: expect.stringMatching(GUID),
    region: 'eastus',
    'subscription-id': '6f65a4c21b2d4e3f8a9b0c1d2e3f4a5b',
    'product-id': 'SpeechServices.S0',
    'azure-resource-id': speech.resourceId,
    scope: 'speechservices',
    nbf: FROZEN_SECONDS,
    iat: FROZEN_SECONDS,
    exp: FROZEN_SECONDS + 600,
    iss: TEST_ENV.STS_ISSUER,
    aud: 'urn:ms.speechservices.eastus',
  });
  expect(harness.ledgerRows.at(-1)).toEqual(
    expect.objectContaining({
      flow: 'issueToken',
      outcome: 'issued',
      status: 200,
      credentialId: 'speech-test',
      keySlot,
      audience: 'urn:ms.speechservices.eastus',
      jti: payload.jti,
      expiresAt: new Date((FROZEN_SECONDS + 600) * 1000),
    }),
  );
}

describe('Cognitive Services POST /sts/v1.0/issueToken (docs/contracts/cognitive-issue-token.md)', () => {
  describe('the seed requests', () => {
    it('the raw HTTP / curl / PowerShell request: form content type, Content-Length 0', async () => {
      const key = harness.credentials.cognitive.speech.keys[0];
      await expectSpeechToken(
        await post('/sts/v1.0/issueToken', {
          'Ocp-Apim-Subscription-Key': key,
          'Content-type': 'application/x-www-form-urlencoded',
          'Content-Length': '0',
        }),
      );
    });

    it('the Python requests sample: only the key header, no content type, no body', async () => {
      await expectSpeechToken(
        await post('/sts/v1.0/issueToken', {
          'Ocp-Apim-Subscription-Key': harness.credentials.cognitive.speech.keys[0],
        }),
      );
    });

    it('a Unity-style client: Content-Type application/json, Accept application/jwt', async () => {
      await expectSpeechToken(
        await post('/sts/v1.0/issuetoken', {
          'Ocp-Apim-Subscription-Key': harness.credentials.cognitive.speech.keys[1],
          'Content-Type': 'application/json',
          Accept: 'application/jwt',
        }),
        2,
      );
    });
  });

  it('takes the key from the Subscription-Key query parameter, its name in any case', async () => {
    const [first, second] = harness.credentials.cognitive.speech.keys;
    await expectSpeechToken(await post(`/sts/v1.0/issueToken?Subscription-Key=${first}`, {}), 1);
    await expectSpeechToken(await post(`/sts/v1.0/issueToken?subscription-key=${second}`, {}), 2);
    await expectSpeechToken(await post(`/sts/v1.0/issueToken?other=1&SUBSCRIPTION-KEY=${first}`, {}), 1);
  });

  it('ignores any body', async () => {
    await expectSpeechToken(
      await post(
        '/sts/v1.0/issueToken',
        { 'Ocp-Apim-Subscription-Key': harness.credentials.cognitive.speech.keys[0] },
        '{"anything": true}',
      ),
    );
  });

  it('prefers the header when both header and query carry a key', async () => {
    const key = harness.credentials.cognitive.speech.keys[0];
    await expectSpeechToken(
      await post('/sts/v1.0/issueToken?Subscription-Key=bogus', { 'Ocp-Apim-Subscription-Key': key }),
    );
    const refused = await post(`/sts/v1.0/issueToken?Subscription-Key=${key}`, {
      'Ocp-Apim-Subscription-Key': 'bogus',
    });
    expect(refused.text).toBe(INVALID_KEY);
  });

  it('derives scope and aud from the resource: a Face resource gets the generic scope and its own region', async () => {
    const face = harness.credentials.cognitive.isvFace;
    const response = await post('/sts/v1.0/issueToken', { 'Ocp-Apim-Subscription-Key': face.keys[0] });
    expect(response.status).toBe(200);
    const { payload } = await harness.verifyJwt(response.text, 'urn:ms.speechservices.westus');
    expect(payload).toMatchObject({
      region: 'westus',
      'subscription-id': 'f55b33ec371d415c89d39e3fd27c7dbd',
      'product-id': 'Face.S0',
      'azure-resource-id': face.resourceId,
      scope: 'https://api.cognitive.microsoft.com/',
    });
  });

  describe('401 with the documented body, word for word', () => {
    const expectUnauthorized = (response: ObservedResponse, body: string) => {
      expect({
        status: response.status,
        contentType: response.headers.get('content-type'),
        body: response.text,
      }).toEqual({
        status: 401,
        contentType: 'application/json; charset=utf-8',
        body,
      });
      expect(response.headers.get('apim-request-id')).toMatch(GUID);
      expectSecurityHeaders(response.headers);
    };

    it('missing key: no header and no query parameter, or empty ones', async () => {
      expectUnauthorized(await post('/sts/v1.0/issueToken', { 'Content-Length': '0' }), MISSING_KEY);
      expectUnauthorized(await post('/sts/v1.0/issueToken', { 'Ocp-Apim-Subscription-Key': '' }), MISSING_KEY);
      expectUnauthorized(await post('/sts/v1.0/issueToken?Subscription-Key=', {}), MISSING_KEY);
      expect(harness.ledgerRows.map((row) => [row.outcome, row.reason])).toEqual([
        ['refused', 'missing_credentials'],
        ['refused', 'missing_credentials'],
        ['refused', 'missing_credentials'],
      ]);
    });

    const invalid: [string, string, Record<string, string>, string][] = [
      [
        'an unknown key',
        '/sts/v1.0/issueToken',
        { 'Ocp-Apim-Subscription-Key': '0123456789abcdef0123456789abcdef' },
        'unknown_credential',
      ],
      ['a key of a disabled resource', '/sts/v1.0/issueToken', {}, 'credential_disabled'],
      [
        'the documentation placeholder',
        '/sts/v1.0/issueToken',
        { 'Ocp-Apim-Subscription-Key': 'YOUR_SUBSCRIPTION_KEY' },
        'unknown_credential',
      ],
      [
        'a duplicated query key',
        '/sts/v1.0/issueToken?Subscription-Key=a&subscription-key=b',
        {},
        'malformed_credentials',
      ],
      [
        'a key with spaces (duplicated header, comma-joined)',
        '/sts/v1.0/issueToken',
        { 'Ocp-Apim-Subscription-Key': 'abc, def' },
        'malformed_credentials',
      ],
      [
        'an oversized key',
        '/sts/v1.0/issueToken',
        { 'Ocp-Apim-Subscription-Key': 'a'.repeat(4_000) },
        'malformed_credentials',
      ],
      ['a non-ASCII key', '/sts/v1.0/issueToken', { 'Ocp-Apim-Subscription-Key': 'clé' }, 'malformed_credentials'],
      [
        'a key that is not UTF-8 in the query',
        '/sts/v1.0/issueToken?Subscription-Key=%ff%fe',
        {},
        'malformed_credentials',
      ],
    ];
    for (const [label, path, headers, reason] of invalid) {
      it(`invalid key: ${label}`, async () => {
        const sent = label.includes('disabled')
          ? { 'Ocp-Apim-Subscription-Key': harness.credentials.cognitive.disabled.keys[0] }
          : headers;
        expectUnauthorized(await post(path, sent), INVALID_KEY);
        expect(harness.ledgerRows).toEqual([
          expect.objectContaining({ flow: 'issueToken', outcome: 'refused', status: 401, reason }),
        ]);
      });
    }
  });
});
