import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { Agent, request } from 'undici';
import { expect } from 'vitest';
import { definition as issueLimitedAccessToken } from '../../functions/issueLimitedAccessToken.js';
import { definition as issueToken } from '../../functions/issueToken.js';
import { definition as mixedRealityToken } from '../../functions/mixedRealityToken.js';
import { definition as wrapToken } from '../../functions/wrapToken.js';
import { loadConfig } from '../../shared/config.js';
import { tokenFlowNames, type TokenFlowName } from '../../shared/flowCatalogue.js';
import { CredentialDirectory } from '../../shared/credentials/credentialDirectory.js';
import type { StsFunctionDefinition } from '../../shared/app/stsFunction.js';
import type { SecretStore } from '../../shared/secrets/secretStore.js';
import { createServices, type StsServices } from '../../shared/services.js';
import type { TestCredentials } from '../support/testCredentials.js';

/** The token flows, by their catalogue names (`shared/flowCatalogue.ts`). */
export type TokenFlow = TokenFlowName;
export const TOKEN_FLOWS: readonly TokenFlow[] = tokenFlowNames;

/** Each token flow's function definition; the compiler asks for one per catalogue token flow. */
export const definitionOf: Readonly<Record<TokenFlow, StsFunctionDefinition>> = {
  mixedRealityToken,
  issueToken,
  issueLimitedAccessToken,
  wrapToken,
};

/** A request as a client sends it: path with query, headers, body. */
export interface ClientRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
  /** Route parameters, for in-process calls (the host binds them over HTTP). */
  readonly params?: Record<string, string>;
}

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

export const WRAP_SCOPE = 'http://contoso.servicebus.windows.net/';

/**
 * A request of `flow` presenting `key` (the valid one when omitted) for the test credential of that flow:
 * the Mixed Reality account, the Speech resource, the ISV Face resource, the WRAP `owner` of `contoso`.
 */
export function flowRequest(flow: TokenFlow, credentials: TestCredentials, key?: string): ClientRequest {
  switch (flow) {
    case 'mixedRealityToken': {
      const { accountId, keys } = credentials.mixedReality.account;
      return {
        method: 'GET',
        path: `/accounts/${accountId}/token?api-version=2019-02-28-preview`,
        headers: { authorization: `Bearer ${accountId}:${key ?? keys[0]}` },
        params: { accountId },
      };
    }
    case 'issueToken':
      return {
        method: 'POST',
        path: '/sts/v1.0/issueToken',
        headers: { 'ocp-apim-subscription-key': key ?? credentials.cognitive.speech.keys[0] },
        body: '',
      };
    case 'issueLimitedAccessToken':
      return {
        method: 'POST',
        path: '/sts/v1.0/issueLimitedAccessToken?expiredTime=3600',
        headers: {
          'ocp-apim-subscription-key': key ?? credentials.cognitive.isvFace.keys[0],
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          targetAzureResourceId: credentials.cognitive.speech.resourceId,
          featureFlags: ['Face.Identification'],
        }),
      };
    case 'wrapToken':
      return {
        method: 'POST',
        path: '/WRAPv0.9/',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          wrap_name: 'owner',
          wrap_password: key ?? credentials.wrap.owner.keys[0],
          wrap_scope: WRAP_SCOPE,
        }).toString(),
      };
  }
}

/** Sends `req` to a running host over HTTP (undici), from the loopback address `from` when given. */
export async function sendHttp(baseUrl: string, req: ClientRequest, from?: LoopbackClient): Promise<Answer> {
  const response = await request(`${baseUrl}${req.path}`, {
    method: req.method,
    headers: req.headers,
    ...(from ? { dispatcher: from.dispatcher } : {}),
    ...(req.body === undefined || req.method === 'GET' ? {} : { body: req.body }),
  });
  const text = await response.body.text();
  const headers = new Headers();
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return { status: response.statusCode, headers, text };
}

/** A client socket bound to one loopback source address (127.0.x.y): distinct addresses stand in for distinct clients. */
export interface LoopbackClient {
  readonly address: string;
  readonly dispatcher: Agent;
}

/** Clients by source address, created on first use; {@link closeLoopbackClients} ends their connections. */
const loopbackClients = new Map<string, LoopbackClient>();

/** The client whose connections leave from `address` (which must be in 127.0.0.0/8). */
export function loopbackClient(address: string): LoopbackClient {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address)) throw new Error(`not a loopback address: ${address}`);
  let client = loopbackClients.get(address);
  if (!client) {
    client = { address, dispatcher: new Agent({ localAddress: address }) };
    loopbackClients.set(address, client);
  }
  return client;
}

export async function closeLoopbackClients(): Promise<void> {
  const clients = [...loopbackClients.values()];
  loopbackClients.clear();
  await Promise.all(clients.map((client) => client.dispatcher.close()));
}

/**
 * Calls a flow's handler in process, bound to `services`, as the Functions host would, with `clientIp` as
 * X-Forwarded-For.
 */
export async function invokeInProcess(
  flow: TokenFlow,
  req: ClientRequest,
  options: { services: StsServices; clientIp?: string; log?: (line: string) => void },
): Promise<Answer> {
  const definition = definitionOf[flow];
  const headers = { ...req.headers, ...(options.clientIp ? { 'x-forwarded-for': options.clientIp } : {}) };
  const httpRequest = new HttpRequest({
    method: req.method,
    url: `https://sts.test.example${req.path}`,
    headers,
    params: req.params ?? {},
    ...(req.body === undefined ? {} : { body: { string: req.body } }),
  });
  const log = options.log;
  const context = new InvocationContext({
    functionName: definition.name,
    logHandler: log ? (level, ...args) => log(`[${level}] ${args.map(String).join(' ')}`) : () => {},
  });
  const init = (await definition.handlerFor(options.services)(httpRequest, context)) as HttpResponseInit;
  const body = init.body;
  return {
    status: init.status ?? 200,
    headers: new Headers(init.headers),
    text:
      body === undefined || body === null
        ? ''
        : typeof body === 'string'
          ? body
          : Buffer.from(body as Uint8Array).toString('utf8'),
  };
}

/**
 * Asserts that a refusal is in `flow`'s documented error shape (docs/contracts/mixed-reality-sts.md#response, docs/contracts/cognitive-issue-token.md#errors, docs/contracts/acs-wrap.md#errors): Mixed
 * Reality answers with headers only; Cognitive with `{"error":{"code","message"}}`; WRAP with the ACS
 * `Error:Code:…` text. `Retry-After` is required for 429 and 503.
 */
export function expectFlowErrorShape(flow: TokenFlow, answer: Answer, status: number): void {
  expect(answer.status).toBe(status);
  if (status === 429 || status === 503) expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(answer.headers.get('cache-control')).toBe('no-store, no-cache');
  switch (flow) {
    case 'mixedRealityToken':
      expect(answer.text).toBe('');
      expect(answer.headers.get('ms-cv')).toMatch(/^[A-Za-z0-9+/]{22}\.0$/);
      break;
    case 'issueToken':
    case 'issueLimitedAccessToken': {
      expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
      const body = JSON.parse(answer.text) as { error: { code: string; message: string } };
      expect(Object.keys(body)).toEqual(['error']);
      expect(body.error.code).toBe(status === 400 ? 'BadArgument' : String(status));
      expect(body.error.message.length).toBeGreaterThan(0);
      break;
    }
    case 'wrapToken':
      expect(answer.headers.get('content-type')).toBe('text/plain; charset=us-ascii');
      expect(answer.text).toMatch(
        new RegExp(
          `^Error:Code:${status}:SubCode:T0:Detail:.+ :TraceID:[0-9a-f-]{36}:TimeStamp:\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ$`,
        ),
      );
      break;
  }
}

/** A secret store that counts the reads reaching it (the "vault calls"). */
export function countingStore(inner: SecretStore): SecretStore & { reads: number } {
  const counting = {
    reads: 0,
    getSecret(name: string) {
      counting.reads += 1;
      return inner.getSecret(name);
    },
    getFreshSecret(name: string) {
      counting.reads += 1;
      return inner.getFreshSecret(name);
    },
    getSecretVersions(name: string) {
      return inner.getSecretVersions(name);
    },
  };
  return counting;
}

/**
 * Services for `credentials` on `clock`, ledger off, with every credential read counted: `store.reads` is
 * what a vault would have been asked.
 */
export async function countedServices(
  credentials: TestCredentials,
  clock: () => Date,
  env: Record<string, string> = {},
): Promise<{ services: StsServices; store: SecretStore & { reads: number } }> {
  const base = await createServices(
    loadConfig({
      STS_ISSUER: 'https://sts.test.example/',
      STS_LEDGER_MODE: 'off',
      STS_LOCAL_STORE_PATH: credentials.storePath,
      ...env,
    }),
    clock,
  );
  const store = countingStore(base.secrets);
  return { services: { ...base, credentials: new CredentialDirectory(store) }, store };
}
