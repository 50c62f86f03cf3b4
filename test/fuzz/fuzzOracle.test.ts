import { describe, expect, it } from 'vitest';
import type { DemoCredentials } from '../../tools/demoCredentials.js';
import {
  credentialPresented,
  refusedOnSize,
  routedSegments,
  servedByAFunction,
  type FuzzRequest,
} from '../../tooling/fuzz/fuzzCases.js';

/**
 * The fuzzer's oracle: which requests still present a valid credential as the host routes them. A request
 * it wrongly calls broken turns an honest 200 into a false "auth bypass"; one it wrongly calls intact would
 * hide a real bypass. Both directions are checked.
 */

const ACCOUNT = '722eb718-dd08-4fd9-8331-043f477b4e1f';
const KEY = 'the-account-key';
const credentials = {
  storePath: '',
  mixedReality: { accountId: ACCOUNT, accountKey: KEY },
  isvFace: { name: 'face', key: 'face-key' },
  speech: { name: 'speech', key: 'speech-key', resourceId: '/subscriptions/x' },
  wrap: { name: 'owner', key: 'wrap-key', scope: 'http://demo.servicebus.windows.net/' },
} satisfies DemoCredentials;

const mixedReality = (target: string, key = KEY): FuzzRequest => ({
  route: 'mixedRealityToken',
  method: 'GET',
  target,
  headers: [['Authorization', `Bearer ${ACCOUNT}:${key}`]],
  body: Buffer.alloc(0),
  framing: 'content-length',
  httpVersion: 'HTTP/1.1',
  credentialIntact: undefined,
  mutations: [],
  needsRaw: false,
  omitHost: false,
});
const encoded = (text: string): string =>
  [...text].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('');

describe('fuzz oracle: what the host normalises', () => {
  it.each([
    `/accounts/${ACCOUNT}/token`,
    `/Accounts/./${ACCOUNT}/token`,
    `/./accounts/${ACCOUNT}/token`,
    `/accounts/%2E/${ACCOUNT}/token`,
    `/accounts/x/../${ACCOUNT}/token`,
    `/accounts/x/%2e%2E/${ACCOUNT}/token`,
    `/ACC%6funts/${encoded(ACCOUNT)}/TOKEN`,
    `/accounts/${ACCOUNT.toUpperCase()}/token/`,
    `/accounts/${ACCOUNT}/token/.`,
    `/accounts/${ACCOUNT}/token?api-version=2019-02-28-preview`,
  ])('%s still presents the account key', (target) => {
    expect(credentialPresented(mixedReality(target), credentials)).toBe(true);
  });

  it.each([
    `/accounts/${ACCOUNT}/../token`,
    `/accounts/${ACCOUNT}/%2e%2e/00000000-0000-0000-0000-000000000000/token`,
    `/accounts/${ACCOUNT}%2Ftoken`,
    `/accounts/${ACCOUNT}/token//`,
    `//accounts/${ACCOUNT}/token`,
    `/accounts/${ACCOUNT}0/token`,
    `/accounts/${ACCOUNT}/token/x`,
    `/accounts/${ACCOUNT}/token%zz`,
  ])('%s does not present it', (target) => {
    expect(credentialPresented(mixedReality(target), credentials)).toBe(false);
  });

  it('a wrong key is never a valid credential, whatever the path', () => {
    expect(credentialPresented(mixedReality(`/Accounts/./${ACCOUNT}/token`, 'wrong'), credentials)).toBe(false);
  });

  it('routes segments as the host does: an encoded slash stays inside its segment', () => {
    expect(routedSegments('/a/%2F/b/')).toEqual(['a', '/', 'b']);
    expect(routedSegments('/a/./b/../c')).toEqual(['a', 'c']);
    expect(routedSegments('/%zz')).toBeUndefined();
  });
});

describe('fuzz oracle: refusal on size', () => {
  const limits = { maxBodyBytes: 100, maxUrlLength: 50, maxHeaderBytes: 200, maxHeaderCount: 5 };
  it('knows a body, URL or header block over the limits from one within them', () => {
    const small = mixedReality('/accounts/x/token');
    expect(refusedOnSize(small, limits)).toBe(false);
    expect(refusedOnSize({ ...small, body: Buffer.alloc(101) }, limits)).toBe(true);
    expect(refusedOnSize({ ...small, target: `/${'a'.repeat(50)}` }, limits)).toBe(true);
    expect(refusedOnSize({ ...small, headers: [['X', 'v'.repeat(200)]] }, limits)).toBe(true);
    expect(
      refusedOnSize({ ...small, headers: Array.from({ length: 6 }, (): [string, string] => ['X', '1']) }, limits),
    ).toBe(true);
  });
});

describe('fuzz oracle: an early 404', () => {
  it('counts a 404 as the right early answer only where no function answers the route and method', () => {
    const request = mixedReality('/accounts/x/token');
    expect(servedByAFunction(request)).toBe(true);
    expect(servedByAFunction({ ...request, method: 'get' })).toBe(true);
    expect(servedByAFunction({ ...request, method: 'PATCH' })).toBe(false);
    expect(servedByAFunction({ ...request, route: 'unknown', target: '/favicon.ico', method: 'POST' })).toBe(false);
  });
});
