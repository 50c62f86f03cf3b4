import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { definition } from '../../functions/issueLimitedAccessToken.js';
import { definition as issueTokenDefinition } from '../../functions/issueToken.js';
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
/** The API reference's own example body (seed 002). */
const SEED_TARGET =
  '/subscriptions/f55b33ec-371d-415c-89d3-9e3fd27c7dbd/resourceGroups/defaultresourcegroup/providers/Microsoft.CognitiveServices/accounts/target-face-account';
const SEED_BODY = `{
"targetAzureResourceId": "${SEED_TARGET}",
"featureFlags": [
"Face.Identification"
]
}`;

const badArgument = (message: string) => JSON.stringify({ error: { code: 'BadArgument', message } });
const EXPIRED_TIME = badArgument('expiredTime must be an integer number of seconds between 60 and 86400.');

function post(
  query: string,
  body: string | Uint8Array | undefined,
  headers: Record<string, string> = {},
): Promise<ObservedResponse> {
  return harness.invoke(definition, {
    method: 'POST',
    path: `/sts/v1.0/issueLimitedAccessToken${query}`,
    headers: {
      'Content-Type': 'application/json',
      'Ocp-Apim-Subscription-Key': harness.credentials.cognitive.isvFace.keys[0],
      ...headers,
    },
    ...(body === undefined ? {} : { body }),
  });
}

async function expectLimitedToken(
  response: ObservedResponse,
  target: string,
  flags: string[],
  lifetime: number,
): Promise<void> {
  const face = harness.credentials.cognitive.isvFace;
  expect(response.status, response.text).toBe(200);
  expect(response.headers.get('content-type')).toBe('application/jwt; charset=us-ascii');
  expectSecurityHeaders(response.headers);
  expect(response.text).toMatch(BARE_JWT);
  const { payload } = await harness.verifyJwt(response.text, 'urn:ms.speechservices.westus', 'limitedAccess');
  expect(payload).toEqual({
    jti: expect.any(String),
    region: 'westus',
    'subscription-id': 'f55b33ec371d415c89d39e3fd27c7dbd',
    'product-id': 'Face.S0',
    'azure-resource-id': face.resourceId,
    scope: 'https://api.cognitive.microsoft.com/',
    'target-azure-resource-id': target,
    'feature-flags': flags,
    nbf: FROZEN_SECONDS,
    iat: FROZEN_SECONDS,
    exp: FROZEN_SECONDS + lifetime,
    iss: TEST_ENV.STS_ISSUER,
    aud: 'urn:ms.speechservices.westus',
  });
  expect(harness.ledgerRows.at(-1)).toEqual(
    expect.objectContaining({
      flow: 'issueLimitedAccessToken',
      outcome: 'issued',
      credentialId: 'isv-face',
      scope: target,
      featureFlags: flags,
      jti: payload.jti,
      expiresAt: new Date((FROZEN_SECONDS + lifetime) * 1000),
    }),
  );
}

function expectBadArgument(response: ObservedResponse, body: string): void {
  expect({ status: response.status, contentType: response.headers.get('content-type'), body: response.text }).toEqual({
    status: 400,
    contentType: 'application/json; charset=utf-8',
    body,
  });
  expectSecurityHeaders(response.headers);
}

describe('Face POST /sts/v1.0/issueLimitedAccessToken (docs/contracts/cognitive-limited-access-token.md)', () => {
  describe('the seed requests', () => {
    it("the API reference's example body with ?expiredTime=3600", async () => {
      await expectLimitedToken(await post('?expiredTime=3600', SEED_BODY), SEED_TARGET, ['Face.Identification'], 3600);
    });

    it("the Objective-C sample's extra entities=true parameter is ignored", async () => {
      await expectLimitedToken(
        await post('?entities=true&expiredTime=3600', SEED_BODY),
        SEED_TARGET,
        ['Face.Identification'],
        3600,
      );
    });

    it("the C# sample's placeholder content type still gets its body parsed", async () => {
      const response = await post('?expiredTime=3600', SEED_BODY, {
        'Content-Type': '< your content type, i.e. application/json >',
      });
      await expectLimitedToken(response, SEED_TARGET, ['Face.Identification'], 3600);
    });

    it('every code sample posting the literal text {body} gets a 400 BadArgument, never a 500', async () => {
      expectBadArgument(await post('?expiredTime=3600', '{body}'), badArgument('Request body is invalid.'));
    });
  });

  it('a LAT and a Cognitive token of the ISV resource share iss and aud, yet ./verify never takes one for the other', async () => {
    const audience = 'urn:ms.speechservices.westus';
    const lat = (await post('?expiredTime=3600', SEED_BODY)).text;
    const cognitive = await harness.invoke(issueTokenDefinition, {
      method: 'POST',
      path: '/sts/v1.0/issueToken',
      headers: { 'Ocp-Apim-Subscription-Key': harness.credentials.cognitive.isvFace.keys[0] },
      body: '',
    });
    expect(cognitive.status).toBe(200);
    // A resource server accepting access tokens (the default) refuses the LAT, and a LAT endpoint the access token.
    await expect(harness.verifyJwt(lat, audience)).rejects.toMatchObject({
      code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
      claim: 'feature-flags',
    });
    await expect(harness.verifyJwt(cognitive.text, audience, 'limitedAccess')).rejects.toMatchObject({
      code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
      claim: 'feature-flags',
    });
    expect((await harness.verifyJwt(cognitive.text, audience)).payload['azure-resource-id']).toBe(
      harness.credentials.cognitive.isvFace.resourceId,
    );
    expect((await harness.verifyJwt(lat, audience, 'limitedAccess')).payload['target-azure-resource-id']).toBe(
      SEED_TARGET,
    );
  });

  it('accepts the how-to body: resourceId, two flags, no expiredTime (default 3600)', async () => {
    const body = JSON.stringify({
      resourceId: SEED_TARGET,
      featureFlags: ['Face.Identification', 'Face.Verification'],
    });
    await expectLimitedToken(await post('', body), SEED_TARGET, ['Face.Identification', 'Face.Verification'], 3600);
  });

  it('honours expiredTime at both ends of 60..86400', async () => {
    await expectLimitedToken(await post('?expiredTime=60', SEED_BODY), SEED_TARGET, ['Face.Identification'], 60);
    await expectLimitedToken(await post('?ExpiredTime=86400', SEED_BODY), SEED_TARGET, ['Face.Identification'], 86_400);
  });

  it('tolerates one flag as a string, flag case, duplicates, property-name case and a UTF-8 BOM', async () => {
    await expectLimitedToken(
      await post('', JSON.stringify({ targetAzureResourceId: SEED_TARGET, featureFlags: 'Face.Verification' })),
      SEED_TARGET,
      ['Face.Verification'],
      3600,
    );
    await expectLimitedToken(
      await post(
        '',
        JSON.stringify({
          TargetAzureResourceId: SEED_TARGET,
          FeatureFlags: ['face.identification', 'Face.Identification'],
        }),
      ),
      SEED_TARGET,
      ['Face.Identification'],
      3600,
    );
    await expectLimitedToken(
      await post('', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(SEED_BODY)])),
      SEED_TARGET,
      ['Face.Identification'],
      3600,
    );
  });

  it('prefers targetAzureResourceId when both it and resourceId are given', async () => {
    const other = SEED_TARGET.replace('target-face-account', 'other-account');
    const body = JSON.stringify({
      resourceId: other,
      targetAzureResourceId: SEED_TARGET,
      featureFlags: ['Face.Identification'],
    });
    await expectLimitedToken(await post('', body), SEED_TARGET, ['Face.Identification'], 3600);
  });

  describe('the five documented BadArgument errors, word for word', () => {
    it('Request body cannot be null or empty.', async () => {
      for (const body of [undefined, '', '   \r\n', 'null']) {
        expectBadArgument(await post('', body), badArgument('Request body cannot be null or empty.'));
      }
    });

    it('TargetAzureResourceId must not be null and must be well formed.', async () => {
      const expected = badArgument('TargetAzureResourceId must not be null and must be well formed.');
      const targets: unknown[] = [
        undefined,
        null,
        42,
        '',
        'target-face-account',
        SEED_TARGET.replace('f55b33ec-371d-415c-89d3-9e3fd27c7dbd', 'not-a-guid'),
        SEED_TARGET.replace('Microsoft.CognitiveServices', 'Microsoft.Storage'),
        `${SEED_TARGET}/extra`,
        SEED_TARGET.replace('target-face-account', '-bad-'),
        ` ${SEED_TARGET}`,
      ];
      for (const target of targets) {
        const body = JSON.stringify({
          featureFlags: ['Face.Identification'],
          ...(target === undefined ? {} : { targetAzureResourceId: target }),
        });
        expectBadArgument(await post('', body), expected);
      }
    });

    it('FeatureFlags must not be null or empty.', async () => {
      const expected = badArgument('FeatureFlags must not be null or empty.');
      for (const flags of [undefined, null, [], '', [''], ['  '], [1], [null], {}]) {
        const body = JSON.stringify({
          targetAzureResourceId: SEED_TARGET,
          ...(flags === undefined ? {} : { featureFlags: flags }),
        });
        expectBadArgument(await post('', body), expected);
      }
    });

    it('ISV features not enabled for this resource id.', async () => {
      const speechKey = harness.credentials.cognitive.speech.keys[0];
      expectBadArgument(
        await post('', SEED_BODY, { 'Ocp-Apim-Subscription-Key': speechKey }),
        badArgument('ISV features not enabled for this resource id.'),
      );
    });

    it('Missing required flags to grant {flag}.', async () => {
      for (const [flags, missing] of [
        [['LimitedAccess.HighRisk'], 'LimitedAccess.HighRisk'],
        [['Face.Identification', 'LimitedAccess.HighRisk'], 'LimitedAccess.HighRisk'],
        [['Face.Unknown'], 'Face.Unknown'],
      ] as const) {
        const body = JSON.stringify({ targetAzureResourceId: SEED_TARGET, featureFlags: flags });
        expectBadArgument(await post('', body), badArgument(`Missing required flags to grant ${missing}.`));
      }
    });
  });

  it('refuses a body that is not a JSON object, or not UTF-8, with BadArgument', async () => {
    const invalid = badArgument('Request body is invalid.');
    for (const body of [
      '[1,2]',
      '"text"',
      '12',
      'true',
      '{"targetAzureResourceId":',
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
    ]) {
      expectBadArgument(await post('', body), invalid);
    }
  });

  it('refuses every malformed expiredTime with a clear BadArgument', async () => {
    for (const value of [
      '3600abc',
      '1e3',
      '-1',
      '0x10',
      '',
      '+3600',
      '%203600',
      '3600.0',
      '59',
      '86401',
      '0',
      '99999999999999999999',
    ]) {
      expectBadArgument(await post(`?expiredTime=${value}`, SEED_BODY), EXPIRED_TIME);
    }
    expectBadArgument(
      await post('?expiredTime=3600&expiredTime=60', SEED_BODY),
      badArgument('expiredTime must be given at most once.'),
    );
    expectBadArgument(
      await post('?expiredTime=3600&EXPIREDTIME=3600', SEED_BODY),
      badArgument('expiredTime must be given at most once.'),
    );
  });

  it('checks the key before anything else: 401s are the issueToken ones', async () => {
    const missing = await post('?expiredTime=abc', '{body}', { 'Ocp-Apim-Subscription-Key': '' });
    expect(missing.status).toBe(401);
    expect(missing.text).toBe(
      '{"error":{"code":"401","message":"Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."}}',
    );
    const wrong = await post('', SEED_BODY, { 'Ocp-Apim-Subscription-Key': '0123456789abcdef0123456789abcdef' });
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.text)).toEqual({
      error: {
        code: '401',
        message:
          'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
      },
    });
    expect(harness.ledgerRows.map((row) => row.reason)).toEqual(['missing_credentials', 'unknown_credential']);
  });

  it('answers an oversized body with 413 in the Cognitive shape', async () => {
    const huge = JSON.stringify({
      targetAzureResourceId: SEED_TARGET,
      featureFlags: ['Face.Identification'],
      padding: 'x'.repeat(20_000),
    });
    const response = await post('', huge);
    expect({ status: response.status, body: response.text }).toEqual({
      status: 413,
      body: '{"error":{"code":"413","message":"Request body exceeds 16384 bytes."}}',
    });
    expectSecurityHeaders(response.headers);
  });
});
