import { loadConfig, type StsConfig } from './config.js';
import { CredentialDirectory } from './credentials/credentialDirectory.js';
import type { EntraTokenValidator } from './entra/entraTokenValidator.js';
import { lazyEntraValidator } from './entra/lazyEntraValidator.js';
import { createLedger } from './ledger/createLedger.js';
import type { Ledger } from './ledger/ledger.js';
import { CachedSecretStore } from './secrets/cachedSecretStore.js';
import { FileSecretStore } from './secrets/fileSecretStore.js';
import { IndexedSecretStore } from './secrets/indexedSecretStore.js';
import { KeyVaultSecretStore } from './secrets/keyVaultSecretStore.js';
import { SecretNameIndex } from './secrets/secretNameIndex.js';
import type { SecretStore } from './secrets/secretStore.js';
import { FailedAttemptLimiter } from './security/failedAttemptLimiter.js';
import { createJwtIssuer, type JwtIssuer } from './tokens/jwtIssuer.js';
import { createSigningKeyRing, type SigningKeyRing } from './tokens/signingKeyRing.js';
import { createServiceUpstreamTokens } from './upstream/serviceUpstreamTokens.js';
import type { UpstreamTokens } from './upstream/upstreamTokens.js';

/**
 * The composition root: every long-lived dependency of the functions, created once per process, lazily on
 * first use (not at import, so cold start stays cheap and an Azure SDK loads only when configured).
 */
export interface StsServices {
  readonly config: StsConfig;
  readonly secrets: SecretStore;
  readonly credentials: CredentialDirectory;
  /** The JWT signing keys: which one signs, which ones the JWKS publishes. */
  readonly signingKeys: SigningKeyRing;
  readonly jwtIssuer: JwtIssuer;
  readonly ledger: Ledger;
  /** Failed attempts per client IP and per credential (per instance), checked before every key lookup. */
  readonly failedAttempts: FailedAttemptLimiter;
  /** Tokens fetched from real Azure STSs for credentials in upstream mode (docs/upstream.md); undici loads on first use. */
  readonly upstream: UpstreamTokens;
  /** Validates Microsoft Entra access tokens (keyless Mixed Reality callers); undefined when `STS_ENTRA_AUTHORITY` is unset. */
  readonly entra: EntraTokenValidator | undefined;
  readonly clock: () => Date;
}

let current: Promise<StsServices> | undefined;

/**
 * The process's services, created on first call from `process.env`: what every registered handler answers
 * with. A host that composes its own services binds a definition to them instead (`definition.handlerFor`).
 */
export function getServices(): Promise<StsServices> {
  current ??= createServices(loadConfig(process.env)).catch((error: unknown) => {
    current = undefined; // a failed start is retried on the next request, not cached forever
    throw error;
  });
  return current;
}

/** Releases the process's services (upstream connection pools, pending ledger writes): graceful shutdown. */
export async function closeServices(): Promise<void> {
  const closing = current;
  current = undefined;
  const services = await closing?.catch(() => undefined);
  await Promise.allSettled([services?.upstream.close(), services?.ledger.close()]);
}

/**
 * Builds the services for `config`. `warn` is told, once per episode and never with key material, when a
 * long-lived service degrades (the secret store failing behind its cache, the signing key ring serving its
 * last good keys, an unusable key version, ledger rows not committed);
 * by default `console.warn`, which the Functions worker forwards to the host's log.
 *
 * @example
 * const services = await createServices(loadConfig(process.env), () => new Date(), (line) => logger.warn(line));
 */
export function createServices(
  config: StsConfig,
  clock: () => Date = () => new Date(),
  warn: (line: string) => void = (line) => console.warn(line),
): Promise<StsServices> {
  // A promise, rejected (never thrown) when a service cannot be built: the process shares and awaits it.
  return new Promise((resolve) => resolve(buildServices(config, clock, warn)));
}

function buildServices(config: StsConfig, clock: () => Date, warn: (line: string) => void): StsServices {
  const secrets = createSecretStore(config, clock, warn);
  const signingKeys = createSigningKeyRing(config, secrets, clock, warn);
  const ledger = createLedger(config, { secrets, warn });
  return {
    config,
    secrets,
    credentials: new CredentialDirectory(secrets),
    signingKeys,
    jwtIssuer: createJwtIssuer(config.issuer, signingKeys),
    ledger,
    failedAttempts: new FailedAttemptLimiter(
      {
        perClientIp: config.limits.failedAttemptsPerWindow,
        perCredential: config.limits.failedAttemptsPerCredential,
        windowSeconds: config.limits.failedAttemptsWindowSeconds,
        maxTrackedKeys: config.limits.failedAttemptsTrackedKeys,
      },
      clock,
    ),
    upstream: createServiceUpstreamTokens({ secrets, clock, ledger }),
    entra: config.entra ? lazyEntraValidator(config.entra, clock) : undefined,
    clock,
  };
}

function createSecretStore(config: StsConfig, clock: () => Date, warn: (line: string) => void): SecretStore {
  switch (config.secretStore.kind) {
    case 'file':
      // Not cached: the file is held in memory and re-read only when it changes, so CLI rotations show at once.
      return new FileSecretStore(config.secretStore.path, clock);
    case 'keyVault': {
      // The Azure SDKs load on the first vault call (dynamic import inside KeyVaultSecretStore), not here.
      const { vaultUrl, clientId } = config.secretStore;
      const vault = new KeyVaultSecretStore({
        vaultUrl,
        clientId,
        timeoutMs: config.secretCache.vaultTimeoutMs,
        clock,
      });
      // Only names the vault lists are ever read (docs/key-vault.md#index); what was read is cached.
      const index = new SecretNameIndex(vault, { refreshSeconds: config.secretCache.indexRefreshSeconds }, clock, warn);
      return new IndexedSecretStore(index, new CachedSecretStore(vault, config.secretCache, clock, warn), clock);
    }
  }
}
