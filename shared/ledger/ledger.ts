import type { FlowName } from '../flowNames.js';

/** What the ledger records for one outcome. Never a key, never a token. */
export interface LedgerEntry {
  readonly time: Date;
  readonly flow: FlowName;
  /**
   * `issued`: a token left the STS; `refused`: 401/403/429; `upstream`: a token fetched from an upstream STS. (A
   * stored row may also say `abandoned`: minted, but answered 503 because its row's commit was not known in time;
   * the ledger writes that itself, docs/ledger.md#issued.)
   */
  readonly outcome: 'issued' | 'refused' | 'upstream';
  readonly status: number;
  readonly requestId: string;
  readonly clientIp?: string | undefined;
  readonly credentialId?: string | undefined;
  /** The Microsoft Entra principal of a keyless caller, `<tenant id>/<object id>` (docs/entra-id.md). */
  readonly principal?: string | undefined;
  readonly keySlot?: 1 | 2 | undefined;
  readonly audience?: string | undefined;
  readonly scope?: string | undefined;
  readonly featureFlags?: readonly string[] | undefined;
  readonly jti?: string | undefined;
  readonly expiresAt?: Date | undefined;
  /** Reason code of a refusal (`wrong_key`, `unknown_credential`, ...). */
  readonly reason?: string | undefined;
  /**
   * Where an issued token came from when not minted here: `upstream:fetched`, `upstream:cached` or
   * `upstream:fallback` (upstream mode). Absent for locally minted tokens.
   */
  readonly source?: string | undefined;
}

/** What a flow reports about the token it issued; the function wrapper adds the request's own facts. */
export type IssuanceFacts = Omit<LedgerEntry, 'time' | 'flow' | 'outcome' | 'status' | 'requestId' | 'clientIp'>;

/**
 * The issuance ledger. `record` resolves once the entry is durable as the configured mode requires
 * (`required`: committed; `best-effort`: committed or its deadline passed; `off`: immediately). In `required`
 * mode it rejects with a `DependencyUnavailableError` when the row cannot be committed within its deadline
 * (docs/ledger.md#deadline), and the caller must not issue. Refusals that prove no credential resolve at once
 * (they are aggregated per client address, docs/ledger.md#refusals).
 */
export interface Ledger {
  record(entry: LedgerEntry): Promise<void>;
  /** Flushes pending writes and releases resources (graceful shutdown). */
  close(): Promise<void>;
  /**
   * True while issuance is short of table capacity (every transaction slot taken, or batches waiting for one):
   * retention removal pauses then (ledgerRetention.ts). Absent: never.
   */
  isSaturated?(): boolean;
}

/** The ledger of `STS_LEDGER_MODE=off`. */
export const disabledLedger: Ledger = {
  record: async () => {},
  close: async () => {},
};
