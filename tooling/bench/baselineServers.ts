import { createHash, createHmac, randomUUID, sign, timingSafeEqual, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { importJWK, SignJWT } from 'jose';
import {
  parseRecord,
  type CognitiveResource,
  type MixedRealityAccount,
  type WrapIssuer,
} from '../../shared/credentials/records.js';
import { vaultLayout, vaultPrefixes } from '../../shared/credentials/vaultLayout.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { parseSigningJwk } from '../../shared/tokens/signingKeyMaterial.js';

/**
 * The baselines (docs/performance.md#what-it-measures): a bare `node:http` server doing the same work as a flow and nothing
 * else. Per request: parse the credential, look it up in a Map, compare it in constant time (SHA-256 digests +
 * `timingSafeEqual`, both key slots), build the claims, sign, write the body with a Content-Type. No routing
 * table, no security headers, no correlation ids, no ledger, no `@azure/functions` objects.
 *
 * - `jose`: ES256 JWT with `jose`'s `SignJWT` (a CryptoKey imported once);
 * - `crypto`: ES256 JWT with `node:crypto` `sign` (synchronous, header segment encoded once);
 * - `swt`: the WRAP v0.9 answer with an HMAC-SHA256 SWT.
 *
 * The JWT baselines serve the Mixed Reality route and issueToken; the SWT baseline serves `/WRAPv0.9`.
 * Credentials and the signing key are read once at start from the same store file the app uses.
 */
export type BaselineKind = 'jose' | 'crypto' | 'swt';

export interface RunningBaseline {
  readonly url: string;
  close(): Promise<void>;
}

const ZERO_TENANT = '00000000-0000-0000-0000-000000000000';
const MR_LIFETIME_SECONDS = 86_400;
const COGNITIVE_LIFETIME_SECONDS = 600;
const WRAP_LIFETIME_SECONDS = 10_800;
const MR_PATH = /^\/accounts\/([^/]+)\/token$/i;
const ISSUE_TOKEN_PATH = /^\/sts\/v1\.0\/issuetoken$/i;
const WRAP_PATH = /^\/wrapv0\.9\/?$/i;

interface Credentials {
  readonly accounts: Map<string, MixedRealityAccount>;
  /** By SHA-256 (hex) of each key, so the Map lookup itself never compares a secret. */
  readonly cognitiveByKeyDigest: Map<string, CognitiveResource>;
  readonly wrapIssuers: Map<string, WrapIssuer>;
  readonly wrapSigningKeys: Map<string, Buffer>;
}

type Signer = (payload: Record<string, unknown>) => Promise<string> | string;

/**
 * Starts one baseline on 127.0.0.1 (a free port).
 *
 * @example
 * const baseline = await startBaselineServer('jose', { storePath, issuer: 'https://sts.bench.example/' });
 */
export async function startBaselineServer(
  kind: BaselineKind,
  options: { storePath: string; issuer: string; mixedRealityAudience: string; cognitiveAudience: string },
): Promise<RunningBaseline> {
  const credentials = await loadCredentials(options.storePath);
  const signer = kind === 'swt' ? undefined : await createSigner(kind, options.storePath);

  const mixedReality = async (req: IncomingMessage, res: ServerResponse, pathId: string): Promise<void> => {
    const authorization = req.headers.authorization ?? '';
    const colon = authorization.indexOf(':');
    if (!authorization.startsWith('Bearer ') || colon < 0) return refuse(res);
    const accountId = authorization.slice(7, colon).toLowerCase();
    const account = credentials.accounts.get(accountId);
    if (
      !account ||
      accountId !== pathId.toLowerCase() ||
      !matchesEitherKey(authorization.slice(colon + 1), account.keys)
    )
      return refuse(res);
    const now = Math.floor(Date.now() / 1000);
    const token = await (signer as Signer)({
      jti: randomUUID(),
      aid: account.accountId,
      cai: account.accountId,
      tid: ZERO_TENANT,
      apr: account.accountDomain.split('.')[0],
      ...(account.resourceId ? { rid: account.resourceId } : {}),
      nbf: now,
      exp: now + MR_LIFETIME_SECONDS,
      iat: now,
      iss: options.issuer,
      aud: options.mixedRealityAudience,
    });
    send(res, 'application/json; charset=utf-8', JSON.stringify({ AccessToken: token }));
  };

  const issueToken = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    await drain(req);
    const key = req.headers['ocp-apim-subscription-key'];
    if (typeof key !== 'string') return refuse(res);
    const resource = credentials.cognitiveByKeyDigest.get(sha256(key).toString('hex'));
    if (!resource || !resource.enabled || !matchesEitherKey(key, resource.keys)) return refuse(res);
    const token = await (signer as Signer)({
      region: resource.region,
      'product-id': resource.productId,
      'azure-resource-id': resource.resourceId,
      scope: 'speechservices',
      aud: options.cognitiveAudience.replaceAll('{region}', resource.region),
      exp: Math.floor(Date.now() / 1000) + COGNITIVE_LIFETIME_SECONDS,
      iss: options.issuer,
    });
    send(res, 'application/jwt; charset=us-ascii', token);
  };

  const wrap = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const form = new URLSearchParams((await readAll(req)).toString('latin1'));
    const name = form.get('wrap_name');
    const password = form.get('wrap_password');
    const scope = form.get('wrap_scope');
    if (!name || !password || !scope) return refuse(res);
    let namespace: string;
    try {
      namespace = new URL(scope).hostname.split('.')[0] ?? '';
    } catch {
      return refuse(res);
    }
    const issuer = credentials.wrapIssuers.get(`${namespace}\n${name}`);
    const signingKey = credentials.wrapSigningKeys.get(namespace);
    if (!issuer || !signingKey || !matchesEitherKey(password, issuer.keys)) return refuse(res);
    if (!issuer.scopes.some((prefix) => scope.startsWith(prefix))) return refuse(res, 403);
    const expiresOn = Math.floor(Date.now() / 1000) + WRAP_LIFETIME_SECONDS;
    const identity = formEncode(options.issuer);
    const unsigned =
      `net.windows.servicebus.action=${formEncode(issuer.rights.join(','))}` +
      `&${formEncode('http://schemas.microsoft.com/accesscontrolservice/2010/07/claims/identityprovider')}=${identity}` +
      `&Audience=${formEncode(scope)}&ExpiresOn=${expiresOn}&Issuer=${identity}`;
    const signature = createHmac('sha256', signingKey).update(unsigned, 'ascii').digest('base64');
    const swt = `${unsigned}&HMACSHA256=${formEncode(signature)}`;
    send(
      res,
      'application/x-www-form-urlencoded; charset=us-ascii',
      `wrap_access_token=${formEncode(swt)}&wrap_access_token_expires_in=${WRAP_LIFETIME_SECONDS - 1}`,
    );
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    let work: Promise<void> | undefined;
    if (kind === 'swt') {
      if (req.method === 'POST' && WRAP_PATH.test(path)) work = wrap(req, res);
    } else if (req.method === 'GET') {
      const match = MR_PATH.exec(path);
      if (match) work = mixedReality(req, res, match[1] ?? '');
    } else if (req.method === 'POST' && ISSUE_TOKEN_PATH.test(path)) {
      work = issueToken(req, res);
    }
    if (!work) {
      res.writeHead(404, { 'Content-Length': 0 }).end();
      return;
    }
    work.catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Length': 0 });
      res.end();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function createSigner(kind: 'jose' | 'crypto', storePath: string): Promise<Signer> {
  const stored = await new FileSecretStore(storePath).getSecret(vaultLayout.signingKey);
  if (!stored) throw new Error('the store has no signing key');
  const material = await parseSigningJwk(stored.value);
  if (material.alg !== 'ES256') throw new Error('the baselines sign ES256: the store must hold an EC P-256 key');
  const header = { alg: 'ES256', kid: material.kid, typ: 'JWT' };
  if (kind === 'jose') {
    const key = await importJWK(material.privateKey.export({ format: 'jwk' }), 'ES256');
    return (payload) => new SignJWT(payload).setProtectedHeader(header).sign(key);
  }
  const encodedHeader = Buffer.from(JSON.stringify(header)).toString('base64url');
  const privateKey: KeyObject = material.privateKey;
  return (payload) => {
    const signingInput = `${encodedHeader}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    const signature = sign('sha256', Buffer.from(signingInput, 'ascii'), {
      key: privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    return `${signingInput}.${signature.toString('base64url')}`;
  };
}

async function loadCredentials(storePath: string): Promise<Credentials> {
  const store = new FileSecretStore(storePath);
  const credentials: Credentials = {
    accounts: new Map(),
    cognitiveByKeyDigest: new Map(),
    wrapIssuers: new Map(),
    wrapSigningKeys: new Map(),
  };
  for (const name of await store.listSecretNames()) {
    const value = (await store.getSecret(name))?.value ?? '';
    if (name.startsWith(vaultPrefixes.mixedRealityAccount)) {
      const account = parseRecord(value, 'mixedRealityAccount');
      if (account?.enabled) credentials.accounts.set(account.accountId, account);
    } else if (name.startsWith(vaultPrefixes.cognitiveResource)) {
      const resource = parseRecord(value, 'cognitiveResource');
      if (resource)
        for (const key of resource.keys) credentials.cognitiveByKeyDigest.set(sha256(key).toString('hex'), resource);
    } else if (name.startsWith(vaultPrefixes.wrapIssuer)) {
      const issuer = parseRecord(value, 'wrapIssuer');
      if (issuer?.enabled) credentials.wrapIssuers.set(`${issuer.namespace}\n${issuer.name}`, issuer);
    } else if (name.startsWith(vaultPrefixes.wrapNamespace)) {
      const namespace = parseRecord(value, 'wrapNamespace');
      if (namespace) credentials.wrapSigningKeys.set(namespace.namespace, Buffer.from(namespace.signingKey, 'base64'));
    }
  }
  return credentials;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Both slots compared every time, over equal-length digests. */
function matchesEitherKey(presented: string, keys: readonly [string, string]): boolean {
  const digest = sha256(presented);
  const first = timingSafeEqual(digest, sha256(keys[0]));
  const second = timingSafeEqual(digest, sha256(keys[1]));
  return first || second;
}

/** Form encoding with lower-case hex escapes, as the SWT format wants (docs/contracts/acs-wrap.md#swt). */
function formEncode(text: string): string {
  return encodeURIComponent(text).replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase());
}

function refuse(res: ServerResponse, status = 401): void {
  res.writeHead(status, { 'Content-Length': 0 }).end();
}

function send(res: ServerResponse, contentType: string, body: string): void {
  res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) }).end(body);
}

function drain(req: IncomingMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    req.on('error', reject).on('end', resolve).resume();
  });
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
