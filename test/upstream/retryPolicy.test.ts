import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  classifyTransportError,
  isRetryableStatus,
  parseRetryAfter,
} from '../../shared/upstream/retryPolicy.js';

describe('which statuses the upstream client retries', () => {
  it('retries throttling and server errors', () => {
    for (const status of [429, 500, 502, 503, 504]) expect(isRetryableStatus(status), String(status)).toBe(true);
  });
  it('never retries any other 4xx, nor 501/505', () => {
    for (const status of [400, 401, 403, 404, 405, 408, 411, 413, 501, 505]) {
      expect(isRetryableStatus(status), String(status)).toBe(false);
    }
  });
});

describe('parseRetryAfter (RFC 9110 §10.2.3)', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('5', now)).toBe(5);
    expect(parseRetryAfter([' 120 '], now)).toBe(120);
    expect(parseRetryAfter('0', now)).toBe(0);
  });
  it('reads an HTTP-date as seconds from now, never negative', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
  });
  it('ignores absent or unreadable values', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-3', now)).toBeUndefined();
  });
});

describe('backoffDelayMs', () => {
  it('doubles per retry, keeps at least half the window, and is capped', () => {
    expect(backoffDelayMs(1, 200, 2_000, () => 0)).toBe(100);
    expect(backoffDelayMs(1, 200, 2_000, () => 1)).toBe(200);
    expect(backoffDelayMs(2, 200, 2_000, () => 0)).toBe(200);
    expect(backoffDelayMs(3, 200, 2_000, () => 1)).toBe(800);
    expect(backoffDelayMs(10, 200, 2_000, () => 1)).toBe(2_000);
    expect(backoffDelayMs(10, 200, 2_000, () => 0)).toBe(1_000);
  });
  it('spreads retries with jitter', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelayMs(3, 200, 2_000, Math.random)));
    expect(delays.size).toBeGreaterThan(10);
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(400);
      expect(delay).toBeLessThanOrEqual(800);
    }
  });
});

describe('classifyTransportError', () => {
  const withCode = (code: string, cause?: unknown) =>
    Object.assign(new Error('x', cause ? { cause } : undefined), { code });
  it('retries resets, refusals and timeouts', () => {
    expect(classifyTransportError(withCode('ECONNRESET'))).toMatchObject({ failure: 'connection', retryable: true });
    expect(classifyTransportError(withCode('UND_ERR_SOCKET'))).toMatchObject({
      failure: 'connection',
      retryable: true,
    });
    expect(classifyTransportError(withCode('ECONNREFUSED'))).toMatchObject({ failure: 'connection', retryable: true });
    expect(classifyTransportError(withCode('UND_ERR_HEADERS_TIMEOUT'))).toMatchObject({
      failure: 'timeout',
      retryable: true,
    });
    expect(classifyTransportError(withCode('UND_ERR_CONNECT_TIMEOUT'))).toMatchObject({
      failure: 'timeout',
      retryable: true,
    });
  });
  it('never retries a certificate failure, even when wrapped', () => {
    expect(classifyTransportError(withCode('SELF_SIGNED_CERT_IN_CHAIN'))).toMatchObject({
      failure: 'tls',
      retryable: false,
    });
    expect(classifyTransportError(withCode('ERR_TLS_CERT_ALTNAME_INVALID'))).toMatchObject({
      failure: 'tls',
      retryable: false,
    });
    expect(
      classifyTransportError(withCode('UND_ERR_SOCKET', withCode('UNABLE_TO_VERIFY_LEAF_SIGNATURE'))),
    ).toMatchObject({
      failure: 'tls',
      retryable: false,
    });
  });
  it('does not retry errors it does not know', () => {
    expect(classifyTransportError(new TypeError('bad header'))).toMatchObject({ retryable: false, code: 'unknown' });
  });
});
