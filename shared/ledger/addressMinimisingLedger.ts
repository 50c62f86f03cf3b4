import type { LedgerAddressMode } from '../config.js';
import { DependencyUnavailableError } from '../errors.js';
import type { SecretStore } from '../secrets/secretStore.js';
import { LEDGER_ADDRESS_KEY_SECRET, MIN_ADDRESS_KEY_CHARS, storedAddress } from './ledgerAddress.js';
import type { Ledger, LedgerEntry } from './ledger.js';

/** How long the `keyed-hash` key is held in memory before it is read again (a rotation shows within this). */
const KEY_MAX_AGE_MS = 5 * 60_000;

export interface AddressMinimisingOptions {
  readonly mode: Exclude<LedgerAddressMode, 'full'>;
  /** `required`: no key, no row (the caller answers 503); `best-effort`: the row is written without the address. */
  readonly ledgerMode: 'required' | 'best-effort';
  /** Where the `keyed-hash` key is read ({@link LEDGER_ADDRESS_KEY_SECRET}). */
  readonly secrets?: SecretStore;
  readonly retryAfterSeconds?: number;
  readonly clock?: () => number;
}

/**
 * A ledger that stores less of the client address than the request had: every entry's `clientIp` is replaced
 * by its truncated or keyed-hash form before the inner ledger sees it, so the full address never reaches a row
 * or a PartitionKey. The failed-attempt limits are untouched: they count the full address in memory, before
 * the ledger. `full` needs no wrapper (createLedger does not add one).
 *
 * @example
 * const ledger = new AddressMinimisingLedger(tableLedger, { mode: 'truncated', ledgerMode: 'required' });
 */
export class AddressMinimisingLedger implements Ledger {
  private key: { value: string; readAt: number } | undefined;
  private reading: Promise<string> | undefined;

  constructor(
    private readonly inner: Ledger,
    private readonly options: AddressMinimisingOptions,
  ) {}

  record(entry: LedgerEntry): Promise<void> {
    const address = entry.clientIp;
    if (address === undefined) return this.inner.record(entry);
    if (this.options.mode === 'truncated')
      return this.inner.record({ ...entry, clientIp: storedAddress(address, 'truncated') });
    const now = (this.options.clock ?? Date.now)();
    if (this.key && now - this.key.readAt < KEY_MAX_AGE_MS) {
      return this.inner.record({ ...entry, clientIp: storedAddress(address, 'keyed-hash', this.key.value) });
    }
    return this.readKey().then(
      (key) => this.inner.record({ ...entry, clientIp: storedAddress(address, 'keyed-hash', key) }),
      (error: unknown) => {
        if (this.options.ledgerMode === 'best-effort') return this.inner.record({ ...entry, clientIp: undefined });
        throw new DependencyUnavailableError(
          'ledger',
          this.options.retryAfterSeconds ?? 5,
          'the ledger address key is unavailable',
          {
            cause: error,
          },
        );
      },
    );
  }

  isSaturated(): boolean {
    return this.inner.isSaturated?.() ?? false;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** One read at a time; a missing or short key is an error (never a weaker hash). */
  private readKey(): Promise<string> {
    this.reading ??= (async () => {
      try {
        const secret = await this.options.secrets?.getSecret(LEDGER_ADDRESS_KEY_SECRET);
        if (!secret || secret.value.length < MIN_ADDRESS_KEY_CHARS) {
          throw new Error(
            `secret ${LEDGER_ADDRESS_KEY_SECRET} is missing or shorter than ${MIN_ADDRESS_KEY_CHARS} characters`,
          );
        }
        this.key = { value: secret.value, readAt: (this.options.clock ?? Date.now)() };
        return secret.value;
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }
}
