import { describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../../shared/ledger/ledger.js';
import { fromLedgerRow, toLedgerRow } from '../../shared/ledger/ledgerRows.js';

/** The ledger names an Entra caller by its principal, in its own column, and reads it back. */

describe('ledger rows of Entra callers', () => {
  it('store the principal in a Principal column and read it back; key rows have none', () => {
    const entry: LedgerEntry = {
      time: new Date('2026-03-01T09:30:00Z'),
      flow: 'mixedRealityToken',
      outcome: 'issued',
      status: 200,
      requestId: '6f1c5a8e-2b1d-4c55-9d0e-0c6b5f3f1a22',
      credentialId: '3f616cd1-c82e-4d20-9118-29717f9b97f9',
      principal: '72f988bf-86f1-41af-91ab-2d7cd011db47/0b8a2b51-7f3c-4c5e-bd7e-7a9a3c0f5e11',
      audience: 'https://mr.test.example/',
    };
    const row = toLedgerRow(entry, 0);
    expect(row.Principal).toBe(entry.principal);
    expect(row).not.toHaveProperty('KeySlot');
    expect(fromLedgerRow({ ...row })).toMatchObject({
      principal: entry.principal,
      credentialId: entry.credentialId,
      keySlot: undefined,
    });

    const keyRow = toLedgerRow({ ...entry, principal: undefined, keySlot: 1 }, 0);
    expect(keyRow).not.toHaveProperty('Principal');
    expect(fromLedgerRow({ ...keyRow }).principal).toBeUndefined();
  });
});
