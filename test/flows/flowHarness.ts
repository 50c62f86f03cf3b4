import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { loadConfig } from '../../shared/config.js';
import type { StsFunctionDefinition } from '../../shared/app/stsFunction.js';
import type { LedgerEntry } from '../../shared/ledger/ledger.js';
import { createServices, type StsServices } from '../../shared/services.js';
import { createStsJwtVerifier, type StsJwtClaims, type StsTokenKind } from '../../shared/verify/index.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';

/** The frozen instant every flow test runs at. */
export const FROZEN_NOW = new Date('2026-03-01T09:30:00.000Z');
export const FROZEN_SECONDS = Math.floor(FROZEN_NOW.getTime() / 1000);

/** Configuration of the flow tests: our own issuer and audiences, no ledger table (rows are captured). */
export const TEST_ENV = {
  STS_ISSUER: 'https://sts.test.example/',
  STS_AUDIENCE_MIXED_REALITY: 'https://mr.test.example/',
  STS_AUDIENCE_COGNITIVE: 'urn:ms.speechservices.{region}',
  STS_WRAP_ISSUER: 'https://contoso-sb.accesscontrol.test.example/',
  STS_LEDGER_MODE: 'off',
} as const;

/** A response as a client sees it: header names case-insensitive, body as text and bytes. */
export interface ObservedResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

export interface FlowHarness {
  readonly credentials: TestCredentials;
  readonly services: StsServices;
  /** Every ledger row written, issued and refused. */
  readonly ledgerRows: LedgerEntry[];
  /**
   * Calls a function's handler in process with a real `HttpRequest`, bound to `services` (default the
   * harness's own).
   */
  invoke(
    definition: StsFunctionDefinition,
    request: InProcessRequest,
    services?: StsServices,
  ): Promise<ObservedResponse>;
  /**
   * Verifies a JWT with the resource-server verification module (`shared/verify`), against the JWKS the
   * services publish, at the frozen time: signature, `typ: JWT`, `iss`, `aud`, `exp`/`nbf`, `iat`, `jti`.
   */
  /** Verifies with `./verify` as a resource server would; `tokenKind` as in its options (default `access`). */
  verifyJwt(token: string, audience: string, tokenKind?: StsTokenKind): Promise<{ payload: StsJwtClaims }>;
  close(): Promise<void>;
}

export interface InProcessRequest {
  readonly method: string;
  /** Path and query, e.g. `/sts/v1.0/issueToken?Subscription-Key=…`. */
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Uint8Array;
  /** Route parameters, as the host would bind them. */
  readonly params?: Record<string, string>;
}

/**
 * Creates test credentials and services on the frozen clock with a capturing ledger; `invoke` runs a
 * definition's handler bound to those services (`definition.handlerFor`).
 */
export async function startFlowHarness(env: Record<string, string> = {}): Promise<FlowHarness> {
  const clock = () => new Date(FROZEN_NOW);
  const credentials = await createTestCredentials({ clock });
  const base = await createServices(
    loadConfig({ ...TEST_ENV, ...env, STS_LOCAL_STORE_PATH: credentials.storePath }),
    clock,
  );
  const ledgerRows: LedgerEntry[] = [];
  const services: StsServices = {
    ...base,
    ledger: {
      record: async (entry) => {
        ledgerRows.push(entry);
      },
      close: async () => {},
    },
  };

  return {
    credentials,
    services,
    ledgerRows,
    async invoke(definition, request, bound = services) {
      const body =
        request.body === undefined
          ? undefined
          : typeof request.body === 'string'
            ? { string: request.body }
            : { bytes: request.body };
      const httpRequest = new HttpRequest({
        method: request.method,
        url: `http://127.0.0.1:7071${request.path}`,
        headers: request.headers ?? {},
        params: request.params ?? {},
        ...(body ? { body } : {}),
      });
      const context = new InvocationContext({ functionName: definition.name, logHandler: () => {} });
      const init = (await definition.handlerFor(bound)(httpRequest, context)) as HttpResponseInit;
      return observe(init);
    },
    async verifyJwt(token, audience, tokenKind) {
      const jwks = { keys: [...(await services.signingKeys.publicJwks(FROZEN_NOW))] };
      const verifier = createStsJwtVerifier({
        issuer: TEST_ENV.STS_ISSUER,
        audience,
        jwks,
        now: () => FROZEN_NOW,
        clockToleranceSeconds: 0,
        ...(tokenKind ? { tokenKind } : {}),
      });
      return { payload: await verifier.verify(token) };
    },
    async close() {
      await credentials.remove();
    },
  };
}

function observe(init: HttpResponseInit): ObservedResponse {
  const headers = new Headers(init.headers);
  const body = init.body;
  let text: string;
  if (body === undefined || body === null) text = '';
  else if (typeof body === 'string') text = body;
  else if (body instanceof Uint8Array) text = Buffer.from(body).toString('utf8');
  else throw new Error('the flow answered with a body type the tests do not read');
  return { status: init.status ?? 200, headers, text };
}

/** The headers every response must carry, success or error (docs/contracts/mixed-reality-sts.md#response, docs/contracts/acs-wrap.md#response). */
export function expectSecurityHeaders(headers: Headers): void {
  const missing: string[] = [];
  if (headers.get('cache-control') !== 'no-store, no-cache')
    missing.push(`cache-control=${headers.get('cache-control')}`);
  if (headers.get('pragma') !== 'no-cache') missing.push(`pragma=${headers.get('pragma')}`);
  if (headers.get('x-content-type-options') !== 'nosniff')
    missing.push(`x-content-type-options=${headers.get('x-content-type-options')}`);
  if (missing.length > 0) throw new Error(`security headers wrong: ${missing.join(', ')}`);
}
