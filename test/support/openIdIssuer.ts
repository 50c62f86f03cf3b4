import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { loopbackCertificate } from '../../tooling/doubles/testCertificates.js';

/**
 * A Microsoft Entra stand-in for tests: an HTTPS server on 127.0.0.1 (its certificate from the test CA, trusted
 * through NODE_EXTRA_CA_CERTS like the Key Vault test server's) that serves one tenant's OpenID discovery
 * document and JWKS at Entra's paths, and signs access tokens with its keys. Counters show how often the STS
 * asked; switches fail the endpoints or bend the discovery document.
 *
 * Paths, as Entra's v2.0 endpoint has them:
 *   `/<tenant>/v2.0/.well-known/openid-configuration` → `{ issuer: <origin>/<tenant>/v2.0, jwks_uri, … }`
 *   `/<tenant>/discovery/v2.0/keys`                    → `{ keys: [{ kty, use: 'sig', kid, n, e }, …] }`
 */

export type SigningAlgorithm = 'RS256' | 'ES256';

interface IssuerKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  readonly publicJwk: JWK;
}

export interface OpenIdIssuer {
  /** The issuer (what `STS_ENTRA_AUTHORITY` is set to): `https://127.0.0.1:<port>/<tenant>/v2.0`. */
  readonly authority: string;
  readonly tenantId: string;
  /** Requests served (or failed) per document since start or the last {@link resetCounters}. */
  readonly requests: { discovery: number; jwks: number };
  /**
   * `false`: answer. A number: answer every request with that status. `'reset'`: destroy the connection.
   */
  outage: false | number | 'reset';
  /** Members merged into the discovery document (a foreign `issuer`, an http `jwks_uri`). */
  discoveryOverride: Record<string, unknown>;
  /** The `kid` tokens are signed with by default (the newest key). */
  readonly currentKid: string;
  /** Adds a signing key (published from now on) and makes it current; returns its kid. */
  addKey(alg?: SigningAlgorithm): Promise<string>;
  /** Stops publishing a key (its tokens stop verifying once the STS refetches). */
  removeKey(kid: string): void;
  /** The public JWK published for `kid` (to forge HMAC tokens with it in tests). */
  publicJwk(kid?: string): JWK;
  /** Signs `claims` with the key `kid` (default: current); `typ: JWT` and `kid` in the header. */
  sign(claims: JWTPayload, options?: { readonly kid?: string; readonly headerKid?: string }): Promise<string>;
  resetCounters(): void;
  close(): Promise<void>;
}

/** Starts an issuer with one RS256 key, for a random tenant. */
export async function startOpenIdIssuer(): Promise<OpenIdIssuer> {
  const tenantId = randomUUID();
  const keys: IssuerKey[] = [];
  const sockets = new Set<Socket>();
  let origin = '';
  let currentKid = '';

  const newKey = async (alg: SigningAlgorithm): Promise<string> => {
    const { privateKey, publicKey } = await generateKeyPair(alg);
    const kid = randomUUID().replace(/-/g, '');
    const exported = await exportJWK(publicKey);
    keys.push({ kid, alg, privateKey, publicJwk: { ...exported, use: 'sig', kid } });
    currentKid = kid;
    return kid;
  };

  const issuer: OpenIdIssuer = {
    get authority() {
      return `${origin}/${tenantId}/v2.0`;
    },
    tenantId,
    requests: { discovery: 0, jwks: 0 },
    outage: false,
    discoveryOverride: {},
    get currentKid() {
      return currentKid;
    },
    addKey: (alg = 'RS256') => newKey(alg),
    removeKey(kid) {
      const index = keys.findIndex((k) => k.kid === kid);
      if (index >= 0) keys.splice(index, 1);
    },
    publicJwk(kid = currentKid) {
      const key = keys.find((k) => k.kid === kid);
      if (!key) throw new Error(`no key ${kid}`);
      return key.publicJwk;
    },
    async sign(claims, options = {}) {
      const key = keys.find((k) => k.kid === (options.kid ?? currentKid));
      if (!key) throw new Error(`no key ${options.kid ?? currentKid}`);
      return new SignJWT(claims)
        .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: options.headerKid ?? key.kid })
        .sign(key.privateKey);
    },
    resetCounters() {
      issuer.requests.discovery = 0;
      issuer.requests.jwks = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  await newKey('RS256');

  const server: Server = createServer(await loopbackCertificate(), (request, response) => {
    const path = new URL(request.url ?? '/', origin).pathname;
    const document =
      path === `/${tenantId}/v2.0/.well-known/openid-configuration`
        ? 'discovery'
        : path === `/${tenantId}/discovery/v2.0/keys`
          ? 'jwks'
          : undefined;
    if (document) issuer.requests[document] += 1;
    if (issuer.outage === 'reset') {
      request.socket.destroy();
      return;
    }
    if (typeof issuer.outage === 'number') {
      response
        .writeHead(issuer.outage, { 'content-type': 'application/json' })
        .end('{"error":"temporarily_unavailable"}');
      return;
    }
    if (!document || request.method !== 'GET') {
      response.writeHead(404).end();
      return;
    }
    const body =
      document === 'discovery'
        ? {
            issuer: issuer.authority,
            token_endpoint: `${origin}/${tenantId}/oauth2/v2.0/token`,
            jwks_uri: `${origin}/${tenantId}/discovery/v2.0/keys`,
            id_token_signing_alg_values_supported: ['RS256'],
            ...issuer.discoveryOverride,
          }
        : { keys: keys.map((k) => k.publicJwk) };
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return issuer;
}
