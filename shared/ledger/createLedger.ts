import type { TokenCredential } from '@azure/identity';
import type { StsConfig } from '../config.js';
import { getAzureCredential } from '../secrets/azureCredential.js';
import type { SecretStore } from '../secrets/secretStore.js';
import { addressForm } from './ledgerAddress.js';
import { disabledLedger, type Ledger } from './ledger.js';
import { openLedgerTable } from './ledgerTable.js';
import { TableLedger, type TableLedgerOptions } from './tableLedger.js';

/** Upper bound for acquiring the identity's token; the ledger's own operation timeout bounds the write too. */
const TOKEN_TIMEOUT_MS = 2_000;

export interface CreateLedgerOptions extends Partial<Omit<TableLedgerOptions, 'mode' | 'openTable'>> {
  /** The app's identity for `STS_LEDGER_TABLE_URL` (called once, on the first write). */
  readonly credential?: () => Promise<TokenCredential>;
  /** Where the `keyed-hash` address key is read (`STS_LEDGER_CLIENT_ADDRESS=keyed-hash`). */
  readonly secrets?: SecretStore;
}

/**
 * The ledger `config.ledger` asks for: {@link disabledLedger} when `mode` is `off`, otherwise a
 * {@link TableLedger} on the configured table. Nothing is loaded or connected until the first row.
 *
 * @example
 * const ledger = createLedger(config);
 */
export function createLedger(config: StsConfig, options: CreateLedgerOptions = {}): Ledger {
  const { mode } = config.ledger;
  if (mode === 'off') return disabledLedger;
  const clientId = config.secretStore.kind === 'keyVault' ? config.secretStore.clientId : undefined;
  // The same identity as Key Vault (managed identity in Azure), chosen in one place.
  const credential = options.credential ?? (() => getAzureCredential({ clientId, tokenTimeoutMs: TOKEN_TIMEOUT_MS }));
  // Rows keep only what STS_LEDGER_CLIENT_ADDRESS allows of the client address (docs/ledger.md).
  const { clientAddress } = config.ledger;
  return new TableLedger({
    deadlineMs: config.ledger.deadlineMs,
    ...(clientAddress === 'full' ? {} : { addressForm: addressForm(clientAddress, options.secrets) }),
    ...options,
    mode,
    openTable: () => openLedgerTable(config.ledger, credential),
  });
}
