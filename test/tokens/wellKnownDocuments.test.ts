import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { flowDeclaration, flowNames, type FlowName } from '../../shared/flowCatalogue.js';
import type { StsFunctionDefinition } from '../../shared/app/stsFunction.js';
import { LONGEST_TOKEN_LIFETIME_SECONDS, SigningKeyRing } from '../../shared/tokens/signingKeyRing.js';
import { createSigningKeyFixture, type SigningKeyFixture } from './signingKeyFixture.js';
import { startWellKnownServer, type WellKnownServer } from './wellKnownServer.js';

const WRAP_ISSUER = 'https://contoso-sb.accesscontrol.test.example/';
let fixture: SigningKeyFixture;
let server: WellKnownServer;

beforeEach(async () => {
  fixture = await createSigningKeyFixture();
  server = await startWellKnownServer(fixture, { STS_WRAP_ISSUER: WRAP_ISSUER });
});
afterEach(async () => {
  await server.close();
  await fixture.dispose();
});

async function get(path: string, headers: Record<string, string> = {}) {
  const response = await request(new URL(path, server.issuer), { headers });
  return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
}

function maxAgeOf(cacheControl: unknown): number {
  const match = /^public, max-age=(\d+)$/.exec(String(cacheControl));
  if (!match) throw new Error(`not a public max-age Cache-Control: ${String(cacheControl)}`);
  return Number(match[1]);
}

describe('GET /.well-known/openid-configuration', () => {
  it('describes the configured issuer, JWKS, the four token endpoints and the algorithms', async () => {
    const response = await get('/.well-known/openid-configuration');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const document = JSON.parse(response.body) as Record<string, unknown>;
    const members = flowNames.flatMap((flow) => flowDeclaration(flow).discovery?.member ?? []);
    expect(Object.keys(document).sort()).toEqual(
      ['issuer', 'jwks_uri', 'id_token_signing_alg_values_supported', ...members].sort(),
    );
    expect(document).toMatchObject({
      issuer: server.issuer,
      jwks_uri: `${server.issuer}.well-known/jwks.json`,
      id_token_signing_alg_values_supported: ['ES256', 'RS256'],
      mixed_reality_token_endpoint: `${server.issuer}accounts/{accountId}/token`,
      cognitive_services_token_endpoint: `${server.issuer}sts/v1.0/issueToken`,
      limited_access_token_endpoint: `${server.issuer}sts/v1.0/issueLimitedAccessToken`,
      wrap_token_endpoint: `${WRAP_ISSUER}WRAPv0.9`,
    });
  });

  it('advertises exactly the routes the functions register', async () => {
    const document = JSON.parse((await get('/.well-known/openid-configuration')).body) as Record<string, string>;
    const path = (url: string | undefined) => new URL(url ?? '').pathname.slice(1).replace(/%7B(\w+)%7D/g, '{$1}');
    /** The route each function file registers (its definition), by catalogue name. */
    const registered = async (flow: FlowName): Promise<string> =>
      (
        (await import(/* @vite-ignore */ new URL(`../../functions/${flow}.ts`, import.meta.url).href)) as {
          definition: StsFunctionDefinition;
        }
      ).definition.route;
    expect(path(document.jwks_uri)).toBe(await registered('jwks'));
    const advertised = flowNames.filter((flow) => flowDeclaration(flow).discovery !== undefined);
    expect(advertised.length).toBeGreaterThan(0);
    for (const flow of advertised) {
      const member = flowDeclaration(flow).discovery?.member ?? '';
      expect(path(document[member]), member).toBe(await registered(flow));
    }
    expect(await registered('openidConfiguration')).toBe('.well-known/openid-configuration');
  });

  it('never takes the issuer from the request URL or Host header', async () => {
    const response = await get('/.well-known/openid-configuration', {
      host: 'evil.example',
      'x-forwarded-host': 'evil.example',
    });
    expect(response.body).not.toContain('evil.example');
    expect(JSON.parse(response.body)).toMatchObject({ issuer: server.issuer });
  });

  it('is publicly cacheable for less than the rotation overlap', async () => {
    const { headers } = await get('/.well-known/openid-configuration');
    expect(maxAgeOf(headers['cache-control'])).toBeLessThan(LONGEST_TOKEN_LIFETIME_SECONDS);
    expect(headers.pragma).toBeUndefined();
    expect(headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('GET /.well-known/jwks.json', () => {
  it('publishes the verifying keys with public members only, cacheable for less than the overlap', async () => {
    await fixture.addKey('ES256');
    await fixture.addKey('RS256');
    const response = await get('/.well-known/jwks.json');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const maxAge = maxAgeOf(response.headers['cache-control']);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThan(LONGEST_TOKEN_LIFETIME_SECONDS);
    const { keys } = JSON.parse(response.body) as { keys: Record<string, unknown>[] };
    expect(keys.map((key) => key.kty).sort()).toEqual(['EC', 'RSA']);
    const allowed = new Set(['kty', 'crv', 'x', 'y', 'n', 'e', 'kid', 'alg', 'use']);
    for (const key of keys) {
      for (const member of Object.keys(key)) expect(allowed.has(member)).toBe(true);
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key).not.toHaveProperty(member);
    }
    expect(response.body).not.toMatch(/"(d|p|q|dp|dq|qi|k)"\s*:/);
  });

  it('answers 503 with Retry-After in the OAuth JSON shape when the key store has never been readable', async () => {
    const failing = {
      ...server.services,
      signingKeys: new SigningKeyRing({
        secrets: {
          getSecret: async () => undefined,
          getFreshSecret: async () => undefined,
          getSecretVersions: async () => Promise.reject(new Error('down')),
        },
        clock: fixture.clock,
        maxAgeSeconds: 60,
      }),
    };
    server.serveWith(failing);
    const response = await get('/.well-known/jwks.json');
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('30');
    expect(JSON.parse(response.body)).toEqual({
      error: 'temporarily_unavailable',
      error_description: 'The token service is temporarily unavailable. Retry later.',
    });
  });
});
