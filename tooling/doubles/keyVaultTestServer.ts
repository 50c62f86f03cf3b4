import { randomBytes, randomUUID } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { loopbackCertificate, type TlsKeyPair } from './testCertificates.js';

/**
 * A Key Vault stand-in for tests and local runs: an HTTPS server on 127.0.0.1 speaking the subset of the Key
 * Vault secrets REST API that `@azure/keyvault-secrets` uses, plus an App Service managed-identity endpoint
 * (`IDENTITY_ENDPOINT` / `IDENTITY_HEADER`) that the app's own App Service credential
 * (`shared/secrets/appServiceManagedIdentity.ts`) and `@azure/identity`'s `ManagedIdentityCredential` (through
 * MSAL's App Service source) both talk to. The real SDKs run unmodified against it.
 *
 * Vault behaviour mirrored from the service: the challenge (`401` + `WWW-Authenticate: Bearer
 * authorization=…, resource=…`) answers every request without a valid bearer token; names are
 * case-insensitive; the latest version is the newest one even when disabled; reading a disabled version is
 * `403 Forbidden` with inner error `SecretDisabled`; an expired or not-yet-valid version is still returned
 * with its `exp`/`nbf` (the client decides); an unknown name or version is `404 SecretNotFound`; lists are
 * paged with `nextLink`. Switches inject latency, error rates, outages, 429 storms and identity failures.
 */

export const VAULT_RESOURCE = 'https://vault.azure.net';
const APP_SERVICE_MSI_API_VERSION = '2019-08-01';
const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;

/** How a failing endpoint fails: reset the connection, never answer, or answer with this HTTP status. */
export type FailureMode = 'reset' | 'hang' | number;

export interface KeyVaultFaults {
  /** Delay before every vault answer (the challenge included). */
  latencyMs: number;
  /** Share (0..1) of authenticated vault requests answered with `errorStatus`. */
  errorRate: number;
  errorStatus: number;
  /** Every vault request fails this way (a full outage), before authentication. */
  outage: FailureMode | false;
  /** Every authenticated vault request gets `429` with this `Retry-After` (seconds). */
  throttleRetryAfterSeconds: number | false;
  /** The managed-identity endpoint fails this way. */
  identity: FailureMode | false;
  /** Writes (PUT, PATCH) still allowed; once 0, every write gets `503` (to cut a multi-step change short). */
  writesAllowed: number | false;
  /** The next this-many vault requests have their connection reset unanswered (a kept-alive socket closing). */
  resetNext: number;
}

/**
 * Key Vault's own throttling, scaled down: at most `transactions` authenticated calls per sliding window of
 * `windowSeconds` (Azure: 4,000 secret transactions per 10 s per vault, docs/scale.md#limits); beyond it `429`
 * with a `Retry-After` saying when the window has room again. As in Key Vault, throttled calls do not count.
 */
export interface VaultBudget {
  readonly transactions: number;
  readonly windowSeconds: number;
}

export interface KeyVaultTestServerOptions {
  /** Tenant named in the challenge's `authorization` URL. */
  readonly tenantId?: string;
  /** Items per page of the list operations (Key Vault uses 25); small values exercise `nextLink`. */
  readonly pageSize?: number;
  /** Lifetime of the access tokens the identity endpoint issues. */
  readonly tokenLifetimeSeconds?: number;
  readonly vaultPort?: number;
  readonly identityPort?: number;
  readonly certificate?: TlsKeyPair;
  /** The vault's transaction budget (off when absent); `server.budget` changes it later. */
  readonly budget?: VaultBudget;
}

export interface SeedOptions {
  readonly contentType?: string;
  readonly tags?: Readonly<Record<string, string>>;
  readonly enabled?: boolean;
  readonly notBefore?: Date;
  readonly expiresOn?: Date;
}

export interface KeyVaultServerStats {
  /** Every HTTP request to the vault, challenges and faults included. */
  readonly vaultRequests: number;
  /** 401 challenges sent. */
  readonly challenges: number;
  /** Authenticated GETs of a secret value (latest or a version), whatever the answer. */
  readonly secretReads: number;
  /** Authenticated list calls (versions or names), one per page. */
  readonly listCalls: number;
  readonly writes: number;
  /** 429s sent, by the `throttleRetryAfterSeconds` switch or by the budget. */
  readonly throttled: number;
  /** Of those, the ones the budget caused. */
  readonly budgetThrottled: number;
  readonly injectedErrors: number;
  readonly identityRequests: number;
  /** TLS connections the vault accepted (a client that keeps its connection alive opens one). */
  readonly vaultConnections: number;
  readonly tokensIssued: number;
  /** `api-version` values the SDK sent. */
  readonly apiVersions: readonly string[];
  /** `client_id` values sent to the identity endpoint (`''` for the system-assigned identity). */
  readonly identityClientIds: readonly string[];
}

interface StoredVersion {
  readonly version: string;
  readonly value: string;
  contentType: string | undefined;
  tags: Record<string, string> | undefined;
  enabled: boolean;
  notBefore: number | undefined;
  expires: number | undefined;
  readonly created: number;
  updated: number;
}

interface StoredSecret {
  readonly name: string;
  readonly versions: StoredVersion[];
}

interface IssuedToken {
  readonly resource: string;
  readonly expiresAtMs: number;
  /** The identity it was issued to (`''` for the system-assigned one). */
  readonly clientId: string;
}

const noFaults = (): KeyVaultFaults => ({
  latencyMs: 0,
  errorRate: 0,
  errorStatus: 500,
  outage: false,
  throttleRetryAfterSeconds: false,
  identity: false,
  writesAllowed: false,
  resetNext: 0,
});

export class KeyVaultTestServer {
  /** The switches; change them at any time, `resetFaults()` turns them all off. */
  readonly faults: KeyVaultFaults = noFaults();
  readonly tenantId: string;
  readonly identityHeader = randomBytes(16).toString('hex');
  private readonly secrets = new Map<string, StoredSecret>();
  private readonly tokens = new Map<string, IssuedToken>();
  private readonly readsByName = new Map<string, number>();
  private readonly readWaiters: Array<{ readonly name: string; readonly count: number; readonly reached: () => void }> =
    [];
  private readonly sockets = new Set<Socket>();
  private readonly apiVersions = new Set<string>();
  private readonly clientIds = new Set<string>();
  private counters = {
    vaultRequests: 0,
    challenges: 0,
    secretReads: 0,
    listCalls: 0,
    writes: 0,
    throttled: 0,
    budgetThrottled: 0,
    injectedErrors: 0,
    identityRequests: 0,
    tokensIssued: 0,
    vaultConnections: 0,
  };
  /** The transaction budget in force (`false`: none). */
  budget: VaultBudget | false;
  /** Times (ms) of the counted transactions inside the current window, oldest first. */
  private readonly recentTransactions: number[] = [];
  private vault: HttpsServer | undefined;
  private identity: HttpServer | undefined;
  private vaultOrigin = '';
  private identityOrigin = '';

  constructor(private readonly options: KeyVaultTestServerOptions = {}) {
    this.tenantId = options.tenantId ?? randomUUID();
    this.budget = options.budget ?? false;
  }

  /** `https://127.0.0.1:<port>` (no trailing slash), the value for `KEY_VAULT_URL`. */
  get vaultUrl(): string {
    return this.vaultOrigin;
  }

  /** The App Service identity endpoint, the value for `IDENTITY_ENDPOINT`. */
  get identityEndpoint(): string {
    return `${this.identityOrigin}/msi/token`;
  }

  /** The environment a process needs to use this vault through its managed identity. */
  env(): Record<'KEY_VAULT_URL' | 'IDENTITY_ENDPOINT' | 'IDENTITY_HEADER', string> {
    return {
      KEY_VAULT_URL: this.vaultUrl,
      IDENTITY_ENDPOINT: this.identityEndpoint,
      IDENTITY_HEADER: this.identityHeader,
    };
  }

  async start(): Promise<this> {
    const certificate = this.options.certificate ?? (await loopbackCertificate());
    this.vault = createHttpsServer({ key: certificate.key, cert: certificate.cert }, (req, res) => {
      this.onVaultRequest(req, res).catch(() => res.destroy());
    });
    this.identity = createHttpServer((req, res) => {
      this.onIdentityRequest(req, res).catch(() => res.destroy());
    });
    for (const server of [this.vault, this.identity]) {
      server.on('connection', (socket: Socket) => {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
      });
      server.on('secureConnection', (socket: Socket) => {
        this.counters.vaultConnections += 1;
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
      });
    }
    this.vaultOrigin = `https://127.0.0.1:${await listen(this.vault, this.options.vaultPort ?? 0)}`;
    this.identityOrigin = `http://127.0.0.1:${await listen(this.identity, this.options.identityPort ?? 0)}`;
    return this;
  }

  /** Stops both endpoints and drops every open (or hanging) connection. */
  async close(): Promise<void> {
    const closing = [this.vault, this.identity].map(
      (server) => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
    );
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await Promise.all(closing);
  }

  resetFaults(): void {
    Object.assign(this.faults, noFaults());
  }

  resetCounters(): void {
    for (const key of Object.keys(this.counters) as (keyof typeof this.counters)[]) this.counters[key] = 0;
    this.readsByName.clear();
    this.apiVersions.clear();
    this.clientIds.clear();
  }

  /**
   * Forgets the access tokens it issued (to the identity `clientId` only, when given; `''` is the
   * system-assigned one): the next vault call with one of them is challenged again.
   */
  revokeTokens(clientId?: string): void {
    for (const [token, issued] of this.tokens)
      if (clientId === undefined || issued.clientId === clientId) this.tokens.delete(token);
  }

  get stats(): KeyVaultServerStats {
    return { ...this.counters, apiVersions: [...this.apiVersions], identityClientIds: [...this.clientIds] };
  }

  /** Authenticated reads of `name`'s value so far (any version, whatever the answer). */
  readsOf(name: string): number {
    return this.readsByName.get(name.toLowerCase()) ?? 0;
  }

  /** The names (lower case) whose value was read at least once since the counters were last reset. */
  namesRead(): string[] {
    return [...this.readsByName.keys()].sort();
  }

  /**
   * Resolves once `name`'s value has been read `count` times in all (as `readsOf` counts): a test waits for a
   * read the app makes in the background without polling or sleeping.
   */
  whenReadsOf(name: string, count: number): Promise<void> {
    if (this.readsOf(name) >= count) return Promise.resolve();
    return new Promise((reached) => this.readWaiters.push({ name: name.toLowerCase(), count, reached }));
  }

  /** Writes a new version directly (no HTTP, not counted). Returns the version id. */
  seed(name: string, value: string, options: SeedOptions = {}): string {
    if (!SECRET_NAME.test(name)) throw new Error(`invalid secret name ${name}`);
    return this.addVersion(name, value, {
      contentType: options.contentType,
      tags: options.tags ? { ...options.tags } : undefined,
      enabled: options.enabled ?? true,
      notBefore: toSeconds(options.notBefore),
      expires: toSeconds(options.expiresOn),
    }).version;
  }

  /** Enables or disables a version (default: the latest) directly. */
  setEnabled(name: string, enabled: boolean, version?: string): void {
    this.requireVersion(name, version).enabled = enabled;
  }

  /** Deletes a secret with all its versions directly (as `az keyvault secret delete` then purge would). */
  deleteSecret(name: string): void {
    if (!this.secrets.delete(name.toLowerCase())) throw new Error(`no such secret ${name}`);
  }

  /** Sets (or clears) a version's expiry directly. */
  setExpiry(name: string, expiresOn: Date | undefined, version?: string): void {
    this.requireVersion(name, version).expires = toSeconds(expiresOn);
  }

  /** The versions of `name`, oldest first, as stored (for assertions). */
  versionsOf(
    name: string,
  ): readonly { version: string; value: string; enabled: boolean; tags?: Record<string, string> | undefined }[] {
    return (this.secrets.get(name.toLowerCase())?.versions ?? []).map((v) => ({
      version: v.version,
      value: v.value,
      enabled: v.enabled,
      tags: v.tags,
    }));
  }

  /** Names of all secrets. */
  names(): string[] {
    return [...this.secrets.values()].map((s) => s.name).sort();
  }

  // ---- vault ----------------------------------------------------------------------------------------------

  private async onVaultRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.counters.vaultRequests += 1;
    try {
      const body = await readBody(req);
      if (this.faults.latencyMs > 0) await sleep(this.faults.latencyMs);
      if (this.faults.outage !== false)
        return this.fail(req, res, this.faults.outage, vaultError('ServiceUnavailable', 'The vault is unavailable.'));
      if (this.faults.resetNext > 0) {
        this.faults.resetNext -= 1;
        return this.fail(req, res, 'reset', {});
      }

      const url = new URL(req.url ?? '/', this.vaultOrigin);
      const apiVersion = url.searchParams.get('api-version');
      if (apiVersion) this.apiVersions.add(apiVersion);

      if (!this.authorized(req.headers.authorization)) {
        this.counters.challenges += 1;
        return send(res, 401, vaultError('Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.'), {
          'WWW-Authenticate': `Bearer authorization="https://login.microsoftonline.com/${this.tenantId}", resource="${VAULT_RESOURCE}"`,
        });
      }
      if (!apiVersion || !/^(?:7\.\d+(?:-preview)?|\d{4}-\d{2}-\d{2}(?:-preview)?)$/.test(apiVersion)) {
        return send(
          res,
          400,
          vaultError('BadParameter', 'The api-version query parameter (?api-version=) is required for all requests'),
        );
      }

      const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
      if (segments[0] !== 'secrets') return send(res, 404, vaultError('NotFound', 'Not found.'));
      const [, name, third] = segments;
      const method = req.method ?? 'GET';
      const isRead = method === 'GET' && name && third !== 'versions';
      if (isRead) {
        this.counters.secretReads += 1;
        this.readsByName.set(name.toLowerCase(), (this.readsByName.get(name.toLowerCase()) ?? 0) + 1);
        this.wakeReadWaiters();
      }
      if (method === 'GET' && (!name || third === 'versions')) this.counters.listCalls += 1;
      if (method === 'PUT' || method === 'PATCH') this.counters.writes += 1;

      const overBudget = this.takeTransaction();
      if (overBudget !== undefined) {
        this.counters.throttled += 1;
        this.counters.budgetThrottled += 1;
        return send(
          res,
          429,
          vaultError('Throttled', 'Request was not processed because too many requests were received.'),
          {
            'Retry-After': String(overBudget),
          },
        );
      }
      if (this.faults.throttleRetryAfterSeconds !== false) {
        this.counters.throttled += 1;
        return send(
          res,
          429,
          vaultError('Throttled', 'Request was not processed because too many requests were received.'),
          {
            'Retry-After': String(this.faults.throttleRetryAfterSeconds),
          },
        );
      }
      if ((method === 'PUT' || method === 'PATCH') && this.faults.writesAllowed !== false) {
        if (this.faults.writesAllowed <= 0) {
          this.counters.injectedErrors += 1;
          return send(res, 503, vaultError('ServiceUnavailable', 'Injected write failure.'));
        }
        this.faults.writesAllowed -= 1;
      }
      if (this.faults.errorRate > 0 && Math.random() < this.faults.errorRate) {
        this.counters.injectedErrors += 1;
        return send(res, this.faults.errorStatus, vaultError('InternalServerError', 'Injected failure.'));
      }

      if (!name) {
        if (method !== 'GET') return send(res, 405, vaultError('MethodNotAllowed', 'Method not allowed.'));
        return this.listSecrets(url, res);
      }
      if (!SECRET_NAME.test(name)) {
        return send(res, 400, vaultError('BadParameter', `The request URI contains an invalid name: ${name}`));
      }
      if (third === 'versions' && segments.length === 3) {
        if (method !== 'GET') return send(res, 405, vaultError('MethodNotAllowed', 'Method not allowed.'));
        return this.listVersions(name, url, res);
      }
      if (segments.length > 3) return send(res, 404, vaultError('NotFound', 'Not found.'));
      const version = third ?? '';
      switch (method) {
        case 'GET':
          return this.getSecret(name, version, res);
        case 'PUT':
          if (version) return send(res, 405, vaultError('MethodNotAllowed', 'Method not allowed.'));
          return this.setSecret(name, body, res);
        case 'PATCH':
          return this.updateSecret(name, version, body, res);
        default:
          return send(res, 405, vaultError('MethodNotAllowed', 'Method not allowed.'));
      }
    } catch (error) {
      send(res, 500, vaultError('InternalServerError', error instanceof Error ? error.message : String(error)));
    }
  }

  /** Counts one transaction against the budget; returns the `Retry-After` seconds when there is no room. */
  private takeTransaction(): number | undefined {
    if (this.budget === false) return undefined;
    const nowMs = Date.now();
    const windowMs = this.budget.windowSeconds * 1000;
    while (this.recentTransactions.length > 0 && (this.recentTransactions[0] as number) <= nowMs - windowMs)
      this.recentTransactions.shift();
    if (this.recentTransactions.length >= this.budget.transactions) {
      return Math.max(1, Math.ceil(((this.recentTransactions[0] as number) + windowMs - nowMs) / 1000));
    }
    this.recentTransactions.push(nowMs);
    return undefined;
  }

  private authorized(header: string | undefined): boolean {
    const token = /^Bearer (\S+)$/.exec(header ?? '')?.[1];
    const issued = token ? this.tokens.get(token) : undefined;
    return issued !== undefined && issued.resource === VAULT_RESOURCE && issued.expiresAtMs > Date.now();
  }

  private getSecret(name: string, version: string, res: ServerResponse): void {
    const secret = this.secrets.get(name.toLowerCase());
    const stored = version ? secret?.versions.find((v) => v.version === version) : secret?.versions.at(-1);
    if (!secret || !stored) {
      return send(
        res,
        404,
        vaultError(
          'SecretNotFound',
          `A secret with (name/id) ${name}${version ? `/${version}` : ''} was not found in this key vault.`,
        ),
      );
    }
    if (!stored.enabled) {
      return send(res, 403, {
        error: {
          code: 'Forbidden',
          message: 'Operation get is not allowed on a disabled secret.',
          innererror: { code: 'SecretDisabled' },
        },
      });
    }
    send(res, 200, this.bundle(secret, stored, true));
  }

  private setSecret(name: string, body: string, res: ServerResponse): void {
    const parsed = parseJson(body) as
      { value?: unknown; contentType?: unknown; tags?: unknown; attributes?: Record<string, unknown> } | undefined;
    if (!parsed || typeof parsed.value !== 'string')
      return send(res, 400, vaultError('BadParameter', 'Property value is required.'));
    const attributes = parsed.attributes ?? {};
    const stored = this.addVersion(name, parsed.value, {
      contentType: typeof parsed.contentType === 'string' ? parsed.contentType : undefined,
      tags: isStringRecord(parsed.tags) ? { ...parsed.tags } : undefined,
      enabled: typeof attributes.enabled === 'boolean' ? attributes.enabled : true,
      notBefore: typeof attributes.nbf === 'number' ? attributes.nbf : undefined,
      expires: typeof attributes.exp === 'number' ? attributes.exp : undefined,
    });
    send(res, 200, this.bundle(this.secrets.get(name.toLowerCase()) as StoredSecret, stored, true));
  }

  private updateSecret(name: string, version: string, body: string, res: ServerResponse): void {
    const secret = this.secrets.get(name.toLowerCase());
    const stored = version ? secret?.versions.find((v) => v.version === version) : secret?.versions.at(-1);
    if (!secret || !stored)
      return send(
        res,
        404,
        vaultError('SecretNotFound', `A secret with (name/id) ${name}/${version} was not found in this key vault.`),
      );
    const parsed = parseJson(body) as
      { contentType?: unknown; tags?: unknown; attributes?: Record<string, unknown> } | undefined;
    if (!parsed) return send(res, 400, vaultError('BadParameter', 'The request body is not JSON.'));
    const attributes = parsed.attributes ?? {};
    if (typeof attributes.enabled === 'boolean') stored.enabled = attributes.enabled;
    if (typeof attributes.nbf === 'number') stored.notBefore = attributes.nbf;
    if (typeof attributes.exp === 'number') stored.expires = attributes.exp;
    if (typeof parsed.contentType === 'string') stored.contentType = parsed.contentType;
    if (isStringRecord(parsed.tags)) stored.tags = { ...parsed.tags };
    stored.updated = nowSeconds();
    send(res, 200, this.bundle(secret, stored, false));
  }

  private listVersions(name: string, url: URL, res: ServerResponse): void {
    const secret = this.secrets.get(name.toLowerCase());
    const items = (secret?.versions ?? []).map((v) => this.item(secret as StoredSecret, v, true));
    this.page(items, `/secrets/${name}/versions`, url, res);
  }

  private listSecrets(url: URL, res: ServerResponse): void {
    const items = [...this.secrets.values()]
      .filter((s) => s.versions.length > 0)
      .map((s) => this.item(s, s.versions.at(-1) as StoredVersion, false));
    this.page(items, '/secrets', url, res);
  }

  private page(items: readonly object[], path: string, url: URL, res: ServerResponse): void {
    const requested = Number(url.searchParams.get('maxresults') ?? '0');
    const size = requested > 0 ? Math.min(requested, 25) : (this.options.pageSize ?? 25);
    const skip = Number(url.searchParams.get('$skiptoken') ?? '0') || 0;
    const value = items.slice(skip, skip + size);
    const next = skip + size < items.length ? skip + size : undefined;
    const nextLink =
      next === undefined
        ? null
        : `${this.vaultOrigin}${path}?api-version=${encodeURIComponent(url.searchParams.get('api-version') ?? '')}&$skiptoken=${next}${requested > 0 ? `&maxresults=${requested}` : ''}`;
    send(res, 200, { value, nextLink });
  }

  private bundle(secret: StoredSecret, v: StoredVersion, withValue: boolean): object {
    return {
      ...(withValue ? { value: v.value } : {}),
      id: `${this.vaultOrigin}/secrets/${secret.name}/${v.version}`,
      ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
      attributes: this.attributes(v),
      ...(v.tags ? { tags: v.tags } : {}),
    };
  }

  private item(secret: StoredSecret, v: StoredVersion, withVersion: boolean): object {
    return {
      id: `${this.vaultOrigin}/secrets/${secret.name}${withVersion ? `/${v.version}` : ''}`,
      ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
      attributes: this.attributes(v),
      ...(v.tags ? { tags: v.tags } : {}),
    };
  }

  private attributes(v: StoredVersion): object {
    return {
      enabled: v.enabled,
      ...(v.notBefore !== undefined ? { nbf: v.notBefore } : {}),
      ...(v.expires !== undefined ? { exp: v.expires } : {}),
      created: v.created,
      updated: v.updated,
      recoveryLevel: 'Recoverable+Purgeable',
      recoverableDays: 90,
    };
  }

  private addVersion(
    name: string,
    value: string,
    fields: Pick<StoredVersion, 'contentType' | 'tags' | 'enabled' | 'notBefore' | 'expires'>,
  ): StoredVersion {
    const key = name.toLowerCase();
    let secret = this.secrets.get(key);
    if (!secret) {
      secret = { name, versions: [] };
      this.secrets.set(key, secret);
    }
    const now = nowSeconds();
    const stored: StoredVersion = {
      version: randomBytes(16).toString('hex'),
      value,
      ...fields,
      created: now,
      updated: now,
    };
    secret.versions.push(stored);
    return stored;
  }

  private requireVersion(name: string, version: string | undefined): StoredVersion {
    const versions = this.secrets.get(name.toLowerCase())?.versions ?? [];
    const stored = version ? versions.find((v) => v.version === version) : versions.at(-1);
    if (!stored) throw new Error(`no such secret version ${name}/${version ?? 'latest'}`);
    return stored;
  }

  private wakeReadWaiters(): void {
    for (const waiter of [...this.readWaiters]) {
      if (this.readsOf(waiter.name) < waiter.count) continue;
      this.readWaiters.splice(this.readWaiters.indexOf(waiter), 1);
      waiter.reached();
    }
  }

  // ---- managed identity (App Service, api-version 2019-08-01) ----------------------------------------------

  private async onIdentityRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.counters.identityRequests += 1;
    await readBody(req);
    if (this.faults.identity !== false) {
      return this.fail(req, res, this.faults.identity, {
        statusCode: this.faults.identity,
        message: 'Injected identity endpoint failure.',
      });
    }
    const url = new URL(req.url ?? '/', this.identityOrigin);
    if (req.method !== 'GET' || url.pathname !== '/msi/token')
      return send(res, 404, { statusCode: 404, message: 'Not found.' });
    if (req.headers['x-identity-header'] !== this.identityHeader) {
      return send(res, 401, { statusCode: 401, message: 'X-IDENTITY-HEADER is missing or wrong.' });
    }
    if (url.searchParams.get('api-version') !== APP_SERVICE_MSI_API_VERSION) {
      return send(res, 400, { statusCode: 400, message: `api-version must be ${APP_SERVICE_MSI_API_VERSION}.` });
    }
    const resource = url.searchParams.get('resource');
    if (!resource) return send(res, 400, { statusCode: 400, message: 'resource is required.' });
    const clientId = url.searchParams.get('client_id') ?? '';
    this.clientIds.add(clientId);
    const lifetime = this.options.tokenLifetimeSeconds ?? 86_400;
    const token = `kvts.${randomBytes(24).toString('base64url')}`;
    const expiresOn = nowSeconds() + lifetime;
    this.tokens.set(token, { resource: resource.replace(/\/$/, ''), expiresAtMs: expiresOn * 1000, clientId });
    this.counters.tokensIssued += 1;
    send(res, 200, {
      access_token: token,
      expires_on: String(expiresOn),
      resource,
      token_type: 'Bearer',
      client_id: clientId || '00000000-0000-0000-0000-000000000001',
    });
  }

  private fail(req: IncomingMessage, res: ServerResponse, mode: FailureMode, body: object): void {
    if (mode === 'reset') {
      req.socket.destroy();
      return;
    }
    if (mode === 'hang') return; // answered never; close() destroys the socket
    send(res, mode, body, mode === 429 || mode === 503 ? { 'Retry-After': '5' } : {});
  }
}

/**
 * Starts a Key Vault test server (vault on HTTPS, identity endpoint on HTTP, both on 127.0.0.1, free ports
 * unless given). Close it with `await server.close()`.
 *
 * @example
 * const server = await startKeyVaultTestServer();
 * Object.assign(process.env, server.env());
 * server.seed('mr-account-…', JSON.stringify(record));
 */
export function startKeyVaultTestServer(options: KeyVaultTestServerOptions = {}): Promise<KeyVaultTestServer> {
  return new KeyVaultTestServer(options).start();
}

function vaultError(code: string, message: string): object {
  return { error: { code, message } };
}

function send(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  if (res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'x-ms-keyvault-service-version': '1.9.0.0',
    'x-ms-request-id': randomUUID(),
    ...headers,
  });
  res.end(text);
}

function listen(server: HttpServer | HttpsServer, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return !!value && typeof value === 'object' && Object.values(value).every((v) => typeof v === 'string');
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const toSeconds = (date: Date | undefined): number | undefined =>
  date ? Math.floor(date.getTime() / 1000) : undefined;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
