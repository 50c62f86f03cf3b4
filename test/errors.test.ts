import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StsBaseError, StsError, statusOf, type StsErrorCode } from '../shared/errors.js';
import { renderError } from '../shared/http/errorShapes.js';

/** The error types: the code of a refusal decides what a client sees, and every error class has one base. */

describe('refusal codes', () => {
  const expected: Record<StsErrorCode, number> = {
    ERR_STS_INVALID_REQUEST: 400,
    ERR_STS_INVALID_CREDENTIALS: 401,
    ERR_STS_FORBIDDEN: 403,
    ERR_STS_PAYLOAD_TOO_LARGE: 413,
    ERR_STS_URL_TOO_LONG: 414,
    ERR_STS_RATE_LIMITED: 429,
    ERR_STS_HEADERS_TOO_LARGE: 431,
    ERR_STS_UNAVAILABLE: 503,
  };

  it.each(Object.entries(expected) as [StsErrorCode, number][])('%s is answered %i in every shape', (code, status) => {
    const error = new StsError(code, 'text');
    expect(error.status).toBe(status);
    expect(statusOf(code)).toBe(status);
    for (const shape of ['mixedReality', 'cognitive', 'wrap', 'oauthJson'] as const) {
      expect(renderError(shape, error, { requestId: 'r', now: new Date(0) }).status).toBe(status);
    }
  });

  it('429 and 503 carry their fixed public text when the thrower gives none', () => {
    expect(new StsError('ERR_STS_RATE_LIMITED', undefined).publicMessage).toBe(
      'Too many failed attempts. Retry later.',
    );
    expect(new StsError('ERR_STS_UNAVAILABLE', undefined).publicMessage).toBe(
      'The token service is temporarily unavailable. Retry later.',
    );
  });
});

describe('error classes', () => {
  it('every error class of the product and its tools extends StsBaseError, and no other class extends Error', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (path.endsWith('.ts') && path !== join('shared', 'errors.ts')) {
          if (/class \w+ extends Error\b/.test(readFileSync(path, 'utf8'))) offenders.push(path);
        }
      }
    };
    for (const root of ['shared', 'functions', 'tools']) walk(root);
    expect(offenders).toEqual([]);
    expect(new StsError('ERR_STS_FORBIDDEN', 'no')).toBeInstanceOf(StsBaseError);
  });
});
