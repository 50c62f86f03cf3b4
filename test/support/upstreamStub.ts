import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TlsKeyPair } from '../../tooling/doubles/testCertificates.js';

/**
 * A stand-in for the real Azure token services, on loopback over HTTPS, for the upstream-mode tests
 * (docs/upstream.md). It answers the real wire shapes of docs/contracts/README.md (Mixed Reality STS, Cognitive
 * issueToken and issueLimitedAccessToken, ACS WRAP v0.9), checks the real keys it is given, counts every
 * request, and has fault switches: slow, any status with `Retry-After`, connection reset, a garbled
 * answer, a token without `exp`, and key rotation (a 401 until the caller presents the new key).
 *
 * The tokens it mints are JWT-shaped with a random signature: the upstream client never verifies them.
 */

export interface UpstreamStubCredentials {
  mixedReality: { accountId: string; accountKey: string };
  cognitiveKey: string;
  wrap: { issuerName: string; password: string };
}

export interface UpstreamStubOptions {
  readonly tls: TlsKeyPair;
  /** Clock for `exp` (share the frozen clock of the code under test). Default: real time. */
  readonly clock?: () => Date;
  /** The real keys the stub accepts; mutate `stub.credentials` to rotate one. */
  readonly credentials: UpstreamStubCredentials;
  readonly lifetimes?: {
    readonly mixedRealitySeconds?: number;
    readonly cognitiveSeconds?: number;
    readonly wrapSeconds?: number;
  };
}

export type UpstreamFault =
  /** Answer normally, but only after `delayMs`. */
  | { readonly kind: 'slow'; readonly delayMs: number }
  /** Answer `status` (empty body), with `Retry-After: retryAfter` when given. */
  | { readonly kind: 'status'; readonly status: number; readonly retryAfter?: string }
  /** Reset the connection without answering. */
  | { readonly kind: 'reset' }
  /** Answer 200 with a body that is not the documented shape. */
  | { readonly kind: 'garbled' }
  /** Answer 200 in the documented shape, but with a token that has no expiry. */
  | { readonly kind: 'wrongToken' }
  /**
   * Answer 200 with a token whose own expiry (`exp`, `ExpiresOn`) is `ownSeconds` from now (negative: already
   * expired) and, for WRAP, an envelope announcing `envelopeSeconds` (default `ownSeconds - 1`).
   */
  | { readonly kind: 'lifetime'; readonly ownSeconds: number; readonly envelopeSeconds?: number };

export type UpstreamOperation =
  'mixedRealityToken' | 'issueToken' | 'issueLimitedAccessToken' | 'wrapToken' | 'unknown';

export interface RecordedUpstreamRequest {
  readonly operation: UpstreamOperation;
  readonly method: string;
  /** Path and query as received. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

export interface UpstreamStub {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  /** Mutable: assign a new key to simulate a rotation (the old key then earns a 401). */
  readonly credentials: UpstreamStubCredentials;
  /** Every request received, faulted ones included. */
  readonly requests: readonly RecordedUpstreamRequest[];
  /** Every token (JWT or single-encoded SWT) the stub handed out. */
  readonly issuedTokens: readonly string[];
  /** Exceptions inside the stub itself (tests assert there are none). */
  readonly internalErrors: readonly unknown[];
  /** Requests received so far, optionally for one operation. */
  count(operation?: UpstreamOperation): number;
  /** TLS connections accepted so far (keep-alive reuse keeps this low). */
  connectionCount(): number;
  /** Applies `fault` to the next `times` requests (queued after earlier `failNext` calls). */
  failNext(fault: UpstreamFault, times?: number): void;
  /** Applies `fault` to every request until called again with `undefined`. */
  setFault(fault: UpstreamFault | undefined): void;
  /** Forgets recorded requests, tokens and queued faults (the counters start again at 0). */
  resetRecords(): void;
  close(): Promise<void>;
}

/** Starts the stub on `127.0.0.1` and a free port. */
export async function startUpstreamStub(options: UpstreamStubOptions): Promise<UpstreamStub> {
  const clock = options.clock ?? (() => new Date());
  const lifetimes = {
    mixedRealitySeconds: options.lifetimes?.mixedRealitySeconds ?? 86_400,
    cognitiveSeconds: options.lifetimes?.cognitiveSeconds ?? 600,
    wrapSeconds: options.lifetimes?.wrapSeconds ?? 10_800,
  };
  const credentials: UpstreamStubCredentials = structuredClone(options.credentials);
  const requests: RecordedUpstreamRequest[] = [];
  const issuedTokens: string[] = [];
  const queuedFaults: UpstreamFault[] = [];
  let persistentFault: UpstreamFault | undefined;
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  const internalErrors: unknown[] = [];
  let connections = 0;

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const body = await readBody(request);
    const url = new URL(request.url ?? '/', 'https://stub.invalid');
    const operation = operationOf(url.pathname);
    requests.push({
      operation,
      method: request.method ?? '',
      path: request.url ?? '',
      headers: { ...request.headers },
      body,
    });

    const fault = queuedFaults.shift() ?? persistentFault;
    if (fault?.kind === 'reset') {
      // A TCP RST on the raw socket under the TLS session (a TLSSocket cannot send one itself).
      const raw = [...sockets].find((socket) => socket.remotePort === request.socket.remotePort);
      if (raw) raw.resetAndDestroy();
      else request.socket.destroy();
      return;
    }
    if (fault?.kind === 'status') {
      const headers: Record<string, string> = { 'content-length': '0' };
      if (fault.retryAfter !== undefined) headers['retry-after'] = fault.retryAfter;
      response.writeHead(fault.status, headers).end();
      return;
    }
    if (fault?.kind === 'slow') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, fault.delayMs);
        timers.add(timer);
      });
      if (response.destroyed || request.socket.destroyed) return;
    }
    const mode: AnswerMode =
      fault?.kind === 'garbled' ? 'garbled' : fault?.kind === 'wrongToken' ? 'wrongToken' : 'normal';
    const override = fault?.kind === 'lifetime' ? fault : undefined;
    const answer = answerFor(operation, request.method ?? '', url, request.headers, body, mode, override);
    if (answer.token) issuedTokens.push(answer.token);
    response.writeHead(answer.status, { 'content-length': String(Buffer.byteLength(answer.body)), ...answer.headers });
    response.end(answer.body);
  };

  const answerFor = (
    operation: UpstreamOperation,
    method: string,
    url: URL,
    headers: IncomingMessage['headers'],
    body: string,
    mode: AnswerMode,
    override?: { readonly ownSeconds: number; readonly envelopeSeconds?: number },
  ): Answer => {
    const now = clock();
    switch (operation) {
      case 'mixedRealityToken': {
        if (method !== 'GET') return { status: 405, headers: {}, body: '' };
        const pathAccount = decodeURIComponent(url.pathname.split('/')[2] ?? '');
        const authorization = single(headers.authorization) ?? '';
        const match = /^Bearer ([^:]+):(.+)$/.exec(authorization);
        const expected = credentials.mixedReality;
        if (
          !match ||
          match[1]?.toLowerCase() !== pathAccount.toLowerCase() ||
          match[1]?.toLowerCase() !== expected.accountId.toLowerCase() ||
          match[2] !== expected.accountKey
        ) {
          return { status: 401, headers: { 'www-authenticate': 'Invalid token: account key mismatch' }, body: '' };
        }
        if (mode === 'garbled')
          return { status: 200, headers: { 'content-type': 'application/json' }, body: '{"AccessToken":' };
        const token = mintJwt({
          aid: expected.accountId,
          exp: mode === 'wrongToken' ? undefined : epoch(now) + (override?.ownSeconds ?? lifetimes.mixedRealitySeconds),
        });
        return {
          status: 200,
          headers: {
            'content-type': 'application/json; charset=utf-8',
            'ms-cv': `${randomBytes(16).toString('base64').slice(0, 22)}.0`,
          },
          body: JSON.stringify({ AccessToken: token }),
          token,
        };
      }
      case 'issueToken':
      case 'issueLimitedAccessToken': {
        if (method !== 'POST') return cognitiveError(405, '405', 'Method not allowed.');
        const key =
          single(headers['ocp-apim-subscription-key']) ?? url.searchParams.get('Subscription-Key') ?? undefined;
        if (key !== credentials.cognitiveKey) {
          return cognitiveError(
            401,
            '401',
            'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
          );
        }
        let lifetime = lifetimes.cognitiveSeconds;
        const claims: Record<string, unknown> = { iss: 'urn:ms.cognitiveservices', aud: 'urn:ms.speechservices.stub' };
        if (operation === 'issueLimitedAccessToken') {
          const expiredTime = url.searchParams.get('expiredTime') ?? '3600';
          if (!/^\d+$/.test(expiredTime) || Number(expiredTime) < 60 || Number(expiredTime) > 86_400) {
            return cognitiveError(400, 'BadArgument', 'expiredTime must be between 60 and 86400.');
          }
          lifetime = Number(expiredTime);
          let parsed: { targetAzureResourceId?: unknown; resourceId?: unknown; featureFlags?: unknown } | undefined;
          try {
            parsed = JSON.parse(body) as typeof parsed;
          } catch {
            parsed = undefined;
          }
          if (!parsed) return cognitiveError(400, 'BadArgument', 'Request body cannot be null or empty.');
          const target = parsed.targetAzureResourceId ?? parsed.resourceId;
          if (typeof target !== 'string' || !target.startsWith('/subscriptions/')) {
            return cognitiveError(
              400,
              'BadArgument',
              'TargetAzureResourceId must not be null and must be well formed.',
            );
          }
          if (!Array.isArray(parsed.featureFlags) || parsed.featureFlags.length === 0) {
            return cognitiveError(400, 'BadArgument', 'FeatureFlags must not be null or empty.');
          }
          claims['target-resource-id'] = target;
          claims['feature-flags'] = parsed.featureFlags;
        }
        if (mode === 'garbled')
          return { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>Gateway</html>' };
        const token = mintJwt({
          ...claims,
          exp: mode === 'wrongToken' ? undefined : epoch(now) + (override?.ownSeconds ?? lifetime),
        });
        return { status: 200, headers: { 'content-type': 'application/jwt; charset=us-ascii' }, body: token, token };
      }
      case 'wrapToken': {
        if (method !== 'POST') return wrapError(405, 'ACS90001: Method not allowed.');
        const form = new URLSearchParams(body);
        const scope = form.get('wrap_scope') ?? '';
        if (
          form.get('wrap_name') !== credentials.wrap.issuerName ||
          form.get('wrap_password') !== credentials.wrap.password
        ) {
          return {
            ...wrapError(401, 'ACS50012: Authentication failed.'),
            headers: { 'www-authenticate': 'WRAP', 'content-type': 'text/plain; charset=us-ascii' },
          };
        }
        if (mode === 'garbled')
          return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'wrap_access_token=&oops' };
        const expiresOn = epoch(now) + (override?.ownSeconds ?? lifetimes.wrapSeconds);
        const swt = [
          `Audience=${encodeURIComponent(scope)}`,
          ...(mode === 'wrongToken' ? [] : [`ExpiresOn=${expiresOn}`]),
          `Issuer=${encodeURIComponent('https://stub-sb.accesscontrol.invalid/')}`,
          `Id=${randomUUID()}`,
          `HMACSHA256=${encodeURIComponent(randomBytes(32).toString('base64'))}`,
        ].join('&');
        const expiresIn =
          mode === 'wrongToken'
            ? ''
            : String(override?.envelopeSeconds ?? (override ? override.ownSeconds : lifetimes.wrapSeconds) - 1);
        return {
          status: 200,
          headers: { 'content-type': 'application/x-www-form-urlencoded; charset=us-ascii' },
          body: `wrap_access_token=${encodeURIComponent(swt)}&wrap_access_token_expires_in=${expiresIn}`,
          token: swt,
        };
      }
      case 'unknown':
        return { status: 404, headers: {}, body: '' };
    }
  };

  const server: Server = createServer({ key: options.tls.key, cert: options.tls.cert }, (request, response) => {
    handle(request, response).catch((error: unknown) => {
      // A bug in the stub must not pass for an upstream 500: record it and drop the connection.
      internalErrors.push(error);
      request.socket.destroy();
    });
  });
  server.on('secureConnection', () => {
    connections++;
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // A reset or a client giving up mid-TLS-handshake is part of the game; never crash the test process.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('upstream stub did not get a port');

  return {
    url: `https://127.0.0.1:${address.port}`,
    credentials,
    requests,
    issuedTokens,
    internalErrors,
    count: (operation) => (operation ? requests.filter((r) => r.operation === operation).length : requests.length),
    connectionCount: () => connections,
    failNext(fault, times = 1) {
      for (let i = 0; i < times; i++) queuedFaults.push(fault);
    },
    setFault(fault) {
      persistentFault = fault;
    },
    resetRecords() {
      requests.length = 0;
      issuedTokens.length = 0;
      queuedFaults.length = 0;
      connections = 0;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}

type AnswerMode = 'normal' | 'garbled' | 'wrongToken';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly token?: string;
}

function operationOf(pathname: string): UpstreamOperation {
  if (/^\/accounts\/[^/]+\/token$/i.test(pathname)) return 'mixedRealityToken';
  if (/^\/sts\/v1\.0\/issuetoken$/i.test(pathname)) return 'issueToken';
  if (/^\/sts\/v1\.0\/issuelimitedaccesstoken$/i.test(pathname)) return 'issueLimitedAccessToken';
  if (/^\/wrapv0\.9\/?$/i.test(pathname)) return 'wrapToken';
  return 'unknown';
}

function cognitiveError(status: number, code: string, message: string): Answer {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ error: { code, message } }),
  };
}

function wrapError(status: number, detail: string): Answer {
  const stamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  return {
    status,
    headers: { 'content-type': 'text/plain; charset=us-ascii' },
    body: `Error:Code:${status}:SubCode:T0:Detail:${detail} :TraceID:${randomUUID()}:TimeStamp:${stamp}`,
  };
}

/** A JWT-shaped token (ES256 header, random signature); `exp` omitted when undefined. */
function mintJwt(claims: Record<string, unknown>): string {
  const header = { alg: 'ES256', kid: 'stub', typ: 'JWT' };
  const payload = { jti: randomUUID(), ...claims };
  const segment = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${segment(header)}.${segment(payload)}.${randomBytes(64).toString('base64url')}`;
}

function epoch(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > 65_536) break;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
