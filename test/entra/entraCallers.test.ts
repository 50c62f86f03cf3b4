import { randomUUID } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { definition } from '../../functions/mixedRealityToken.js';
import { lazyEntraValidator } from '../../shared/entra/lazyEntraValidator.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import type { StsServices } from '../../shared/services.js';
import { allowPrincipal, revokePrincipal } from '../../tools/sts/credentials/principalProvisioning.js';
import { createMixedRealityAccount } from '../../tools/sts/credentials/provisioning.js';
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
 * Keyless callers of `GET /accounts/{accountId}/token`: a Microsoft Entra access token from the loopback
 * OpenID issuer in place of `id:key`, validated and authorized, answered exactly as the key flow answers.
 */

const AUDIENCE = 'api://sts-test';
const OBJECT_ID = randomUUID();
const COMPACT_BODY = /^\{"AccessToken":"([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"\}$/;

let issuer: OpenIdIssuer;
let harness: FlowHarness;

beforeAll(async () => {
  issuer = await startOpenIdIssuer();
  harness = await startFlowHarness({ STS_ENTRA_AUTHORITY: issuer.authority, STS_ENTRA_AUDIENCE: AUDIENCE });
  await allowPrincipal(servedStore(), accountId(), { tenantId: issuer.tenantId, objectId: OBJECT_ID });
});
afterAll(async () => {
  await harness.close();
  await issuer.close();
});
beforeEach(() => {
  harness.ledgerRows.length = 0;
  issuer.outage = false;
});

const accountId = (): string => harness.credentials.mixedReality.account.accountId;

/**
 * The store the services read, for changes made during a test: the file store re-reads the file at most once
 * a second, so a write through another instance could go unseen by the next request.
 */
function servedStore(): FileSecretStore {
  const store = harness.services.secrets;
  if (!(store instanceof FileSecretStore)) throw new Error('the flow harness serves from the file store');
  return store;
}

/** The claims of a v2.0 access token for our audience, valid at the frozen time. */
function entraClaims(overrides: JWTPayload = {}): JWTPayload {
  return {
    iss: issuer.authority,
    aud: AUDIENCE,
    tid: issuer.tenantId,
    oid: OBJECT_ID,
    sub: randomUUID(),
    ver: '2.0',
    iat: FROZEN_SECONDS - 300,
    nbf: FROZEN_SECONDS - 300,
    exp: FROZEN_SECONDS + 3_300,
    ...overrides,
  };
}

function getToken(
  account: string,
  authorization: string,
  services: StsServices = harness.services,
): Promise<ObservedResponse> {
  return harness.invoke(
    definition,
    {
      method: 'GET',
      path: `/accounts/${account}/token`,
      params: { accountId: account },
      headers: { Authorization: authorization },
    },
    services,
  );
}

function refusalOf(response: ObservedResponse): { status: number; wwwAuthenticate: string | null; body: string } {
  return { status: response.status, wwwAuthenticate: response.headers.get('www-authenticate'), body: response.text };
}

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('Mixed Reality STS with a Microsoft Entra access token', () => {
  it("issues the key flow's answer, with the caller's tenant and object id in tid and oid", async () => {
    const entraToken = await issuer.sign(entraClaims());
    const response = await getToken(accountId(), `Bearer ${entraToken}`);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('ms-cv')).toMatch(/^[A-Za-z0-9+/]{22}\.0$/);
    expectSecurityHeaders(response.headers);
    const token = COMPACT_BODY.exec(response.text)?.[1] ?? '';
    const { payload } = await harness.verifyJwt(token, TEST_ENV.STS_AUDIENCE_MIXED_REALITY);
    const { resourceId } = harness.credentials.mixedReality.account;
    expect(payload).toEqual({
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      aid: accountId(),
      cai: accountId(),
      tid: issuer.tenantId,
      oid: OBJECT_ID,
      apr: 'eastus2',
      rid: resourceId,
      nbf: FROZEN_SECONDS,
      iat: FROZEN_SECONDS,
      exp: FROZEN_SECONDS + 86_400,
      iss: TEST_ENV.STS_ISSUER,
      aud: TEST_ENV.STS_AUDIENCE_MIXED_REALITY,
    });

    expect(harness.ledgerRows).toEqual([
      expect.objectContaining({
        outcome: 'issued',
        credentialId: accountId(),
        principal: `${issuer.tenantId}/${OBJECT_ID}`,
        keySlot: undefined,
        jti: payload.jti,
      }),
    ]);
    expect(JSON.stringify(harness.ledgerRows)).not.toContain(entraToken.split('.')[2]);
  });

  it('still accepts id:key, exactly as before (tid zeros, no oid)', async () => {
    const { keys } = harness.credentials.mixedReality.account;
    const response = await getToken(accountId(), `Bearer ${accountId()}:${keys[1]}`);
    expect(response.status).toBe(200);
    const { payload } = await harness.verifyJwt(
      COMPACT_BODY.exec(response.text)?.[1] ?? '',
      TEST_ENV.STS_AUDIENCE_MIXED_REALITY,
    );
    expect(payload.tid).toBe('00000000-0000-0000-0000-000000000000');
    expect(payload).not.toHaveProperty('oid');
    expect(harness.ledgerRows[0]).toMatchObject({ keySlot: 2 });
    expect(harness.ledgerRows[0]?.principal).toBeUndefined();
  });

  it('accepts exp and nbf within the 60 s skew', async () => {
    const lateButTolerated = await issuer.sign(entraClaims({ exp: FROZEN_SECONDS - 59 }));
    expect((await getToken(accountId(), `Bearer ${lateButTolerated}`)).status).toBe(200);
    const earlyButTolerated = await issuer.sign(entraClaims({ nbf: FROZEN_SECONDS + 59 }));
    expect((await getToken(accountId(), `Bearer ${earlyButTolerated}`)).status).toBe(200);
  });

  describe("refusals: 401 with the flow's WWW-Authenticate text, an empty body, and a ledger row naming no token", () => {
    const cases: Array<[string, () => Promise<string>, string, string]> = [
      [
        'an expired token',
        () => issuer.sign(entraClaims({ exp: FROZEN_SECONDS - 61 })),
        'The Microsoft Entra token has expired.',
        'entra_token_expired',
      ],
      [
        'a token not valid yet',
        () => issuer.sign(entraClaims({ nbf: FROZEN_SECONDS + 61 })),
        'The Microsoft Entra token is not valid yet.',
        'entra_token_not_yet_valid',
      ],
      [
        'a wrong audience',
        () => issuer.sign(entraClaims({ aud: 'https://graph.microsoft.com' })),
        'The Microsoft Entra token is not meant for this service (audience).',
        'entra_wrong_audience',
      ],
      [
        'a foreign issuer (another tenant)',
        () => issuer.sign(entraClaims({ iss: issuer.authority.replace(issuer.tenantId, randomUUID()) })),
        'The Microsoft Entra token was issued by an authority this service does not trust.',
        'entra_foreign_issuer',
      ],
      [
        'an issuer differing only by a trailing slash',
        () => issuer.sign(entraClaims({ iss: `${issuer.authority}/` })),
        'The Microsoft Entra token was issued by an authority this service does not trust.',
        'entra_foreign_issuer',
      ],
      [
        'a bad signature (payload changed after signing)',
        async () => {
          const [header, , signature] = (await issuer.sign(entraClaims())).split('.');
          return `${header}.${b64url(entraClaims({ oid: randomUUID() }))}.${signature}`;
        },
        'The Microsoft Entra token signature is invalid.',
        'entra_bad_signature',
      ],
      [
        'alg: none',
        async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(entraClaims())}.`,
        'The Microsoft Entra token must be signed with an asymmetric algorithm.',
        'entra_algorithm_not_allowed',
      ],
      [
        'HS256 with the published public key as the secret',
        async () =>
          new SignJWT(entraClaims())
            .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: issuer.currentKid })
            .sign(new TextEncoder().encode(JSON.stringify(issuer.publicJwk()))),
        'The Microsoft Entra token must be signed with an asymmetric algorithm.',
        'entra_algorithm_not_allowed',
      ],
      [
        'a kid the authority does not publish',
        () => issuer.sign(entraClaims(), { headerKid: 'not-a-published-kid' }),
        'The Microsoft Entra token signature is invalid.',
        'entra_unknown_signing_key',
      ],
      [
        'a token without oid',
        () => issuer.sign(entraClaims({ oid: undefined })),
        'The Microsoft Entra token names no tenant and object id.',
        'entra_no_principal',
      ],
      [
        'a malformed token',
        async () => `${Buffer.from('not json').toString('base64url')}.eyJhIjoxfQ.c2ln`,
        'The Microsoft Entra token is malformed.',
        'entra_malformed_token',
      ],
    ];
    for (const [label, makeToken, message, reason] of cases) {
      it(`401 for ${label}`, async () => {
        const token = await makeToken();
        const response = await getToken(accountId(), `Bearer ${token}`);
        expect(refusalOf(response)).toEqual({ status: 401, wwwAuthenticate: `Invalid token: ${message}`, body: '' });
        expectSecurityHeaders(response.headers);
        expect(harness.ledgerRows).toEqual([
          expect.objectContaining({ outcome: 'refused', status: 401, credentialId: accountId(), reason }),
        ]);
        expect(JSON.stringify(harness.ledgerRows)).not.toContain(token);
      });
    }

    it('401 for a principal not allowed on the account: the ledger names the principal', async () => {
      const stranger = randomUUID();
      const response = await getToken(accountId(), `Bearer ${await issuer.sign(entraClaims({ oid: stranger }))}`);
      expect(refusalOf(response)).toEqual({
        status: 401,
        wwwAuthenticate: 'Invalid token: The caller is not allowed to obtain tokens for this account.',
        body: '',
      });
      expect(harness.ledgerRows).toEqual([
        expect.objectContaining({
          outcome: 'refused',
          credentialId: accountId(),
          principal: `${issuer.tenantId}/${stranger}`,
          reason: 'principal_not_allowed',
        }),
      ]);
    });

    it('the same 401 for an unknown account and for a disabled one that allows the principal', async () => {
      const token = await issuer.sign(entraClaims());
      const unknown = await getToken(randomUUID(), `Bearer ${token}`);
      const disabledId = harness.credentials.mixedReality.disabled.accountId;
      await allowPrincipal(servedStore(), disabledId, { tenantId: issuer.tenantId, objectId: OBJECT_ID });
      const disabled = await getToken(disabledId, `Bearer ${token}`);
      for (const response of [unknown, disabled]) {
        expect(refusalOf(response)).toEqual({
          status: 401,
          wwwAuthenticate: 'Invalid token: The caller is not allowed to obtain tokens for this account.',
          body: '',
        });
      }
      expect(harness.ledgerRows.map((row) => row.reason)).toEqual(['unknown_credential', 'credential_disabled']);
    });

    it('a revoked principal is refused from the next request on', async () => {
      const other = await createMixedRealityAccount(servedStore(), { accountDomain: 'westus2.mixedreality.azure.com' });
      const principal = { tenantId: issuer.tenantId, objectId: OBJECT_ID };
      await allowPrincipal(servedStore(), other.accountId, principal);
      const token = await issuer.sign(entraClaims());
      expect((await getToken(other.accountId, `Bearer ${token}`)).status).toBe(200);
      await revokePrincipal(servedStore(), other.accountId, principal);
      expect((await getToken(other.accountId, `Bearer ${token}`)).status).toBe(401);
    });
  });

  describe('when the authority cannot be reached', () => {
    it('a cold instance answers 503 with Retry-After (not 401), and does not ask again before it', async () => {
      const cold = lazyEntraValidator(
        { authorities: [issuer.authority], audience: AUDIENCE },
        () => new Date(FROZEN_NOW),
      );
      const services = { ...harness.services, entra: cold };
      issuer.outage = 'reset';
      issuer.resetCounters();
      const token = await issuer.sign(entraClaims());
      const first = await getToken(accountId(), `Bearer ${token}`, services);
      const second = await getToken(accountId(), `Bearer ${token}`, services);
      for (const response of [first, second]) {
        expect(response.status).toBe(503);
        expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(response.headers.get('www-authenticate')).toBeNull();
        expectSecurityHeaders(response.headers);
      }
      expect(issuer.requests.discovery).toBe(1);
    });

    it('held keys keep working past their max age while the authority is down', async () => {
      let nowMs = FROZEN_NOW.getTime();
      const warm = lazyEntraValidator({ authorities: [issuer.authority], audience: AUDIENCE }, () => new Date(nowMs));
      const services = { ...harness.services, entra: warm };
      const token = await issuer.sign(entraClaims());
      expect((await getToken(accountId(), `Bearer ${token}`, services)).status).toBe(200);
      issuer.outage = 500;
      nowMs += 2 * 60 * 60 * 1000; // past the one-hour max age
      expect((await getToken(accountId(), `Bearer ${token}`, services)).status).toBe(200);
    });
  });

  it('with STS_ENTRA_AUTHORITY unset, a JWT is refused as today (malformed key bearer) and no authority is asked', async () => {
    const off = await startFlowHarness();
    try {
      issuer.resetCounters();
      const response = await off.invoke(definition, {
        method: 'GET',
        path: `/accounts/${off.credentials.mixedReality.account.accountId}/token`,
        params: { accountId: off.credentials.mixedReality.account.accountId },
        headers: { Authorization: `Bearer ${await issuer.sign(entraClaims())}` },
      });
      expect(refusalOf(response)).toEqual({
        status: 401,
        wwwAuthenticate: "Invalid token: The Authorization header must be 'Bearer {accountId}:{accountKey}'.",
        body: '',
      });
      expect(issuer.requests).toEqual({ discovery: 0, jwks: 0 });
    } finally {
      await off.close();
    }
  });
});
