import { describe, expect, it } from 'vitest';
import { upstreamLedgerEntry } from '../../shared/upstream/upstreamLedgerEntry.js';

describe('upstreamLedgerEntry', () => {
  const time = new Date('2025-04-21T12:00:00Z');
  const base = {
    time,
    flow: 'issueToken' as const,
    origin: 'https://westus.api.cognitive.microsoft.com',
    secretName: 'upstream-cs-speech',
    durationMs: 12,
    requestId: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
  };

  it('records a fetch as an upstream row, separate from issuance', () => {
    const expiresAt = new Date('2025-04-21T12:10:00Z');
    expect(
      upstreamLedgerEntry({ ...base, outcome: 'fetched', attempts: 2, keyReread: true, status: 200, expiresAt }),
    ).toEqual({
      time,
      flow: 'issueToken',
      outcome: 'upstream',
      status: 200,
      requestId: base.requestId,
      credentialId: 'upstream-cs-speech',
      audience: 'https://westus.api.cognitive.microsoft.com',
      expiresAt,
      reason: 'key_reread',
    });
  });

  it('records a failure with its reason, and 0 when the upstream never answered', () => {
    const entry = upstreamLedgerEntry({
      ...base,
      requestId: undefined,
      outcome: 'failed',
      attempts: 3,
      keyReread: false,
      failure: 'connection',
    });
    expect(entry).toMatchObject({ outcome: 'upstream', status: 0, reason: 'connection', requestId: 'upstream-fetch' });
  });
});
