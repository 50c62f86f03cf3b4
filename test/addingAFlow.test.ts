import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badRequest } from '../shared/errors.js';
import { flowCatalogue, flowNames, type FlowDeclaration, type FlowName } from '../shared/flowCatalogue.js';
import { defineStsFunction } from '../shared/app/stsFunction.js';
import type { DemoCredentials } from '../tools/demoCredentials.js';
import { nextFuzzRequest } from '../tooling/fuzz/fuzzCases.js';
import { Random } from '../tooling/fuzz/random.js';
import { importFunctionFiles, startTestHost, type TestHost } from './support/localHostFixture.js';

/**
 * What docs/adding-a-flow.md promises: a flow declared once in the catalogue, plus its function file, is
 * served with the route, methods, error shape and headers of its declaration, listed in discovery, and
 * fuzzed, with nothing else edited. The flow here is a throwaway one, added to the catalogue of this test
 * process only (each test file runs in its own process).
 */

const THROWAWAY = 'throwawayToken' as FlowName;
const declaration: FlowDeclaration = {
  route: 'throwaway/v1/{tenant}/token',
  methods: ['POST'],
  errorShape: 'oauthJson',
  correlationHeader: { name: 'request-id', value: 'requestId' },
  discovery: { member: 'throwaway_token_endpoint', base: 'issuer' },
};
// The one line a new flow adds to shared/flowCatalogue.ts, made at run time.
(flowCatalogue as unknown as Record<string, FlowDeclaration>)[THROWAWAY] = declaration;
flowNames.push(THROWAWAY);

// Its function file: a handler and nothing else.
const throwaway = defineStsFunction({
  name: THROWAWAY,
  handle: async ({ request: req }) => {
    const tenant = req.params.tenant ?? '';
    if (tenant === 'bad') throw badRequest('The tenant is not valid.');
    return {
      response: { status: 200, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: `token for ${tenant}` },
    };
  },
});

let host: TestHost;
beforeAll(async () => {
  const files = await importFunctionFiles();
  host = await startTestHost({ definitions: [...files.map((file) => file.definition), throwaway] });
});
afterAll(async () => {
  await host.close();
});

describe('a flow declared once', () => {
  it('is served on its declared route and method, with the headers every answer carries', async () => {
    expect(throwaway.route).toBe(declaration.route);
    const answer = await request(`${host.url}/Throwaway/v1/contoso/token/`, { method: 'POST', body: '' });
    expect(answer.statusCode).toBe(200);
    expect(await answer.body.text()).toBe('token for contoso');
    expect(answer.headers['cache-control']).toBe('no-store, no-cache');
    expect(answer.headers['request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const wrongMethod = await request(`${host.url}/throwaway/v1/contoso/token`, { method: 'GET' });
    await wrongMethod.body.dump();
    expect(wrongMethod.statusCode).toBe(404);
  });

  it('refuses in its declared error shape', async () => {
    const answer = await request(`${host.url}/throwaway/v1/bad/token`, { method: 'POST', body: '' });
    expect(answer.statusCode).toBe(400);
    expect(await answer.body.json()).toEqual({
      error: 'invalid_request',
      error_description: 'The tenant is not valid.',
    });
  });

  it('is listed in the discovery document under its declared member', async () => {
    const answer = await request(`${host.url}/.well-known/openid-configuration`);
    const document = (await answer.body.json()) as Record<string, unknown>;
    expect(String(document.throwaway_token_endpoint)).toMatch(/\/throwaway\/v1\/(\{|%7B)tenant(\}|%7D)\/token$/);
  });

  it('is fuzzed on its route', () => {
    const random = new Random(21);
    const credentials: DemoCredentials = {
      storePath: '',
      mixedReality: { accountId: '722eb718-dd08-4fd9-8331-043f477b4e1f', accountKey: 'k' },
      isvFace: { name: 'face', key: 'k' },
      speech: { name: 'speech', key: 'k', resourceId: '/subscriptions/x' },
      wrap: { name: 'owner', key: 'k', scope: 'http://demo.servicebus.windows.net/' },
    };
    const requests = Array.from({ length: 2_000 }, () => nextFuzzRequest(random, credentials));
    const mine = requests.filter((fuzzed) => fuzzed.route === THROWAWAY);
    expect(mine.length).toBeGreaterThan(10);
    expect(
      mine.some(
        (fuzzed) =>
          fuzzed.mutations.length === 0 && fuzzed.method === 'POST' && /^\/throwaway\/v1\//.test(fuzzed.target),
      ),
    ).toBe(true);
  });
});
