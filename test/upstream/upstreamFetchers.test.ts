import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchCognitiveToken } from '../../shared/upstream/fetchCognitiveToken.js';
import { fetchLimitedAccessToken } from '../../shared/upstream/fetchLimitedAccessToken.js';
import { fetchMixedRealityToken } from '../../shared/upstream/fetchMixedRealityToken.js';
import { fetchWrapToken } from '../../shared/upstream/fetchWrapToken.js';
import { jwtExpiry } from '../../shared/upstream/tokenExpiry.js';
import { createUpstreamClient, type UpstreamClient } from '../../shared/upstream/upstreamClient.js';
import { UpstreamError } from '../../shared/upstream/upstreamErrors.js';
import type { UpstreamTarget } from '../../shared/upstream/upstreamFetch.js';
import { startUpstreamStub, type UpstreamStub } from '../support/upstreamStub.js';
import { loopbackHostPolicy } from './loopbackHostPolicy.js';
import { upstreamTestTls, type UpstreamTestTls } from './upstreamTestTls.js';

const now = new Date('2025-04-21T12:00:00Z');
const accountId = '35d830cb-f062-4062-9792-d6316039df56';
const accountKey = 'Z3JlYXQtYWNjb3VudC1rZXktZm9yLXRlc3RzLW9ubHk=';
const cognitiveKey = '6f65c0ffee6f65c0ffee6f65c0ffee00';
const wrapPassword = 'r8LuxCKDdGVzdC1wYXNzd29yZC1vbmx5LWZvci10ZXN0cw==';
const targetResourceId =
  '/subscriptions/0000/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/client-face';

let tls: UpstreamTestTls;
let stub: UpstreamStub;
let client: UpstreamClient;

beforeAll(async () => {
  tls = await upstreamTestTls();
  stub = await startUpstreamStub({
    tls: tls.server,
    clock: () => now,
    credentials: {
      mixedReality: { accountId, accountKey },
      cognitiveKey,
      wrap: { issuerName: 'owner', password: wrapPassword },
    },
  });
  client = createUpstreamClient({
    testTrustedCa: tls.clientCa,
    backoffBaseMs: 10,
    backoffMaxMs: 20,
    hostPolicy: loopbackHostPolicy,
  });
});

/** The stand-in as a fetch target (the URL as `checkUpstreamEndpoint` would hand it over). */
const at = (endpoint: string): UpstreamTarget => ({ client, endpoint: new URL(endpoint) });

afterAll(async () => {
  await client.close();
  await stub.close();
  await tls.dispose();
});

beforeEach(() => {
  stub.setFault(undefined);
  stub.resetRecords();
});

afterEach(() => {
  expect(stub.internalErrors).toEqual([]);
});

const rejection = async (promise: Promise<unknown>): Promise<UpstreamError> => {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(UpstreamError);
  return error as UpstreamError;
};

describe('Mixed Reality STS (docs/contracts/mixed-reality-sts.md)', () => {
  it('sends GET /accounts/{id}/token?api-version with Bearer id:key and reads AccessToken + exp', async () => {
    const token = await fetchMixedRealityToken(at(stub.url), { accountId, accountKey }, now);
    const [request] = stub.requests;
    expect(request).toMatchObject({
      method: 'GET',
      path: `/accounts/${accountId}/token?api-version=2019-02-28-preview`,
      body: '',
    });
    expect(request?.headers.authorization).toBe(`Bearer ${accountId}:${accountKey}`);
    expect(request?.headers.accept).toBe('application/json');
    expect(request?.headers['x-mrc-cv']).toMatch(/^[A-Za-z0-9+/]{22}$/);
    expect(token).toEqual({
      token: stub.issuedTokens[0],
      expiresAt: new Date(now.getTime() + 86_400_000),
      attempts: 1,
    });
  });

  it('a trailing slash of the endpoint is not doubled', async () => {
    await fetchMixedRealityToken(at(`${stub.url}/`), { accountId, accountKey }, now);
    expect(stub.requests[0]?.path.startsWith(`/accounts/${accountId}/token`)).toBe(true);
  });

  it('a wrong key is an upstream 401', async () => {
    const error = await rejection(fetchMixedRealityToken(at(stub.url), { accountId, accountKey: 'wrong' }, now));
    expect(error).toMatchObject({ failure: 'status', status: 401, attempts: 1 });
  });

  it('a garbled answer or a token without exp is a protocol failure, never passed on', async () => {
    stub.failNext({ kind: 'garbled' });
    expect((await rejection(fetchMixedRealityToken(at(stub.url), { accountId, accountKey }, now))).failure).toBe(
      'protocol',
    );
    stub.failNext({ kind: 'wrongToken' });
    const error = await rejection(fetchMixedRealityToken(at(stub.url), { accountId, accountKey }, now));
    expect(error.failure).toBe('protocol');
    expect(error.message).toBe('upstream token has no readable exp');
  });

  it('a token already expired by our clock is a protocol failure', async () => {
    const later = new Date(now.getTime() + 2 * 86_400_000);
    expect((await rejection(fetchMixedRealityToken(at(stub.url), { accountId, accountKey }, later))).message).toBe(
      'upstream token is already expired',
    );
  });
});

describe('Cognitive issueToken (docs/contracts/cognitive-issue-token.md)', () => {
  it('POSTs /sts/v1.0/issueToken with the key header and an empty body; reads the bare JWT', async () => {
    const token = await fetchCognitiveToken(at(stub.url), cognitiveKey, now);
    const [request] = stub.requests;
    expect(request).toMatchObject({ method: 'POST', path: '/sts/v1.0/issueToken', body: '' });
    expect(request?.headers['ocp-apim-subscription-key']).toBe(cognitiveKey);
    expect(request?.headers['content-length']).toBe('0');
    expect(token.token).toBe(stub.issuedTokens[0]);
    expect(token.expiresAt).toEqual(new Date(now.getTime() + 600_000));
  });

  it('a wrong key is a 401, an HTML answer a protocol failure', async () => {
    expect(await rejection(fetchCognitiveToken(at(stub.url), 'ffffffffffffffffffffffffffffffff', now))).toMatchObject({
      failure: 'status',
      status: 401,
    });
    stub.failNext({ kind: 'garbled' });
    expect((await rejection(fetchCognitiveToken(at(stub.url), cognitiveKey, now))).failure).toBe('protocol');
  });

  it('refuses an http endpoint before sending anything', async () => {
    const error = await rejection(fetchCognitiveToken(at(stub.url.replace('https:', 'http:')), cognitiveKey, now));
    expect(error.failure).toBe('configuration');
    expect(stub.count()).toBe(0);
  });
});

describe('Face issueLimitedAccessToken (docs/contracts/cognitive-limited-access-token.md)', () => {
  it('POSTs the JSON body with expiredTime in the query; exp = now + expiredTime', async () => {
    const request = {
      targetResourceId,
      featureFlags: ['Face.Identification', 'Face.Verification'],
      expiredTimeSeconds: 1_800,
    };
    const token = await fetchLimitedAccessToken(at(stub.url), cognitiveKey, request, now);
    const [sent] = stub.requests;
    expect(sent).toMatchObject({ method: 'POST', path: '/sts/v1.0/issueLimitedAccessToken?expiredTime=1800' });
    expect(sent?.headers['content-type']).toBe('application/json');
    expect(sent?.headers['ocp-apim-subscription-key']).toBe(cognitiveKey);
    expect(JSON.parse(sent?.body ?? '')).toEqual({
      targetAzureResourceId: targetResourceId,
      resourceId: targetResourceId,
      featureFlags: ['Face.Identification', 'Face.Verification'],
    });
    expect(token.expiresAt).toEqual(new Date(now.getTime() + 1_800_000));
    expect(jwtExpiry(token.token)).toEqual(token.expiresAt);
  });

  it('an upstream 400 is final (not retried)', async () => {
    const error = await rejection(
      fetchLimitedAccessToken(
        at(stub.url),
        cognitiveKey,
        { targetResourceId, featureFlags: [], expiredTimeSeconds: 3_600 },
        now,
      ),
    );
    expect(error).toMatchObject({ failure: 'status', status: 400, attempts: 1 });
    expect(stub.count()).toBe(1);
  });
});

describe('ACS WRAP v0.9 (docs/contracts/acs-wrap.md)', () => {
  const scope = 'http://contoso.servicebus.windows.net/queue?timeout=60';

  it('POSTs the form to /WRAPv0.9/ and returns the single-encoded SWT; expiry from expires_in when it is the earlier', async () => {
    const token = await fetchWrapToken(at(stub.url), wrapPassword, { issuerName: 'owner', scope }, now);
    const [sent] = stub.requests;
    expect(sent).toMatchObject({ method: 'POST', path: '/WRAPv0.9/' });
    expect(sent?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(sent?.body))).toEqual({
      wrap_name: 'owner',
      wrap_password: wrapPassword,
      wrap_scope: scope,
    });
    expect(token.token).toBe(stub.issuedTokens[0]);
    expect(token.token).toContain(`Audience=${encodeURIComponent(scope)}&ExpiresOn=`);
    expect(token.expiresAt).toEqual(new Date(now.getTime() + 10_799_000));
  });

  it('an endpoint that already ends in /WRAPv0.9 is used as it is', async () => {
    await fetchWrapToken(at(`${stub.url}/WRAPv0.9`), wrapPassword, { issuerName: 'owner', scope }, now);
    expect(stub.requests[0]?.path).toBe('/WRAPv0.9/');
  });

  it('a wrong password is a 401; a garbled or expiry-less answer a protocol failure', async () => {
    expect(await rejection(fetchWrapToken(at(stub.url), 'wrong', { issuerName: 'owner', scope }, now))).toMatchObject({
      status: 401,
    });
    stub.failNext({ kind: 'garbled' });
    expect(
      (await rejection(fetchWrapToken(at(stub.url), wrapPassword, { issuerName: 'owner', scope }, now))).failure,
    ).toBe('protocol');
    stub.failNext({ kind: 'wrongToken' });
    expect(
      (await rejection(fetchWrapToken(at(stub.url), wrapPassword, { issuerName: 'owner', scope }, now))).failure,
    ).toBe('protocol');
  });

  it("the SWT's own ExpiresOn wins over the envelope: an expired SWT announced with expires_in=999999999 is refused", async () => {
    stub.failNext({ kind: 'lifetime', ownSeconds: -60, envelopeSeconds: 999_999_999 });
    const error = await rejection(fetchWrapToken(at(stub.url), wrapPassword, { issuerName: 'owner', scope }, now));
    expect(error).toMatchObject({ failure: 'protocol', message: 'upstream SWT is already expired' });
    stub.failNext({ kind: 'lifetime', ownSeconds: 600, envelopeSeconds: 999_999_999 });
    const token = await fetchWrapToken(at(stub.url), wrapPassword, { issuerName: 'owner', scope }, now);
    expect(token.expiresAt).toEqual(new Date(now.getTime() + 600_000));
  });
});
