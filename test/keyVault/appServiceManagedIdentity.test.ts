import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  APP_SERVICE_MSI_API_VERSION,
  AppServiceManagedIdentityCredential,
  ManagedIdentityTokenError,
  REFRESH_MARGIN_MS,
  parseTokenAnswer,
  resourceOf,
} from '../../shared/secrets/appServiceManagedIdentity.js';

/**
 * Our App Service managed-identity credential against a scripted token endpoint on loopback: what it sends,
 * how it caches and refreshes (injected clock), and how each failure looks. The Key Vault tests exercise it
 * end to end through the Key Vault test server's identity endpoint.
 */

const HEADER = 'platform-secret-header-value';
const VAULT_SCOPE = 'https://vault.azure.net/.default';
const START_MS = Date.UTC(2026, 0, 1);

type Answer = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let endpoint: string;
let answers: Answer[];
let seen: { url: URL; headers: IncomingMessage['headers'] }[];
let nowMs: number;

/** Answers 200 with a token that expires `lifetimeS` after the test clock's now. */
const tokenAnswer =
  (token: string, lifetimeS = 3_600): Answer =>
  (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(
      JSON.stringify({
        access_token: token,
        expires_on: String(Math.floor(nowMs / 1000) + lifetimeS),
        resource: 'https://vault.azure.net',
        token_type: 'Bearer',
      }),
    );
  };
const statusAnswer =
  (status: number, body: object): Answer =>
  (_req, res) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
const resetAnswer: Answer = (req) => req.socket.destroy();
const hangAnswer: Answer = () => undefined;

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ url: new URL(req.url ?? '/', endpoint), headers: req.headers });
    const answer = answers.shift() ?? statusAnswer(500, { message: 'no answer scripted' });
    answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/msi/token`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  answers = [];
  seen = [];
  nowMs = START_MS;
});

const credential = (clientId?: string, requestTimeoutMs = 5_000) =>
  new AppServiceManagedIdentityCredential({
    endpoint,
    identityHeader: HEADER,
    clientId,
    requestTimeoutMs,
    now: () => nowMs,
  });

describe('App Service managed identity: the request', () => {
  it('asks for the resource (the scope without /.default) with the identity header and api-version 2019-08-01', async () => {
    answers.push(tokenAnswer('token-1'));
    const token = await credential().getToken(VAULT_SCOPE);
    expect(token).toEqual({ token: 'token-1', expiresOnTimestamp: START_MS + 3_600_000, tokenType: 'Bearer' });
    expect(seen).toHaveLength(1);
    const [{ url, headers }] = seen as [(typeof seen)[number]];
    expect(url.pathname).toBe('/msi/token');
    expect(url.searchParams.get('api-version')).toBe(APP_SERVICE_MSI_API_VERSION);
    expect(url.searchParams.get('resource')).toBe('https://vault.azure.net');
    expect(url.searchParams.has('client_id')).toBe(false); // system-assigned
    expect(headers['x-identity-header']).toBe(HEADER);
  });

  it('names a user-assigned identity by its client id', async () => {
    answers.push(tokenAnswer('token-ua'));
    await credential('11111111-2222-3333-4444-555555555555').getToken([VAULT_SCOPE]);
    expect(seen[0]?.url.searchParams.get('client_id')).toBe('11111111-2222-3333-4444-555555555555');
  });

  it('refuses anything but exactly one scope', async () => {
    await expect(credential().getToken([])).rejects.toBeInstanceOf(ManagedIdentityTokenError);
    await expect(credential().getToken([VAULT_SCOPE, 'https://storage.azure.com/.default'])).rejects.toThrow(
      /exactly one scope/,
    );
    expect(seen).toHaveLength(0);
    expect(resourceOf('https://storage.azure.com/.default')).toBe('https://storage.azure.com');
  });
});

describe('App Service managed identity: cache and refresh', () => {
  it('serves the cached token until 5 minutes before expiry, then fetches a new one', async () => {
    answers.push(tokenAnswer('first'), tokenAnswer('second'));
    const identity = credential();
    expect((await identity.getToken(VAULT_SCOPE)).token).toBe('first');
    nowMs = START_MS + 3_600_000 - REFRESH_MARGIN_MS - 1;
    expect((await identity.getToken(VAULT_SCOPE)).token).toBe('first');
    expect(seen).toHaveLength(1);
    nowMs += 1;
    expect((await identity.getToken(VAULT_SCOPE)).token).toBe('second');
    expect(seen).toHaveLength(2);
  });

  it('refreshes a short-lived token at half its lifetime', async () => {
    answers.push(tokenAnswer('short', 120), tokenAnswer('next', 120));
    const identity = credential();
    await identity.getToken(VAULT_SCOPE);
    nowMs = START_MS + 59_000;
    expect((await identity.getToken(VAULT_SCOPE)).token).toBe('short');
    nowMs = START_MS + 60_000;
    expect((await identity.getToken(VAULT_SCOPE)).token).toBe('next');
  });

  it('callers that arrive together share one request', async () => {
    answers.push(tokenAnswer('shared'));
    const identity = credential();
    const tokens = await Promise.all([
      identity.getToken(VAULT_SCOPE),
      identity.getToken(VAULT_SCOPE),
      identity.getToken(VAULT_SCOPE),
    ]);
    expect(tokens.map((t) => t.token)).toEqual(['shared', 'shared', 'shared']);
    expect(seen).toHaveLength(1);
  });

  it('a failed early refresh keeps serving the still-valid token; once it has expired, the failure surfaces', async () => {
    answers.push(tokenAnswer('valid'), statusAnswer(500, { message: 'busy' }), statusAnswer(500, { message: 'busy' }));
    const identity = credential();
    await identity.getToken(VAULT_SCOPE);
    nowMs = START_MS + 3_600_000 - 60_000; // inside the refresh margin, not expired
    expect((await identity.getToken(VAULT_SCOPE)).token).toBe('valid');
    nowMs = START_MS + 3_600_000; // expired
    await expect(identity.getToken(VAULT_SCOPE)).rejects.toMatchObject({
      name: 'ManagedIdentityTokenError',
      failure: 'status',
      status: 500,
    });
    expect(seen).toHaveLength(3);
  });

  it('a failure is not cached: the next call asks again', async () => {
    answers.push(statusAnswer(503, { message: 'warming up' }), tokenAnswer('after'));
    const identity = credential();
    await expect(identity.getToken(VAULT_SCOPE)).rejects.toThrow(/answered 503: warming up/);
    expect((await identity.getToken(VAULT_SCOPE)).token).toBe('after');
  });
});

describe('App Service managed identity: failures', () => {
  it('an error answer says the status and the endpoint message, never the identity header', async () => {
    answers.push(statusAnswer(400, { error: 'invalid_request', error_description: 'Identity not found' }));
    const error = (await credential('unknown-id')
      .getToken(VAULT_SCOPE)
      .catch((e: unknown) => e)) as ManagedIdentityTokenError;
    expect(error).toBeInstanceOf(ManagedIdentityTokenError);
    expect(error.status).toBe(400);
    expect(error.failure).toBe('status');
    expect(error.message).toBe('The managed identity endpoint answered 400: invalid_request: Identity not found');
    expect(error.message).not.toContain(HEADER);
  });

  it('a dropped connection is retried once at once; two in a row fail as unreachable', async () => {
    answers.push(resetAnswer, tokenAnswer('second try'));
    expect((await credential().getToken(VAULT_SCOPE)).token).toBe('second try');
    answers.push(resetAnswer, resetAnswer);
    await expect(credential().getToken(VAULT_SCOPE)).rejects.toMatchObject({
      failure: 'unreachable',
      message: expect.stringMatching(/could not be reached/),
    });
    expect(seen).toHaveLength(4);
  });

  it('an endpoint that never answers fails after the request timeout, not retried', async () => {
    answers.push(hangAnswer);
    // Long enough that a busy machine still connects and sends within it (so "sent once" is what is checked).
    await expect(credential(undefined, 1_000).getToken(VAULT_SCOPE)).rejects.toMatchObject({
      failure: 'timeout',
      message: expect.stringMatching(/did not answer within 1000 ms/),
    });
    expect(seen).toHaveLength(1);
  });

  it.each([
    ['not JSON', 'not json', /not JSON/],
    ['no access_token', JSON.stringify({ expires_on: '1767229200' }), /without an access_token/],
    ['no expires_on', JSON.stringify({ access_token: 'x' }), /usable expires_on/],
    ['an unreadable expires_on', JSON.stringify({ access_token: 'x', expires_on: 'soon' }), /usable expires_on/],
  ])('a 200 answer with %s is an error, not a token', (_label, body, message) => {
    expect(() => parseTokenAnswer(body)).toThrow(message);
  });

  it('an already-expired token is refused', async () => {
    answers.push(tokenAnswer('stale', -10));
    await expect(credential().getToken(VAULT_SCOPE)).rejects.toThrow(/expired token/);
  });

  it('reads expires_on given as a number of seconds, or as a date', () => {
    expect(parseTokenAnswer(JSON.stringify({ access_token: 'a', expires_on: 1_767_229_200 })).expiresOnTimestamp).toBe(
      1_767_229_200_000,
    );
    expect(
      parseTokenAnswer(JSON.stringify({ access_token: 'a', expires_on: '2026-01-01T01:00:00Z' })).expiresOnTimestamp,
    ).toBe(Date.UTC(2026, 0, 1, 1));
  });
});
