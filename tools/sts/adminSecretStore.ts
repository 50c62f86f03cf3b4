import { loadConfig } from '../../shared/config.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { KeyVaultSecretStore } from '../../shared/secrets/keyVaultSecretStore.js';
import type { WritableSecretStore } from '../../shared/secrets/secretStore.js';

/** Time allowed for one admin call: an operator's `az` sign-in can take seconds, unlike a request path. */
const ADMIN_TIMEOUT_MS = 30_000;

export interface AdminSecretStore {
  readonly store: WritableSecretStore;
  /** `embedded file store <path>` or `Key Vault <url>`, for the operator's terminal. */
  readonly description: string;
}

/**
 * The store the admin CLI writes: the embedded file store by default, Key Vault when `KEY_VAULT_URL` is set,
 * read uncached and with the identity `azureCredential.ts` chooses (an operator's developer-tool sign-in
 * locally; the managed identity where `IDENTITY_ENDPOINT` is set). Only the secret-store settings matter
 * here, so the ledger settings of the function app are not required.
 *
 * @example
 * const { store, description } = openAdminSecretStore(process.env);
 */
export function openAdminSecretStore(env: Readonly<Record<string, string | undefined>>): AdminSecretStore {
  const config = loadConfig({ ...env, STS_LEDGER_MODE: 'off' });
  const settings = config.secretStore;
  if (settings.kind === 'file') {
    return { store: new FileSecretStore(settings.path), description: `embedded file store ${settings.path}` };
  }
  const store = new KeyVaultSecretStore({
    vaultUrl: settings.vaultUrl,
    clientId: settings.clientId,
    timeoutMs: Math.max(config.secretCache.vaultTimeoutMs, ADMIN_TIMEOUT_MS),
  });
  return { store, description: `Key Vault ${settings.vaultUrl}` };
}
