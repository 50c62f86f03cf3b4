import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowPrincipal } from '../../tools/sts/credentials/principalProvisioning.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';
import { startOpenIdIssuer, type OpenIdIssuer } from '../support/openIdIssuer.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';

/**
 * An Entra caller over real HTTP through the local host, the services built from settings as in Azure: the
 * answer a client sees, and a log that never carries the Entra token or the issued one.
 */

const AUDIENCE = 'api://sts-over-http';
let issuer: OpenIdIssuer;
let credentials: TestCredentials;
let host: TestHost;
const objectId = randomUUID();

beforeAll(async () => {
  issuer = await startOpenIdIssuer();
  credentials = await createTestCredentials();
  await allowPrincipal(credentials.store, credentials.mixedReality.account.accountId, {
    tenantId: issuer.tenantId,
    objectId,
  });
  host = await startTestHost({
    env: {
      STS_LOCAL_STORE_PATH: credentials.storePath,
      STS_ENTRA_AUTHORITY: issuer.authority,
      STS_ENTRA_AUDIENCE: AUDIENCE,
    },
  });
});
afterAll(async () => {
  await host.close();
  await credentials.remove();
  await issuer.close();
});

async function entraToken(overrides: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return issuer.sign({
    iss: issuer.authority,
    aud: AUDIENCE,
    tid: issuer.tenantId,
    oid: objectId,
    iat: now,
    nbf: now,
    exp: now + 3_600,
    ...overrides,
  });
}

describe('Entra callers over HTTP', () => {
  it('200 with the compact body for an allowed principal, 401 for another; no token in the log', async () => {
    const accountId = credentials.mixedReality.account.accountId;
    const allowed = await entraToken();
    const ok = await request(`${host.url}/accounts/${accountId}/token`, {
      headers: { authorization: `Bearer ${allowed}` },
    });
    const body = await ok.body.text();
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(ok.headers['cache-control']).toBe('no-store, no-cache');
    const issued = /^\{"AccessToken":"([^"]+)"\}$/.exec(body)?.[1] ?? '';
    const claims = JSON.parse(Buffer.from(issued.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    expect(claims).toMatchObject({ aid: accountId, tid: issuer.tenantId, oid: objectId });

    const stranger = await entraToken({ oid: randomUUID() });
    const refused = await request(`${host.url}/accounts/${accountId}/token`, {
      headers: { authorization: `Bearer ${stranger}` },
    });
    await refused.body.dump();
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['www-authenticate']).toBe(
      'Invalid token: The caller is not allowed to obtain tokens for this account.',
    );

    const log = host.logLines.join('\n');
    expect(log).toContain('refused 401');
    for (const secret of [allowed, stranger, issued]) expect(log).not.toContain(secret.split('.')[2]);
  });
});
