import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { SingleFlightCache } from '../caching/singleFlightCache.js';
import { withTimeout } from '../outbound/withTimeout.js';
import { StsBaseError } from '../errors.js';

/**
 * The one place that decides which Azure identity reads Key Vault.
 *
 * - In Azure (`IDENTITY_ENDPOINT` set by App Service / Functions, or `WEBSITE_INSTANCE_ID`): the managed
 *   identity, user-assigned when `AZURE_CLIENT_ID` is set, system-assigned otherwise. Where the platform's
 *   token endpoint is set (`IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, as on App Service, Functions and Flex
 *   Consumption), our own `AppServiceManagedIdentityCredential` (./appServiceManagedIdentity.ts) asks it directly, so neither
 *   `@azure/identity` nor MSAL loads on the cold path; otherwise `@azure/identity`'s
 *   `ManagedIdentityCredential`. No credential chain is probed, so a misconfiguration fails fast and the same
 *   way every time.
 * - Anywhere else (an operator's machine): `DefaultAzureCredential` limited to developer tools (Azure CLI,
 *   Azure Developer CLI, Azure PowerShell, VS Code), i.e. the `AZURE_TOKEN_CREDENTIALS=dev` behaviour. An
 *   explicit `AZURE_TOKEN_CREDENTIALS` chosen by the operator is respected.
 *
 * `@azure/identity` is loaded with a dynamic `import()` on first use only, so the embedded file store (the
 * default) never loads it and cold start stays cheap. One credential per process (per client id).
 */

export type CredentialKind = 'managedIdentity' | 'developerTools';

export interface AzureCredentialOptions {
  /** User-assigned managed identity client id (`AZURE_CLIENT_ID`); system-assigned when undefined. */
  readonly clientId?: string | undefined;
  /**
   * Upper bound for one token acquisition. The identity endpoint is called without a timeout by the SDK; a
   * hung call would otherwise block every later vault call of the client (its token refresh is shared).
   */
  readonly tokenTimeoutMs: number;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Whether the environment has the App Service token endpoint (both `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`). */
export function hasAppServiceIdentityEndpoint(env: Readonly<Record<string, string | undefined>>): boolean {
  return Boolean(env.IDENTITY_ENDPOINT?.trim() && env.IDENTITY_HEADER?.trim());
}

/** Which credential the environment calls for (see the module comment). */
export function credentialKindFor(env: Readonly<Record<string, string | undefined>>): CredentialKind {
  return env.IDENTITY_ENDPOINT?.trim() || env.WEBSITE_INSTANCE_ID?.trim() ? 'managedIdentity' : 'developerTools';
}

/** Raised when a token could not be had in time; mapped to a 503 like every other identity failure. */
export class TokenAcquisitionTimeoutError extends StsBaseError {
  readonly code = 'ERR_STS_TOKEN_TIMEOUT';
  constructor(timeoutMs: number) {
    super(`No access token within ${timeoutMs} ms`);
    this.name = 'TokenAcquisitionTimeoutError';
  }
}

/** Client ids the app is configured with (one, or none): a bound never reached, as every cache has one. */
const MAX_CREDENTIALS = 8;
/** The process's credentials by client id, in the shared cache: built once, a failed build is not kept. */
const processCredentials = new SingleFlightCache<string, TokenCredential>({ maxEntries: MAX_CREDENTIALS });

/**
 * The process's credential (one per client id, created on first call), with token acquisition bounded by
 * `tokenTimeoutMs` for this caller. Key Vault and the ledger share it.
 *
 * @example
 * const credential = await getAzureCredential({ clientId: process.env.AZURE_CLIENT_ID, tokenTimeoutMs: 3_000 });
 */
export async function getAzureCredential(options: AzureCredentialOptions): Promise<TokenCredential> {
  const shared = await processCredentials.get(options.clientId ?? '', async () => ({
    value: await createUnboundedCredential(options),
    freshUntilMs: Number.POSITIVE_INFINITY,
    staleUntilMs: Number.POSITIVE_INFINITY,
  }));
  return withTokenTimeout(shared, options.tokenTimeoutMs);
}

async function createUnboundedCredential(options: AzureCredentialOptions): Promise<TokenCredential> {
  const env = options.env ?? process.env;
  if (credentialKindFor(env) === 'managedIdentity' && hasAppServiceIdentityEndpoint(env)) {
    // Loaded on first use like the SDK: the embedded store never needs it.
    const { AppServiceManagedIdentityCredential } = await import('./appServiceManagedIdentity.js');
    return new AppServiceManagedIdentityCredential({
      endpoint: String(env.IDENTITY_ENDPOINT).trim(),
      identityHeader: String(env.IDENTITY_HEADER).trim(),
      clientId: options.clientId,
      requestTimeoutMs: options.tokenTimeoutMs,
    });
  }
  const [identity, { azureHttpClient }] = await Promise.all([
    import('@azure/identity'),
    import('../outbound/azureHttpClient.js'),
  ]);
  // Every HTTP call of the credentials goes through the one outbound client; the developer tools' own
  // credentials run CLIs and make none.
  const httpClient = azureHttpClient();
  if (credentialKindFor(env) === 'managedIdentity') {
    // One quick retry of the local identity endpoint; the vault call that needs the token is bounded anyway.
    const retryOptions = { maxRetries: 1, retryDelayInMs: 200, maxRetryDelayInMs: 1_000 };
    return options.clientId
      ? new identity.ManagedIdentityCredential({ clientId: options.clientId, retryOptions, httpClient })
      : new identity.ManagedIdentityCredential({ retryOptions, httpClient });
  }
  // An operator's own AZURE_TOKEN_CREDENTIALS is read by DefaultAzureCredential; without one, the developer
  // tools of its `dev` chain, in its order, built here (nothing sets the variable for the process).
  if (env.AZURE_TOKEN_CREDENTIALS?.trim()) return new identity.DefaultAzureCredential({ httpClient });
  return new identity.ChainedTokenCredential(
    new identity.VisualStudioCodeCredential({ httpClient }),
    new identity.AzureCliCredential(),
    new identity.AzurePowerShellCredential(),
    new identity.AzureDeveloperCliCredential(),
  );
}

/** Bounds each token acquisition by one `AbortSignal.timeout` (passed to the credential, see withTimeout). */
function withTokenTimeout(inner: TokenCredential, timeoutMs: number): TokenCredential {
  return {
    getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      const callerSignal = options?.abortSignal instanceof AbortSignal ? options.abortSignal : undefined;
      return withTimeout(
        (abortSignal) => inner.getToken(scopes, { ...options, abortSignal }),
        timeoutMs,
        () => new TokenAcquisitionTimeoutError(timeoutMs),
        callerSignal,
      );
    },
  };
}
