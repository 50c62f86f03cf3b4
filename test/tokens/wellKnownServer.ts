import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { definition as jwksDefinition } from '../../functions/jwks.js';
import { definition as discoveryDefinition } from '../../functions/openidConfiguration.js';
import { loadConfig } from '../../shared/config.js';
import { createServices, type StsServices } from '../../shared/services.js';
import { createJwtIssuer } from '../../shared/tokens/jwtIssuer.js';
import { SigningKeyRing } from '../../shared/tokens/signingKeyRing.js';
import type { SigningKeyFixture } from './signingKeyFixture.js';

/** A loopback HTTP server that serves the discovery and JWKS functions, as a resource server reaches them. */
export interface WellKnownServer {
  /** `http://127.0.0.1:<port>/`, also the configured issuer. */
  readonly issuer: string;
  readonly services: StsServices;
  readonly ring: SigningKeyRing;
  /** Answers from now on with `services` instead of {@link WellKnownServer.services}. */
  serveWith(services: StsServices): void;
  /** Requests served, by path. */
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

/**
 * Starts the server on a free port, serving with services whose issuer is that URL, whose ring reads the
 * fixture's store on its frozen clock, and whose JWT issuer signs from that ring.
 */
export async function startWellKnownServer(
  fixture: SigningKeyFixture,
  env: Record<string, string> = {},
): Promise<WellKnownServer> {
  const routes = new Map([
    ['/.well-known/openid-configuration', discoveryDefinition],
    ['/.well-known/jwks.json', jwksDefinition],
  ]);
  const hits = new Map<string, number>();
  let origin = '';
  let serving: StsServices | undefined; // set below, once the issuer (this server's URL) is known
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    const definition = routes.get(url.pathname);
    if (!definition || !serving) {
      res.writeHead(404).end();
      return;
    }
    const headers = Object.fromEntries(
      Object.entries(req.headers).flatMap(([name, value]) => (typeof value === 'string' ? [[name, value]] : [])),
    );
    const request = new HttpRequest({ method: req.method ?? 'GET', url: url.href, headers });
    const context = new InvocationContext({ functionName: definition.name, logHandler: () => {} });
    void Promise.resolve(definition.handlerFor(serving)(request, context)).then((result) => {
      const init = result as HttpResponseInit;
      const body = typeof init.body === 'string' ? init.body : '';
      res.writeHead(init.status ?? 200, {
        ...(init.headers as Record<string, string>),
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  const config = loadConfig({
    STS_ISSUER: origin,
    STS_LEDGER_MODE: 'off',
    STS_LOCAL_STORE_PATH: fixture.store.path,
    ...env,
  });
  const ring = new SigningKeyRing({
    secrets: fixture.store,
    clock: fixture.clock,
    maxAgeSeconds: config.secretCache.maxAgeSeconds,
  });
  const base = await createServices(config, fixture.clock);
  const services: StsServices = {
    ...base,
    secrets: fixture.store,
    signingKeys: ring,
    jwtIssuer: createJwtIssuer(config.issuer, ring),
  };
  serving = services;

  return {
    issuer: origin,
    services,
    ring,
    hits,
    serveWith(other) {
      serving = other;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
