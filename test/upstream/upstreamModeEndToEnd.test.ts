import type { JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { command as clearUpstreamCommand } from '../../tools/sts/commands/clearUpstream.js';
import { command as setUpstreamCommand, createSetUpstreamCommand } from '../../tools/sts/commands/setUpstream.js';
import { rotateCredentialKey } from '../../tools/sts/credentials/provisioning.js';
import type { CognitiveResource, MixedRealityAccount, WrapIssuer } from '../../shared/credentials/records.js';
import { setCredentialUpstream } from '../../tools/sts/credentials/upstreamProvisioning.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import type { LedgerEntry } from '../../shared/ledger/ledger.js';
import type { StsServices } from '../../shared/services.js';
import { verifySwt } from '../../shared/tokens/swt.js';
import { createStsJwtVerifier, type StsJwtClaims, type StsTokenKind } from '../../shared/verify/index.js';
import { loopbackHostPolicy } from './loopbackHostPolicy.js';
import {
  AZURE_ENV,
  FACE_TARGET,
  OURS_ENV,
  STUB_KEYS,
  startStsPair,
  type ObservedResponse,
  type StsPair,
} from './upstreamStsPair.js';

/**
 * Upstream mode end to end over HTTP (docs/upstream.md): clients call our STS with their own keys; for credentials
 * in upstream mode it fetches the token from a second instance of this STS over HTTPS (playing the real Azure
 * STSs, with the real keys) and answers in the very same wire shape. One clock for everything, moved by hand.
 */

let pair: StsPair;

beforeAll(async () => {
  pair = await startStsPair();
}, 60_000);
afterAll(async () => {
  await pair?.close();
});
beforeEach(() => {
  // Each test starts cold: no upstream token cached, no fault, calls counted from zero.
  pair.ours.upstreamCache.clear();
  pair.azure.setFault(undefined);
  pair.azure.resetCalls();
  pair.stub.setFault(undefined);
  pair.stub.resetRecords();
});

// ---- requests as clients send them ----

const mixedReality = (account: MixedRealityAccount, key = account.keys[0]) =>
  pair.send('GET', `/accounts/${account.accountId}/token?api-version=2019-02-28-preview`, {
    authorization: `Bearer ${account.accountId}:${key}`,
  });
const issueToken = (resource: CognitiveResource, key = resource.keys[0]) =>
  pair.send(
    'POST',
    '/sts/v1.0/issueToken',
    { 'ocp-apim-subscription-key': key, 'content-type': 'application/x-www-form-urlencoded' },
    '',
  );
const limitedAccessToken = (resource: CognitiveResource, featureFlags: string[], expiredTime = 3600) =>
  pair.send(
    'POST',
    `/sts/v1.0/issueLimitedAccessToken?expiredTime=${expiredTime}`,
    { 'ocp-apim-subscription-key': resource.keys[0], 'content-type': 'application/json' },
    JSON.stringify({ targetAzureResourceId: FACE_TARGET, featureFlags }),
  );
const wrapToken = (issuer: WrapIssuer, scope: string) =>
  pair.send(
    'POST',
    '/WRAPv0.9/',
    { 'content-type': 'application/x-www-form-urlencoded' },
    new URLSearchParams({ wrap_name: issuer.name, wrap_password: issuer.keys[0], wrap_scope: scope }).toString(),
  );

// ---- what a client can check ----

async function verifyJwt(
  services: StsServices,
  issuer: string,
  audience: string,
  token: string,
  tokenKind?: StsTokenKind,
): Promise<StsJwtClaims> {
  const jwks: JSONWebKeySet = { keys: [...(await services.signingKeys.publicJwks(pair.now()))] };
  return createStsJwtVerifier({
    issuer,
    audience,
    jwks,
    now: pair.now,
    clockToleranceSeconds: 0,
    ...(tokenKind ? { tokenKind } : {}),
  }).verify(token);
}

/** What must be identical between a locally minted answer and an upstream one: status, types, header names. */
function wireShape(response: ObservedResponse) {
  const varying = new Set(['date', 'content-length', 'keep-alive', 'connection']);
  return {
    status: response.status,
    contentType: response.headers['content-type'],
    cacheControl: response.headers['cache-control'],
    pragma: response.headers.pragma,
    headerNames: Object.keys(response.headers)
      .filter((name) => !varying.has(name))
      .sort(),
  };
}

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const WRAP_BODY = /^wrap_access_token=([^&=]+)&wrap_access_token_expires_in=(\d+)$/;
const issued = (rows: readonly LedgerEntry[], flow?: string) =>
  rows.filter((row) => row.outcome === 'issued' && (!flow || row.flow === flow));
const fetches = (rows: readonly LedgerEntry[]) => rows.filter((row) => row.outcome === 'upstream');
const since = <T>(rows: readonly T[], start: number): T[] => rows.slice(start);

describe('the same wire shape as minting locally, with the upstream token inside', () => {
  it('Mixed Reality: {"AccessToken": <the real STS JWT for the real account>}', async () => {
    const ledgerStart = pair.ours.ledgerRows.length;
    const local = await mixedReality(pair.ours.local.mixedReality);
    const upstream = await mixedReality(pair.ours.upstream.mixedReality);
    expect(wireShape(upstream)).toEqual(wireShape(local));
    expect(wireShape(upstream)).toMatchObject({ status: 200, contentType: 'application/json; charset=utf-8' });
    expect(upstream.headers['ms-cv']).toMatch(/^[A-Za-z0-9+/]{22}\.0$/);

    const token = (JSON.parse(upstream.body) as { AccessToken: string }).AccessToken;
    expect(upstream.body).toBe(JSON.stringify({ AccessToken: token }));
    expect(Object.keys(JSON.parse(local.body) as object)).toEqual(['AccessToken']);
    // Signed by the upstream STS, for the real account (not our client's account id).
    const claims = await verifyJwt(
      pair.azure.services,
      AZURE_ENV.STS_ISSUER,
      AZURE_ENV.STS_AUDIENCE_MIXED_REALITY,
      token,
    );
    expect(claims.aid).toBe(pair.azure.mixedReality.accountId);
    const localClaims = await verifyJwt(
      pair.ours.services,
      OURS_ENV.STS_ISSUER,
      OURS_ENV.STS_AUDIENCE_MIXED_REALITY,
      (JSON.parse(local.body) as { AccessToken: string }).AccessToken,
    );
    expect(localClaims.aid).toBe(pair.ours.local.mixedReality.accountId);
    expect(pair.azure.calls('mixedRealityToken')).toBe(1);

    // Ledger: the client's issuance says where the token came from; the fetch is its own row.
    const rows = since(pair.ours.ledgerRows, ledgerStart);
    const [localRow, upstreamRow] = issued(rows);
    expect(localRow).toMatchObject({ credentialId: pair.ours.local.mixedReality.accountId });
    expect(localRow?.source).toBeUndefined();
    expect(upstreamRow).toMatchObject({
      credentialId: pair.ours.upstream.mixedReality.accountId,
      keySlot: 1,
      source: 'upstream:fetched',
      jti: claims.jti,
      audience: AZURE_ENV.STS_AUDIENCE_MIXED_REALITY,
      expiresAt: new Date((claims.exp as number) * 1000),
    });
    expect(fetches(rows)).toEqual([
      expect.objectContaining({
        flow: 'mixedRealityToken',
        outcome: 'upstream',
        status: 200,
        credentialId: `upstream-mr-${pair.ours.upstream.mixedReality.accountId}`,
        audience: pair.azure.url,
        requestId: upstreamRow?.requestId,
      }),
    ]);
  });

  it('issueToken: the bare JWT of the real token service', async () => {
    const local = await issueToken(pair.ours.local.speech);
    const upstream = await issueToken(pair.ours.upstream.speech);
    expect(wireShape(upstream)).toEqual(wireShape(local));
    expect(wireShape(upstream)).toMatchObject({ status: 200, contentType: 'application/jwt; charset=us-ascii' });
    expect(upstream.headers['apim-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(upstream.body).toMatch(JWT);
    expect(local.body).toMatch(JWT);
    const claims = await verifyJwt(
      pair.azure.services,
      AZURE_ENV.STS_ISSUER,
      'urn:ms.speechservices.eastus',
      upstream.body,
    );
    expect(claims['azure-resource-id']).toBe(pair.azure.speech.resourceId);
    expect((claims.exp as number) - Math.floor(pair.now().getTime() / 1000)).toBe(600);
    expect(pair.azure.calls('issueToken')).toBe(1);
  });

  it('issueLimitedAccessToken: the bare JWT, granting only what ours allows, for the lifetime asked', async () => {
    const local = await limitedAccessToken(pair.ours.local.face, ['Face.Identification'], 1800);
    const upstream = await limitedAccessToken(pair.ours.upstream.face, ['face.identification'], 1800);
    expect(wireShape(upstream)).toEqual(wireShape(local));
    expect(upstream.status).toBe(200);
    expect(upstream.body).toMatch(JWT);
    const claims = await verifyJwt(
      pair.azure.services,
      AZURE_ENV.STS_ISSUER,
      'urn:ms.speechservices.westus',
      upstream.body,
      'limitedAccess',
    );
    expect(claims).toMatchObject({ 'target-azure-resource-id': FACE_TARGET, 'feature-flags': ['Face.Identification'] });
    expect((claims.exp as number) - (claims.iat as number)).toBe(1800);
    const row = issued(pair.ours.ledgerRows, 'issueLimitedAccessToken').at(-1);
    expect(row).toMatchObject({
      credentialId: 'face',
      scope: FACE_TARGET,
      featureFlags: ['Face.Identification'],
      source: 'upstream:fetched',
    });
  });

  it('WRAP: exactly wrap_access_token=<the real ACS SWT>&wrap_access_token_expires_in=<seconds>', async () => {
    const scope = 'http://contoso.servicebus.windows.net/orders';
    const local = await wrapToken(pair.ours.local.owner, 'http://fabrikam.servicebus.windows.net/');
    const upstream = await wrapToken(pair.ours.upstream.owner, scope);
    expect(wireShape(upstream)).toEqual(wireShape(local));
    expect(wireShape(upstream)).toMatchObject({
      status: 200,
      contentType: 'application/x-www-form-urlencoded; charset=us-ascii',
    });
    const [, encoded, expiresIn] = WRAP_BODY.exec(upstream.body) ?? [];
    expect(WRAP_BODY.exec(local.body)?.[2]).toBe('10799');
    expect(expiresIn).toBe('10799');
    const swt = new URLSearchParams(upstream.body).get('wrap_access_token') ?? '';
    expect(encoded).toBeDefined();
    const claims = new Map(
      verifySwt(swt, pair.azure.contosoSigningKey, {
        now: pair.now(),
        audience: scope,
        issuer: AZURE_ENV.STS_WRAP_ISSUER,
      }),
    );
    expect(claims.get('net.windows.servicebus.action')).toBe('Listen,Manage,Send'); // the real issuer's rights
    expect(pair.azure.calls('wrapToken')).toBe(1);
  });
});

describe('checks that stay ours (no upstream call when they refuse)', () => {
  it('a wrong client key is our 401, in the flow shape, and never reaches the upstream', async () => {
    const account = pair.ours.upstream.mixedReality;
    const refused = await mixedReality(account, pair.azure.mixedReality.keys[0]);
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toBe('Invalid token: The account id or account key is invalid.');
    const cognitive = await issueToken(pair.ours.upstream.speech, pair.azure.speech.keys[0]);
    expect(cognitive.status).toBe(401);
    expect(pair.azure.calls()).toBe(0);
  });

  it('LAT: a flag ours may not grant is refused here even though the real key could grant it', async () => {
    const refused = await limitedAccessToken(pair.ours.upstream.face, ['Face.Verification']);
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body)).toEqual({
      error: { code: 'BadArgument', message: 'Missing required flags to grant Face.Verification.' },
    });
    expect(pair.azure.calls()).toBe(0);
  });

  it("WRAP: a scope outside the issuer's prefixes is our 403", async () => {
    const refused = await wrapToken(pair.ours.upstream.owner, 'http://contoso.servicebus.windows.net/billing');
    expect(refused.status).toBe(403);
    expect(refused.body).toMatch(
      /^Error:Code:403:SubCode:T0:Detail:ACS50000: .*not allowed tokens for this wrap_scope/,
    );
    expect(pair.azure.calls()).toBe(0);
  });
});

describe('caching that respects the upstream', () => {
  it('1,000 concurrent clients cost 1 upstream call', async () => {
    const ledgerStart = pair.ours.ledgerRows.length;
    const azureIssuedBefore = issued(pair.azure.ledgerRows, 'issueToken').length;
    // A slow upstream, so that the clients arrive while the one fetch is in flight.
    pair.azure.setFault({ kind: 'slow', ms: 300 });
    const resource = pair.ours.upstream.speech;
    const answers = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => issueToken(resource, resource.keys[i % 2])),
    );

    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const bodies = new Set(answers.map((a) => a.body));
    expect(bodies.size).toBe(1);
    expect(pair.azure.calls('issueToken')).toBe(1);
    expect(issued(pair.azure.ledgerRows, 'issueToken').length - azureIssuedBefore).toBe(1);

    const rows = since(pair.ours.ledgerRows, ledgerStart);
    expect(fetches(rows)).toHaveLength(1);
    expect(issued(rows)).toHaveLength(1_000);
    // Many clients joined the fetch in flight (single flight), the rest were served from the cache.
    const joined = issued(rows).filter((row) => row.source === 'upstream:fetched').length;
    expect(joined).toBeGreaterThan(1);
    expect(joined + issued(rows).filter((row) => row.source === 'upstream:cached').length).toBe(1_000);
  }, 60_000);

  it('a 10-minute token is reused for 9 minutes, then refreshed once in the background', async () => {
    const resource = pair.ours.upstream.speech;
    const first = await issueToken(resource);
    pair.advance(539);
    const reused = await issueToken(resource);
    expect(reused.body).toBe(first.body);
    expect(pair.azure.calls('issueToken')).toBe(1);

    pair.advance(2); // 541 s: inside the last 10% of the lifetime; the valid token is served while one refresh runs
    const during = await Promise.all(Array.from({ length: 50 }, () => issueToken(resource)));
    expect(during.every((answer) => answer.status === 200)).toBe(true);
    await pair.ours.upstreamCache.settled();
    expect(pair.azure.calls('issueToken')).toBe(2);
    const refreshed = await issueToken(resource);
    // Each got the valid token at hand: the old one while the refresh ran, the new one after (a hung upstream
    // keeping them all on the old one is upstreamCrowds.test.ts).
    expect(during.every((answer) => answer.body === first.body || answer.body === refreshed.body)).toBe(true);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body).not.toBe(first.body);
    expect(pair.azure.calls('issueToken')).toBe(2);
    const claims = await verifyJwt(
      pair.azure.services,
      AZURE_ENV.STS_ISSUER,
      'urn:ms.speechservices.eastus',
      refreshed.body,
    );
    expect(claims.exp).toBe(Math.floor(pair.now().getTime() / 1000) + 600);
    expect(await issueToken(resource)).toMatchObject({ body: refreshed.body });
    expect(pair.azure.calls('issueToken')).toBe(2);
  });

  it('WRAP: a cached SWT announces only the seconds it has left', async () => {
    const scope = 'http://contoso.servicebus.windows.net/orders/messages';
    const first = await wrapToken(pair.ours.upstream.owner, scope);
    pair.advance(3_600);
    const later = await wrapToken(pair.ours.upstream.owner, scope);
    expect(WRAP_BODY.exec(first.body)?.[2]).toBe('10799');
    expect(WRAP_BODY.exec(later.body)?.[2]).toBe('7199');
    expect(WRAP_BODY.exec(later.body)?.[1]).toBe(WRAP_BODY.exec(first.body)?.[1]);
    expect(pair.azure.calls('wrapToken')).toBe(1);
  });
});

describe('upstream failures', () => {
  it('an upstream outage with a warm token: 0 errors; once it expires, 503 + Retry-After in the flow shape; then recovery', async () => {
    const resource = pair.ours.upstream.speech;
    const warm = await issueToken(resource);
    pair.azure.setFault({ kind: 'status', status: 500 });
    pair.advance(541); // refresh due, token still valid for 59 s
    const ledgerStart = pair.ours.ledgerRows.length;

    const during = await Promise.all(Array.from({ length: 200 }, () => issueToken(resource)));
    expect(during.filter((a) => a.status !== 200)).toEqual([]);
    expect(new Set(during.map((a) => a.body))).toEqual(new Set([warm.body]));
    await pair.ours.upstreamCache.settled();
    const attempts = pair.azure.calls('issueToken') - 1;
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThanOrEqual(3); // one fetch, retried; then a cooldown, not 200 calls
    expect(fetches(since(pair.ours.ledgerRows, ledgerStart))).toEqual([
      expect.objectContaining({ outcome: 'upstream', status: 500, reason: 'status' }),
    ]);
    // Served at once while the refresh ran ('cached'), then as the fallback it left behind.
    const sources = new Set(issued(since(pair.ours.ledgerRows, ledgerStart)).map((row) => row.source));
    expect([...sources].every((source) => source === 'upstream:cached' || source === 'upstream:fallback')).toBe(true);
    expect((await issueToken(resource)).status).toBe(200);
    expect(issued(pair.ours.ledgerRows).at(-1)?.source).toBe('upstream:fallback');

    pair.advance(60); // the warm token has expired
    const down = await issueToken(resource);
    expect(down.status).toBe(503);
    expect(Number(down.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(down.body)).toEqual({
      error: { code: '503', message: 'The token service is temporarily unavailable. Retry later.' },
    });

    pair.azure.setFault(undefined);
    pair.advance(Number(down.headers['retry-after']));
    const recovered = await issueToken(resource);
    expect(recovered.status).toBe(200);
    expect(recovered.body).not.toBe(warm.body);
  }, 30_000);

  it('cold and down: Mixed Reality answers 503 with Retry-After and no body, WRAP its ACS error body', async () => {
    pair.azure.setFault({ kind: 'status', status: 503, retryAfter: '20' });
    const mr = await mixedReality(pair.ours.upstream.mixedReality);
    expect(mr.status).toBe(503);
    expect(mr.headers['retry-after']).toBe('20');
    expect(mr.body).toBe('');
    const wrap = await wrapToken(pair.ours.upstream.owner, 'http://contoso.servicebus.windows.net/orders');
    expect(wrap.status).toBe(503);
    expect(wrap.body).toMatch(
      /^Error:Code:503:SubCode:T0:Detail:The token service is temporarily unavailable\. Retry later\. :TraceID:/,
    );
  }, 30_000);

  it('upstream 401 after the real key was rotated: one key re-read, then success once our secret holds the new key', async () => {
    const resource = pair.ours.upstream.speech;
    const warm = await issueToken(resource);
    const ledgerStart = pair.ours.ledgerRows.length;
    const azureStart = pair.azure.ledgerRows.length;

    // The real key is rotated on the upstream STS with the provisioning code (key 1 was the one we hold).
    const rotation = await rotateCredentialKey(pair.azure.store, { kind: 'cognitiveResource', name: 'speech-real' }, 1);
    pair.advance(541);
    const stillServed = await issueToken(resource);
    expect(stillServed).toMatchObject({ status: 200, body: warm.body }); // served at once; the refresh runs behind it
    await pair.ours.upstreamCache.settled(); // 401, re-read (same old key): nothing new
    const refusedFetch = fetches(since(pair.ours.ledgerRows, ledgerStart));
    expect(refusedFetch).toEqual([expect.objectContaining({ status: 401, reason: 'status' })]);

    // The operator stores the new real key; our instances still have the old one cached.
    const stored = await setCredentialUpstream(
      pair.ours.store,
      { kind: 'cognitiveResource', name: 'speech' },
      { endpoint: pair.azure.url, key: rotation.newKey },
      { hostPolicy: loopbackHostPolicy },
    );
    expect(stored.recordChanged).toBe(false);
    expect((await pair.ours.cached.getSecret('upstream-cs-speech'))?.value).toBe(pair.azure.speech.keys[0]);

    pair.advance(60); // past the minute a refused key cools down (and the warm token has expired)
    const callsBefore = pair.azure.calls('issueToken');
    const renewed = await issueToken(resource);
    expect(renewed.status).toBe(200);
    expect(renewed.body).not.toBe(warm.body);
    expect(pair.azure.calls('issueToken') - callsBefore).toBe(2); // old key refused, new key accepted
    const rows = since(pair.ours.ledgerRows, ledgerStart);
    expect(fetches(rows).at(-1)).toMatchObject({ status: 200, reason: 'key_reread' });
    const azureRows = since(pair.azure.ledgerRows, azureStart);
    // The upstream refused the old key twice (the attempt served by the warm token, and the one before the re-read).
    expect(azureRows.filter((row) => row.outcome === 'refused').map((row) => row.status)).toEqual([401, 401]);

    // The re-read refreshed the cache too: the next refresh uses the new key at once.
    pair.advance(541);
    const next = await issueToken(resource);
    expect(next.status).toBe(200);
    await pair.ours.upstreamCache.settled();
    expect(pair.azure.calls('issueToken') - callsBefore).toBe(3);
    expect(fetches(since(pair.ours.ledgerRows, ledgerStart)).at(-1)).toMatchObject({ status: 200 });
    expect(fetches(since(pair.ours.ledgerRows, ledgerStart)).at(-1)?.reason).toBeUndefined();
  }, 30_000);
});

describe("the stub's fault switches, through our STS", () => {
  const stubIssueToken = () => issueToken(pair.ours.stubbed.speech);

  it('slow: 50 clients wait for the one slow fetch and all get its token', async () => {
    pair.stub.failNext({ kind: 'slow', delayMs: 1_500 });
    const answers = await Promise.all(Array.from({ length: 50 }, () => stubIssueToken()));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(answers.map((a) => a.body))).toEqual(new Set(pair.stub.issuedTokens));
    expect(pair.stub.count('issueToken')).toBe(1);
  }, 30_000);

  it('connection reset: retried, the client sees a 200', async () => {
    pair.stub.failNext({ kind: 'reset' });
    const answer = await mixedReality(pair.ours.stubbed.mixedReality);
    expect(answer.status).toBe(200);
    expect((JSON.parse(answer.body) as { AccessToken: string }).AccessToken).toBe(pair.stub.issuedTokens[0]);
    expect(pair.stub.count('mixedRealityToken')).toBe(2);
  }, 30_000);

  it("429 with a long Retry-After: 503 passing the upstream's Retry-After on; no call before it has passed", async () => {
    pair.stub.setFault({ kind: 'status', status: 429, retryAfter: '30' });
    const throttled = await stubIssueToken();
    expect(throttled.status).toBe(503);
    expect(throttled.headers['retry-after']).toBe('30');
    pair.stub.setFault(undefined);
    pair.advance(29);
    expect((await stubIssueToken()).status).toBe(503);
    expect(pair.stub.count('issueToken')).toBe(1);
    pair.advance(2);
    expect((await stubIssueToken()).status).toBe(200);
  }, 30_000);

  it('500 with a warm token: served; cold: 503', async () => {
    const warm = await stubIssueToken();
    pair.stub.setFault({ kind: 'status', status: 500 });
    pair.advance(541);
    expect(await stubIssueToken()).toMatchObject({ status: 200, body: warm.body });
    pair.ours.upstreamCache.clear();
    expect((await stubIssueToken()).status).toBe(503);
  }, 30_000);

  it("a wrong token (no exp) is never passed on: 503, and the stub's token appears in no response", async () => {
    pair.stub.setFault({ kind: 'wrongToken' });
    const answer = await stubIssueToken();
    expect(answer.status).toBe(503);
    // At least the one fetch; a second when the first attempt's time ran out on a busy machine (a retry). None of
    // the tokens the stub issued may reach a client.
    expect(pair.stub.issuedTokens.length).toBeGreaterThanOrEqual(1);
    for (const token of pair.stub.issuedTokens) {
      expect(pair.responses.some((r) => r.body.includes(token))).toBe(false);
    }
  });
});

describe('the admin CLI switches a credential in and out of upstream mode', () => {
  async function runCli(args: string[], env: Record<string, string> = {}): Promise<string> {
    const saved = { ...process.env };
    const printed: string[] = [];
    const log = console.log;
    process.env = { ...saved, STS_LOCAL_STORE_PATH: pair.ours.store.path, ...env };
    delete process.env.KEY_VAULT_URL;
    console.log = (...parts: unknown[]) => void printed.push(parts.join(' '));
    try {
      expect(
        await (args[0] === 'clear' ? clearUpstreamCommand : createSetUpstreamCommand(loopbackHostPolicy)).run(
          args.slice(1),
        ),
      ).toBe(0);
    } finally {
      console.log = log;
      process.env = saved;
    }
    return printed.join('\n');
  }

  it('the shipped set-upstream refuses the loopback stand-in (and every non-Azure host) before writing anything', async () => {
    const saved = { ...process.env };
    const before = await pair.ours.store.getSecretVersions(vaultLayout.cognitiveResource('speech'));
    process.env = { ...saved, STS_LOCAL_STORE_PATH: pair.ours.store.path, REAL_KEY: pair.azure.speech.keys[0] };
    delete process.env.KEY_VAULT_URL;
    try {
      for (const endpoint of [
        pair.azure.url,
        pair.azure.url.replace('127.0.0.1', 'localhost'),
        'https://[::1]:8443',
        'https://0x7f000001',
      ]) {
        const refused = await setUpstreamCommand
          .run(['--cognitive', 'speech', '--endpoint', endpoint, '--key-env', 'REAL_KEY'])
          .catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(Error);
        expect((refused as Error).message).toMatch(/Upstream endpoint refused/);
      }
    } finally {
      process.env = saved;
    }
    expect(await pair.ours.store.getSecretVersions(vaultLayout.cognitiveResource('speech'))).toHaveLength(
      before.length,
    );
  });

  it('clear-upstream: the account mints locally again; set-upstream: the real STS serves it again', async () => {
    const account = pair.ours.upstream.mixedReality;
    const recordName = vaultLayout.mixedRealityAccount(account.accountId);

    await runCli(['clear', '--account', account.accountId]);
    // The CLI wrote through its own store: re-read the record now (the file, past the cache), as when its entry ages out.
    await pair.ours.cached.getFreshSecret(recordName);
    const local = await mixedReality(account);
    const localToken = (JSON.parse(local.body) as { AccessToken: string }).AccessToken;
    expect(
      (await verifyJwt(pair.ours.services, OURS_ENV.STS_ISSUER, OURS_ENV.STS_AUDIENCE_MIXED_REALITY, localToken)).aid,
    ).toBe(account.accountId);
    expect(pair.azure.calls()).toBe(0);

    const realKey = pair.azure.mixedReality.keys[1];
    const printed = await runCli(
      [
        'set',
        '--account',
        account.accountId,
        '--endpoint',
        pair.azure.url,
        '--key-env',
        'REAL_KEY',
        '--upstream-account',
        pair.azure.mixedReality.accountId,
      ],
      { REAL_KEY: realKey },
    );
    expect(printed).not.toContain(realKey);
    await pair.ours.cached.getFreshSecret(recordName);
    await pair.ours.cached.getFreshSecret(`upstream-mr-${account.accountId}`);
    const upstream = await mixedReality(account);
    const upstreamToken = (JSON.parse(upstream.body) as { AccessToken: string }).AccessToken;
    const claims = await verifyJwt(
      pair.azure.services,
      AZURE_ENV.STS_ISSUER,
      AZURE_ENV.STS_AUDIENCE_MIXED_REALITY,
      upstreamToken,
    );
    expect(claims.aid).toBe(pair.azure.mixedReality.accountId);
    expect(pair.azure.calls('mixedRealityToken')).toBe(1);
  });
});

describe('log and response hygiene', () => {
  it('no real key in any response, log line or ledger row; no upstream token in any log line', async () => {
    // Traffic of its own, so that the scan has fetches, tokens, failures and refusals to look at whether or not
    // the tests above ran first: three rounds of every upstream flow, each fetched afresh.
    for (let round = 0; round < 3; round += 1) {
      pair.ours.upstreamCache.clear();
      const answers = [
        await issueToken(pair.ours.upstream.speech),
        await mixedReality(pair.ours.upstream.mixedReality),
        await wrapToken(pair.ours.upstream.owner, 'http://contoso.servicebus.windows.net/orders'),
        await issueToken(pair.ours.stubbed.speech),
        await mixedReality(pair.ours.stubbed.mixedReality),
      ];
      expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);
    }
    expect((await issueToken(pair.ours.upstream.speech, 'f'.repeat(32))).status).toBe(401);
    await issueToken(pair.ours.upstream.speech);
    pair.azure.setFault({ kind: 'status', status: 500 });
    pair.ours.upstreamCache.clear();
    await wrapToken(pair.ours.upstream.owner, 'http://contoso.servicebus.windows.net/orders');
    pair.azure.setFault(undefined);

    const { azure } = pair;
    const realKeys = [
      ...azure.mixedReality.keys,
      ...azure.speech.keys,
      ...azure.face.keys,
      ...azure.owner.keys,
      STUB_KEYS.cognitiveKey,
      STUB_KEYS.mixedReality.accountKey,
      ...(await azure.store.getSecretVersions(vaultLayout.cognitiveResource('speech-real'))).flatMap(
        (version) => (JSON.parse(version.value) as { keys: string[] }).keys,
      ),
    ];
    const upstreamTokens = [
      ...pair.responses.filter((r) => r.status === 200).flatMap((r) => tokensIn(r.body)),
      ...pair.stub.issuedTokens,
    ];
    const logs = [...pair.ours.logLines, ...pair.ours.upstreamLog, ...azure.logLines];
    expect(pair.ours.upstreamLog.some((line) => line.includes('fetched'))).toBe(true);
    expect(pair.ours.upstreamLog.some((line) => line.includes('failed'))).toBe(true);
    expect(upstreamTokens.length).toBeGreaterThan(10);

    const ledger = JSON.stringify([...pair.ours.ledgerRows, ...azure.ledgerRows]);
    const answers = pair.responses.map((r) => `${JSON.stringify(r.headers)}\n${r.body}`);
    for (const key of new Set(realKeys)) {
      expect(logs.filter((line) => line.includes(key))).toEqual([]);
      expect(answers.filter((answer) => answer.includes(key))).toEqual([]);
      expect(ledger.includes(key)).toBe(false);
    }
    for (const token of new Set(upstreamTokens)) {
      expect(logs.filter((line) => line.includes(token))).toEqual([]);
      expect(ledger.includes(token)).toBe(false);
    }
  }, 30_000);
});

/** The tokens a 200 body carries: the JWT of flows 1-3 or the SWT of WRAP (single-encoded). */
function tokensIn(body: string): string[] {
  if (body.startsWith('{')) return [(JSON.parse(body) as { AccessToken: string }).AccessToken];
  if (body.startsWith('wrap_access_token=')) return [new URLSearchParams(body).get('wrap_access_token') ?? ''];
  return [body];
}
