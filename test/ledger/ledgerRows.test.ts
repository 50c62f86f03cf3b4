import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../../shared/ledger/ledger.js';
import { fromLedgerRow, LEDGER_SHARDS, rowKeyOf, toLedgerRow } from '../../shared/ledger/ledgerRows.js';

const issued: LedgerEntry = {
  time: new Date('2026-03-01T09:30:15.123Z'),
  flow: 'issueToken',
  outcome: 'issued',
  status: 200,
  requestId: '0f8fad5b-d9cb-469f-a165-70867728950e',
  clientIp: '203.0.113.7',
  credentialId: 'acme-speech',
  keySlot: 2,
  audience: 'urn:ms.speechservices.westeurope',
  scope: 'speechservices',
  featureFlags: ['tts', 'stt'],
  jti: 'c5a1b0f3c2',
  expiresAt: new Date('2026-03-01T09:40:15.000Z'),
};

/** Characters Azure Table Storage forbids in PartitionKey and RowKey. */
// eslint-disable-next-line no-control-regex -- control characters are what Table storage forbids in keys
const FORBIDDEN_IN_KEYS = /[/\\#?\u0000-\u001f\u007f-\u009f]/;

describe('ledger row layout', () => {
  it('keys an issued token by credential, UTC hour and shard, newest first inside the partition', () => {
    const row = toLedgerRow(issued, 3);
    expect(row.partitionKey).toBe('c:acme-speech|2026030109|3');
    expect(row.rowKey).toBe(`${9_999_999_999_999 - issued.time.getTime()}|${issued.requestId}|issued`);
    const later = rowKeyOf({ ...issued, time: new Date(issued.time.getTime() + 1) });
    expect(later < row.rowKey).toBe(true);
  });

  it('stores every field of the entry and reads it back unchanged', () => {
    const row = toLedgerRow(issued, 0);
    expect(row).toMatchObject({
      Time: issued.time,
      Flow: 'issueToken',
      Outcome: 'issued',
      Status: 200,
      RequestId: issued.requestId,
      ClientIp: '203.0.113.7',
      CredentialId: 'acme-speech',
      KeySlot: 2,
      Audience: 'urn:ms.speechservices.westeurope',
      Scope: 'speechservices',
      FeatureFlags: 'tts stt',
      Jti: 'c5a1b0f3c2',
      ExpiresAt: issued.expiresAt,
    });
    const { partitionKey, rowKey, ...entry } = fromLedgerRow(row as unknown as Record<string, unknown>);
    expect(partitionKey).toBe(row.partitionKey);
    expect(rowKey).toBe(row.rowKey);
    expect(entry).toEqual({ ...issued, reason: undefined });
  });

  it('keys a refusal without a credential by client IP, and by flow when the IP is unknown too', () => {
    const refused: LedgerEntry = {
      time: issued.time,
      flow: 'wrapToken',
      outcome: 'refused',
      status: 401,
      requestId: 'r1',
      reason: 'missing_credentials',
    };
    expect(toLedgerRow({ ...refused, clientIp: '2001:db8::1' }, 1).partitionKey).toBe(
      'ip:2001%3Adb8%3A%3A1|2026030109|1',
    );
    expect(toLedgerRow(refused, 1).partitionKey).toBe('flow:wrapToken|2026030109|1');
    expect(toLedgerRow({ ...refused, credentialId: '', clientIp: '198.51.100.2' }, 0).CredentialId).toBeUndefined();
  });

  it('never puts a forbidden character in a key and stays far below the 1 KiB key limit, whatever the client sent', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 3_000 }),
        fc.string({ maxLength: 200 }),
        fc.integer({ min: 0, max: LEDGER_SHARDS - 1 }),
        (id, requestId, shard) => {
          const row = toLedgerRow({ ...issued, credentialId: id || 'x', clientIp: id, requestId }, shard);
          for (const key of [row.partitionKey, row.rowKey]) {
            expect(key).not.toMatch(FORBIDDEN_IN_KEYS);
            expect(key.length).toBeLessThanOrEqual(400);
          }
          expect(row.partitionKey.split('|')).toHaveLength(3);
          expect((row.CredentialId ?? '').length).toBeLessThanOrEqual(512);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps the same keys for the same entry (a retried batch overwrites, never duplicates)', () => {
    expect(toLedgerRow(issued, 2)).toEqual(toLedgerRow({ ...issued }, 2));
  });

  it('drops an invalid expiry instead of failing the whole batch', () => {
    expect(toLedgerRow({ ...issued, expiresAt: new Date(Number.NaN) }, 0).ExpiresAt).toBeUndefined();
  });
});
