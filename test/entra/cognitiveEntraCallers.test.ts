import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { definition as issueTokenFunction } from '../../functions/issueToken.js';
import { definition as limitedAccessTokenFunction } from '../../functions/issueLimitedAccessToken.js';
import { lazyEntraValidator } from '../../shared/entra/lazyEntraValidator.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import type { StsServices } from '../../shared/services.js';
import { allowPrincipal, revokePrincipal } from '../../tools/sts/credentials/principalProvisioning.js';
import {
  expectSecurityHeaders,
  FROZEN_NOW,
  FROZEN_SECONDS,
  startFlowHarness,
  TEST_ENV,
  type FlowHarness,
  type ObservedResponse,
} from '../flows/flowHarness.js';
import { startOpenIdIssuer, type OpenIdIssuer } from '../support/openIdIssuer.js';

/**
 * Keyless callers of `issueToken` and `issueLimitedAccessToken`: an Entra access token and `?resource=<name>`
 * in place of the key, answered exactly as the key flow, refused as the Mixed Reality flow refuses, from any
 * of several configured authorities (docs/entra-id.md).
 */

const AUDIENCE = 'api://sts-cognitive-test';
const OBJECT_ID = randomUUID();
const GUEST_OBJECT_ID = randomUUID();
const TARGET =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/app-face';

let issuer: OpenIdIssuer;
let secondTenant: OpenIdIssuer;
let harness: FlowHarness;

beforeAll(async () => {
  issuer = await startOpenIdIssuer();
  secondTenant = await startOpenIdIssuer();
  harness = await startFlowHarness({
    STS_ENTRA_AUTHORITY: `${issuer.authority}, ${secondTenant.authority}`,
    STS_ENTRA_AUDIENCE: AUDIENCE,
  });
  const store = servedStore();
  await allowPrincipal(store, { cognitiveResource: speech() }, { tenantId: issuer.tenantId, objectId: OBJECT_ID });
  await allowPrincipal(
    store,
    { cognitiveResource: speech() },
    { tenantId: secondTenant.tenantId, objectId: GUEST_OBJECT_ID },
  );
  await allowPrincipal(
    store,
    { cognitiveResource: harness.credentials.cognitive.isvFace.name },
    { tenantId: issuer.tenantId, objectId: OBJECT_ID },
  );
  await allowPrincipal(
    store,
    { cognitiveResource: harness.credentials.cognitive.disabled.name },
    { tenantId: issuer.tenantId, objectId: OBJECT_ID },
  );
});
afterAll(async () => {
  await harness.close();
  await issuer.close();
  await secondTenant.close();
});
beforeEach(() => {
  harness.ledgerRows.length = 0;
  issuer.outage = false;
});

const speech = (): string => harness.credentials.cognitive.speech.name;

function servedStore(): FileSecretStore {
  const store = harness.services.secrets;
  if (!(store instanceof FileSecretStore)) throw new Error('the flow harness serves from the file store');
  return store;
}

function claims(from: OpenIdIssuer = issuer, overrides: JWTPayload = {}): JWTPayload {
  return {
    iss: from.authority,
    aud: AUDIENCE,
    tid: from.tenantId,
    oid: from === issuer ? OBJECT_ID : GUEST_OBJECT_ID,
    iat: FROZEN_SECONDS - 300,
    nbf: FROZEN_SECONDS - 300,
    exp: FROZEN_SECONDS + 3_000,
    ...overrides,
  };
}

function issueToken(
  query: string,
  headers: Record<string, string>,
  services: StsServices = harness.services,
): Promise<ObservedResponse> {
  return harness.invoke(
    issueTokenFunction,
    { method: 'POST', path: `/sts/v1.0/issueToken${query}`, headers },
    services,
  );
}

const cognitiveError = (response: ObservedResponse): { status: number; body: unknown } => ({
  status: response.status,
  body: JSON.parse(response.text) as unknown,
});

describe('Entra callers on issueToken', () => {
  it('200 with the bare JWT of the key flow, the caller in tid and oid, the principal in the ledger', async () => {
    const token = await issuer.sign(claims());
    const response = await issueToken(`?resource=${speech().toUpperCase()}`, { Authorization: `Bearer ${token}` });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/jwt; charset=us-ascii');
    expectSecurityHeaders(response.headers);
    const { payload } = await harness.verifyJwt(
      response.text,
      TEST_ENV.STS_AUDIENCE_COGNITIVE.replace('{region}', 'eastus'),
    );
    expect(payload).toMatchObject({
      region: 'eastus',
      tid: issuer.tenantId,
      oid: OBJECT_ID,
      exp: FROZEN_SECONDS + 600,
    });
    expect(harness.ledgerRows).toEqual([
      expect.objectContaining({
        outcome: 'issued',
        flow: 'issueToken',
        credentialId: speech(),
        principal: `${issuer.tenantId}/${OBJECT_ID}`,
        keySlot: undefined,
      }),
    ]);
    expect(JSON.stringify(harness.ledgerRows)).not.toContain(token.split('.')[2]);
  });

  it('accepts a token of a second configured authority (another tenant)', async () => {
    const token = await secondTenant.sign(claims(secondTenant));
    const response = await issueToken(`?resource=${speech()}`, { Authorization: `Bearer ${token}` });
    expect(response.status).toBe(200);
    const { payload } = await harness.verifyJwt(
      response.text,
      TEST_ENV.STS_AUDIENCE_COGNITIVE.replace('{region}', 'eastus'),
    );
    expect(payload).toMatchObject({ tid: secondTenant.tenantId, oid: GUEST_OBJECT_ID });
  });

  it('a key still wins over a bearer and is answered exactly as before (no tid, no oid)', async () => {
    const token = await issuer.sign(claims());
    const key = harness.credentials.cognitive.speech.keys[0];
    const response = await issueToken('', { 'Ocp-Apim-Subscription-Key': key, Authorization: `Bearer ${token}` });
    expect(response.status).toBe(200);
    const { payload } = await harness.verifyJwt(
      response.text,
      TEST_ENV.STS_AUDIENCE_COGNITIVE.replace('{region}', 'eastus'),
    );
    expect(payload).not.toHaveProperty('tid');
    expect(payload).not.toHaveProperty('oid');
    expect(harness.ledgerRows[0]).toMatchObject({ keySlot: 1 });
  });

  it('400 BadArgument when the resource is not named (or named twice)', async () => {
    const token = await issuer.sign(claims());
    for (const query of ['', '?resource=', `?resource=${speech()}&resource=other`, '?resource=not_a_name']) {
      expect(cognitiveError(await issueToken(query, { Authorization: `Bearer ${token}` }))).toEqual({
        status: 400,
        body: {
          error: {
            code: 'BadArgument',
            message:
              'A Microsoft Entra caller must name the resource in the resource query parameter (one resource name).',
          },
        },
      });
    }
  });

  const NOT_ALLOWED = {
    error: { code: '401', message: 'The caller is not allowed to obtain tokens for this resource.' },
  };

  it('401 in the Cognitive shape for a principal not on the resource, an unknown and a disabled resource: one text', async () => {
    const stranger = await issuer.sign(claims(issuer, { oid: randomUUID() }));
    expect(cognitiveError(await issueToken(`?resource=${speech()}`, { Authorization: `Bearer ${stranger}` }))).toEqual({
      status: 401,
      body: NOT_ALLOWED,
    });
    const allowed = await issuer.sign(claims());
    expect(
      cognitiveError(await issueToken('?resource=no-such-resource', { Authorization: `Bearer ${allowed}` })),
    ).toEqual({ status: 401, body: NOT_ALLOWED });
    const disabled = harness.credentials.cognitive.disabled.name;
    expect(cognitiveError(await issueToken(`?resource=${disabled}`, { Authorization: `Bearer ${allowed}` }))).toEqual({
      status: 401,
      body: NOT_ALLOWED,
    });
    expect(harness.ledgerRows.map((row) => [row.outcome, row.reason, row.principal?.split('/')[0]])).toEqual([
      ['refused', 'principal_not_allowed', issuer.tenantId],
      ['refused', 'unknown_credential', issuer.tenantId],
      ['refused', 'credential_disabled', issuer.tenantId],
    ]);
  });

  const FOREIGN = 'The Microsoft Entra token was issued by an authority this service does not trust.';
  const TOKEN_FAULTS: [string, JWTPayload, string, string][] = [
    ['a foreign issuer', { iss: 'https://login.example/other/v2.0' }, FOREIGN, 'entra_foreign_issuer'],
    ['a tid that is not the tenant its authority names', { tid: '' }, FOREIGN, 'entra_foreign_issuer'],
    [
      'another audience',
      { aud: 'api://other' },
      'The Microsoft Entra token is not meant for this service (audience).',
      'entra_wrong_audience',
    ],
    ['an expired token', { exp: FROZEN_SECONDS - 61 }, 'The Microsoft Entra token has expired.', 'entra_token_expired'],
  ];

  it.each(TOKEN_FAULTS)(
    "401 with the Mixed Reality flow's reason for %s",
    async (_case, overrides, message, reason) => {
      // The second tenant's id is only known once its issuer runs: '' stands for it.
      const token = await issuer.sign(
        claims(issuer, overrides.tid === '' ? { tid: secondTenant.tenantId } : overrides),
      );
      expect(cognitiveError(await issueToken(`?resource=${speech()}`, { Authorization: `Bearer ${token}` }))).toEqual({
        status: 401,
        body: { error: { code: '401', message } },
      });
      expect(harness.ledgerRows).toEqual([
        expect.objectContaining({ outcome: 'refused', status: 401, reason, credentialId: speech() }),
      ]);
    },
  );

  it('a revoked principal is refused from then on', async () => {
    const objectId = randomUUID();
    await allowPrincipal(servedStore(), { cognitiveResource: speech() }, { tenantId: issuer.tenantId, objectId });
    const token = await issuer.sign(claims(issuer, { oid: objectId }));
    expect((await issueToken(`?resource=${speech()}`, { Authorization: `Bearer ${token}` })).status).toBe(200);
    await revokePrincipal(servedStore(), { cognitiveResource: speech() }, { tenantId: issuer.tenantId, objectId });
    expect((await issueToken(`?resource=${speech()}`, { Authorization: `Bearer ${token}` })).status).toBe(401);
  });

  it('a cold instance with the authority down answers 503 + Retry-After in the Cognitive shape, never 401', async () => {
    const cold = lazyEntraValidator(
      { authorities: [issuer.authority], audience: AUDIENCE },
      () => new Date(FROZEN_NOW),
    );
    issuer.outage = 'reset';
    const token = await issuer.sign(claims());
    const response = await issueToken(
      `?resource=${speech()}`,
      { Authorization: `Bearer ${token}` },
      { ...harness.services, entra: cold },
    );
    expect(response.status).toBe(503);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(response.text)).toMatchObject({ error: { code: '503' } });
  });
});

describe('Entra callers on issueLimitedAccessToken', () => {
  it('200 with the limited access token of the key flow, naming the caller', async () => {
    const token = await issuer.sign(claims());
    const response = await harness.invoke(limitedAccessTokenFunction, {
      method: 'POST',
      path: `/sts/v1.0/issueLimitedAccessToken?expiredTime=600&resource=${harness.credentials.cognitive.isvFace.name}`,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ targetAzureResourceId: TARGET, featureFlags: ['Face.Identification'] }),
    });
    expect(response.status).toBe(200);
    const { payload } = await harness.verifyJwt(
      response.text,
      TEST_ENV.STS_AUDIENCE_COGNITIVE.replace('{region}', 'westus'),
      'limitedAccess',
    );
    expect(payload).toMatchObject({
      'target-azure-resource-id': TARGET,
      'feature-flags': ['Face.Identification'],
      tid: issuer.tenantId,
      oid: OBJECT_ID,
      exp: FROZEN_SECONDS + 600,
    });
    expect(harness.ledgerRows).toEqual([
      expect.objectContaining({
        outcome: 'issued',
        flow: 'issueLimitedAccessToken',
        principal: `${issuer.tenantId}/${OBJECT_ID}`,
        scope: TARGET,
      }),
    ]);
  });

  it('401 for a principal allowed on another resource only', async () => {
    const guest = await secondTenant.sign(claims(secondTenant));
    const response = await harness.invoke(limitedAccessTokenFunction, {
      method: 'POST',
      path: `/sts/v1.0/issueLimitedAccessToken?resource=${harness.credentials.cognitive.isvFace.name}`,
      headers: { Authorization: `Bearer ${guest}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ targetAzureResourceId: TARGET, featureFlags: ['Face.Identification'] }),
    });
    expect(cognitiveError(response)).toEqual({
      status: 401,
      body: { error: { code: '401', message: 'The caller is not allowed to obtain tokens for this resource.' } },
    });
  });
});
