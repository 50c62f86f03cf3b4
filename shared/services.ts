import { AsyncLocalStorage } from 'node:async_hooks';
import { loadConfig, type StsConfig } from './config.js';
import { CredentialDirectory } from './credentials/credentialDirectory.js';
import type { EntraTokenValidator } from './entra/entraTokenValidator.js';
import { lazyEntraValidator } from './entra/lazyEntraValidator.js';
import { createLedger } from './ledger/createLedger.js';
import type { Ledger } from './ledger/ledger.js';
import { CachedSecretStore } from './secrets/cachedSecretStore.js';
import { FileSecretStore } from './secrets/fileSecretStore.js';
import { KeyVaultSecretStore } from './secrets/keyVaultSecretStore.js';
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
  /** Tokens fetched from real Azure STSs for credentials in upstream mode (issue #10); undici loads on first use. */
  readonly upstream: UpstreamTokens;
  /** Validates Microsoft Entra access tokens (keyless Mixed Reality callers); undefined when `STS_ENTRA_AUTHORITY` is unset. */
  readonly entra: EntraTokenValidator | undefined;
  readonly clock: () => Date;
}

let current: Promise<StsServices> | undefined;
const scoped = new AsyncLocalStorage<Promise<StsServices>>();

/** The process's services, created on first call from `process.env` (or those of an enclosing {@link withServices}). */
export function getServices(): Promise<StsServices> {
  const inScope = scoped.getStore();
  if (inScope) return inScope;
  current ??= createServices(loadConfig(process.env)).catch((error: unknown) => {
    current = undefined; // a failed start is retried on the next request, not cached forever
    throw error;
  });
  return current;
}

/** Replaces the process's services (tests, benchmark, local host with injected dependencies). */
export function setServices(services: StsServices | Promise<StsServices> | undefined): void {
  current = services === undefined ? undefined : Promise.resolve(services);
}

/**
 * Runs `work` with `services` answering every `getServices()` inside it, awaited continuations included:
 * a second STS instance with its own services in the same process (the upstream-mode tests serve one STS
 * as the other's upstream), without touching the process-wide services.
 *
 * @example
 * const handler: HttpHandler = (request, context) => withServices(upstreamServices, () => definition.handler(request, context));
 */
export function withServices<T>(services: StsServices | Promise<StsServices>, work: () => T): T {
  return scoped.run(Promise.resolve(services), work);
}

/** Releases the process's services (upstream connection pools, pending ledger writes): graceful shutdown. */
export async function closeServices(): Promise<void> {
  const closing = current;
  current = undefined;
  const services = await closing?.catch(() => undefined);
  await Promise.allSettled([services?.upstream.close(), services?.ledger.close()]);
}

export async function createServices(config: StsConfig, clock: () => Date = () => new Date()): Promise<StsServices> {
  const secrets = await createSecretStore(config, clock);
  const signingKeys = createSigningKeyRing(config, secrets, clock);
  const ledger = createLedger(config);
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

async function createSecretStore(config: StsConfig, clock: () => Date): Promise<SecretStore> {
  switch (config.secretStore.kind) {
    case 'file':
      // Not cached: the file is held in memory and re-read only when it changes, so CLI rotations show at once.
      return new FileSecretStore(config.secretStore.path, clock);
    case 'keyVault': {
      // The Azure SDKs load on the first vault call (dynamic import inside KeyVaultSecretStore), not here.
      const { vaultUrl, clientId } = config.secretStore;
      const vault = new KeyVaultSecretStore({ vaultUrl, clientId, timeoutMs: config.secretCache.vaultTimeoutMs, clock });
      return new CachedSecretStore(vault, config.secretCache, clock);
    }
  }
}
