import type { KeyVaultSecret, SecretClient, SecretProperties } from '@azure/keyvault-secrets';
import { getAzureCredential } from './azureCredential.js';
import { classifyVaultError, toDependencyUnavailable } from './keyVaultErrors.js';
import { withTimeout } from '../outbound/withTimeout.js';
import {
  isUsable,
  SECRET_NAME_PATTERN,
  type ListableSecretStore,
  type SecretListing,
  type SecretVersion,
  type SetSecretOptions,
  type WritableSecretStore,
} from './secretStore.js';

export interface KeyVaultSecretStoreOptions {
  /** `https://<vault>.vault.azure.net` (`KEY_VAULT_URL`). */
  readonly vaultUrl: string;
  /** Upper bound of one store call, token acquisition included (`STS_VAULT_TIMEOUT_MS`). */
  readonly timeoutMs: number;
  /** User-assigned managed identity client id (`AZURE_CLIENT_ID`). */
  readonly clientId?: string | undefined;
  readonly clock?: () => Date;
}

/** At most this many enabled versions' values are fetched by `getSecretVersions` (newest first). */
const MAX_VERSION_VALUES = 20;

/**
 * The Key Vault secret store, over `@azure/keyvault-secrets` (loaded on first use). Key Vault semantics map
 * directly: a disabled version reads as `403 SecretDisabled` and an unknown name as `404 SecretNotFound`,
 * both "absent"; an expired or not-yet-valid version is returned by the vault and filtered here.
 *
 * Every call is bounded by `timeoutMs` (an abort signal for the SDK, and a race for the parts that ignore it)
 * and the SDK does not retry: throttling and outages are answered at once with a `DependencyUnavailableError`
 * carrying the vault's `Retry-After`, and the cache in front (`CachedSecretStore`) serves what it knows.
 *
 * Permissions: reads need `secrets/get` (Key Vault Secrets User); `getSecretVersions` and `listSecretNames`
 * need `secrets/list`; writes need `secrets/set` (Key Vault Secrets Officer, the admin CLI only).
 * Reads keys from Azure Key Vault via managed identity (docs/key-vault.md#identity, #faults).
 *
 * @example
 * const vault = new KeyVaultSecretStore({ vaultUrl: 'https://contoso-sts.vault.azure.net/', timeoutMs: 3_000 });
 * const record = await vault.getSecret('mr-account-3f616cd1-c82e-4d20-9118-29717f9b97f9'); // undefined when absent
 */
export class KeyVaultSecretStore implements WritableSecretStore, ListableSecretStore {
  private client: Promise<SecretClient> | undefined;
  private readonly clock: () => Date;

  constructor(private readonly options: KeyVaultSecretStoreOptions) {
    this.clock = options.clock ?? (() => new Date());
  }

  async getSecret(name: string): Promise<SecretVersion | undefined> {
    if (!SECRET_NAME_PATTERN.test(name)) return undefined; // cannot exist in a vault; no call spent on it
    const secret = await this.read('get', (client, abortSignal) => client.getSecret(name, { abortSignal }));
    if (!secret) return undefined;
    const version = toSecretVersion(secret);
    return isUsable(version, this.clock()) ? version : undefined;
  }

  /** The vault is the source and this store keeps nothing: every read is fresh. */
  getFreshSecret(name: string): Promise<SecretVersion | undefined> {
    return this.getSecret(name);
  }

  async getSecretVersions(name: string): Promise<readonly SecretVersion[]> {
    if (!SECRET_NAME_PATTERN.test(name)) return [];
    const versions = await this.read('list versions', async (client, abortSignal) => {
      const properties: SecretProperties[] = [];
      for await (const page of client.listPropertiesOfSecretVersions(name, { abortSignal }).byPage())
        properties.push(...page);
      // Newest first. `created` has one-second resolution; ties keep the listing's (chronological) order, reversed.
      properties.reverse().sort((a, b) => (b.createdOn?.getTime() ?? 0) - (a.createdOn?.getTime() ?? 0));
      let fetched = 0;
      return Promise.all(
        properties.map(async (p): Promise<SecretVersion | undefined> => {
          if (!p.enabled || fetched >= MAX_VERSION_VALUES) return toSecretVersion({ name, properties: p, value: '' });
          fetched += 1;
          try {
            return toSecretVersion(await client.getSecret(name, { version: p.version, abortSignal }));
          } catch (error) {
            // Disabled (or deleted) between the listing and the read: report it as disabled, without a value.
            if (classifyVaultError(error).kind === 'absent')
              return toSecretVersion({ name, properties: { ...p, enabled: false }, value: '' });
            throw error;
          }
        }),
      );
    });
    return (versions ?? []).filter((v): v is SecretVersion => v !== undefined);
  }

  async setSecret(name: string, value: string, options: SetSecretOptions = {}): Promise<SecretVersion> {
    if (!SECRET_NAME_PATTERN.test(name)) throw new Error(`Invalid secret name "${name}"`);
    const secret = await this.write('set', (client, abortSignal) =>
      client.setSecret(name, value, {
        abortSignal,
        contentType: options.contentType,
        tags: options.tags ? { ...options.tags } : undefined,
        enabled: options.enabled,
        notBefore: options.notBefore,
        expiresOn: options.expiresOn,
      }),
    );
    return toSecretVersion(secret);
  }

  async updateSecretVersion(name: string, version: string, patch: { readonly enabled: boolean }): Promise<void> {
    await this.write('update', (client, abortSignal) =>
      client.updateSecretProperties(name, version, { abortSignal, enabled: patch.enabled }),
    );
  }

  async listSecretNames(): Promise<readonly string[]> {
    return this.write('list', async (client, abortSignal) => {
      const names: string[] = [];
      for await (const page of client.listPropertiesOfSecrets({ abortSignal }).byPage())
        names.push(...page.map((p) => p.name));
      return names.sort();
    });
  }

  /**
   * The secret name index's listing (docs/key-vault.md#index): names with the current version's attributes,
   * no values, one vault call per page of 25. Each page is bounded by `timeoutMs` on its own, so a large vault
   * is not cut short by one overall deadline; a failure of any page fails the listing
   * (`DependencyUnavailableError` with the vault's `Retry-After` when throttled).
   */
  async listSecrets(onPage: (page: readonly SecretListing[]) => void): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      const controller = new AbortController();
      try {
        const client = await this.bounded('list', (c) => Promise.resolve(c));
        const pageIterable = client.listPropertiesOfSecrets({ abortSignal: controller.signal }).byPage();
        const pages = pageIterable[Symbol.asyncIterator]();
        for (;;) {
          const next = await this.boundedStep('list', controller, () => pages.next());
          if (next.done === true) return;
          onPage(next.value.map(toListing));
        }
      } catch (error) {
        // As for reads: a reset kept-alive connection starts the listing over once (pages seen again are harmless).
        if (attempt === 1 && isConnectionReset(error)) continue;
        throw listingFailure(error);
      }
    }
  }

  /** One step of a listing (a page), bounded by the vault timeout; a step that overruns aborts the listing's request. */
  private boundedStep<T>(operation: string, controller: AbortController, step: () => Promise<T>): Promise<T> {
    const timeoutMs = this.options.timeoutMs;
    return withTimeout(
      async (signal) => {
        const abortListing = (): void => controller.abort(signal.reason);
        signal.addEventListener('abort', abortListing, { once: true });
        try {
          return await step();
        } finally {
          signal.removeEventListener('abort', abortListing);
        }
      },
      timeoutMs,
      () => {
        const error = new Error(`Key Vault ${operation} took longer than ${timeoutMs} ms`);
        error.name = 'TimeoutError';
        return error;
      },
    );
  }

  /** A read: "absent" answers resolve to `undefined`, every other failure is a `DependencyUnavailableError`. */
  private async read<T>(
    operation: string,
    call: (client: SecretClient, abortSignal: AbortSignal) => Promise<T>,
  ): Promise<T | undefined> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.bounded(operation, call);
      } catch (error) {
        // A kept-alive connection the vault closed just as it was reused: one immediate retry (a read is
        // idempotent). Anything else fails at once, so the cache can back off on the vault's terms.
        if (attempt === 1 && isConnectionReset(error)) continue;
        const failure = classifyVaultError(error);
        if (failure.kind === 'absent') return undefined;
        throw toDependencyUnavailable(failure, error);
      }
    }
  }

  /** An admin write: transient failures are `DependencyUnavailableError`, refusals a plain error that says why. */
  private async write<T>(
    operation: string,
    call: (client: SecretClient, abortSignal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    try {
      return await this.bounded(operation, call);
    } catch (error) {
      const failure = classifyVaultError(error);
      if (failure.kind === 'unavailable') throw toDependencyUnavailable(failure, error);
      const detail = failure.kind === 'absent' ? 'not found' : failure.description;
      throw new Error(`Key Vault ${operation} failed: ${detail}`, { cause: error });
    }
  }

  private bounded<T>(
    operation: string,
    call: (client: SecretClient, abortSignal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    // The signal aborts the SDK call; the wait also ends for what ignores it (the credential's first token).
    return withTimeout(
      (signal) => this.getClient().then((client) => call(client, signal)),
      this.options.timeoutMs,
      () => {
        const error = new Error(`Key Vault ${operation} took longer than ${this.options.timeoutMs} ms`);
        error.name = 'TimeoutError';
        return error;
      },
    );
  }

  /** One SecretClient per store (the composition root makes one store per process), created on first use. */
  private getClient(): Promise<SecretClient> {
    this.client ??= this.createClient().catch((error: unknown) => {
      this.client = undefined;
      throw error;
    });
    return this.client;
  }

  private async createClient(): Promise<SecretClient> {
    const credentialReady = getAzureCredential({
      clientId: this.options.clientId,
      tokenTimeoutMs: this.options.timeoutMs,
    });
    // The vault's token is asked for now, while the SDK loads and the first request is challenged, instead of
    // after the challenge: the SDK's own request for it (once the challenge's resource has passed its check)
    // joins this one or finds it cached (docs/deploy.md, "Cold start of the artifact"). A failure here is the
    // SDK's to meet and report; it is not kept.
    credentialReady
      .then((credential) => credential.getToken(expectedVaultScope(this.options.vaultUrl)))
      .catch(() => undefined);
    const [{ SecretClient }, { azureHttpClient }, credential] = await Promise.all([
      import('@azure/keyvault-secrets'),
      import('../outbound/azureHttpClient.js'),
      credentialReady,
    ]);
    return new SecretClient(this.options.vaultUrl, credential, {
      httpClient: azureHttpClient(),
      // No SDK retries: a 429 with Retry-After would park the request for the whole delay. The cache serves
      // what it has and tells clients when to retry instead.
      retryOptions: { maxRetries: 0 },
      // The SDK checks that the challenge's resource (vault.azure.net) is a parent domain of the vault host.
      // A vault on loopback (the Key Vault test server) cannot pass that check; real vault hosts keep it.
      disableChallengeResourceVerification: isLoopbackUrl(this.options.vaultUrl),
    });
  }
}

/**
 * The scope Key Vault's challenge names for `vaultUrl`: the resource is the vault host's DNS suffix
 * (`https://vault.azure.net` for `<name>.vault.azure.net`, `https://vault.azure.cn` for `<name>.vault.azure.cn`,
 * and so on); for any other host (the Key Vault test server on loopback) the public cloud's. Only a guess, made
 * to fetch the token early: the SDK still takes the scope from the challenge and checks it against the vault
 * host, and a wrong guess costs one unused token.
 *
 * @example
 * expectedVaultScope('https://contoso-sts.vault.azure.net/'); // 'https://vault.azure.net/.default'
 */
export function expectedVaultScope(vaultUrl: string): string {
  const host = new URL(vaultUrl).hostname.toLowerCase();
  const suffixAt = host.indexOf('.vault.');
  return `${suffixAt > 0 ? `https://${host.slice(suffixAt + 1)}` : 'https://vault.azure.net'}/.default`;
}

/** A failed listing as the caller sees it: `DependencyUnavailableError` (with the vault's `Retry-After` when throttled). */
function listingFailure(error: unknown): Error {
  const failure = classifyVaultError(error);
  return toDependencyUnavailable(
    failure.kind === 'absent' ? { kind: 'rejected', status: 404, description: 'Key Vault list: not found' } : failure,
    error,
  );
}

/** A connection reset or broken pipe (the SDK's `RestError` carries the socket error's code). */
function isConnectionReset(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname;
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
}

function toListing(p: SecretProperties): SecretListing {
  return {
    name: p.name,
    enabled: p.enabled ?? true,
    updatedOn: p.updatedOn,
    notBefore: p.notBefore,
    expiresOn: p.expiresOn,
  };
}

function toSecretVersion(secret: Pick<KeyVaultSecret, 'name' | 'properties' | 'value'>): SecretVersion {
  const p = secret.properties;
  return {
    name: secret.name,
    version: p.version ?? '',
    value: secret.value ?? '',
    enabled: p.enabled ?? true,
    createdOn: p.createdOn ?? new Date(0),
    notBefore: p.notBefore,
    expiresOn: p.expiresOn,
    contentType: p.contentType,
    tags: p.tags,
  };
}
