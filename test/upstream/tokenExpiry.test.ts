import { describe, expect, it } from 'vitest';
import { isCompactJwt, jwtExpiry } from '../../shared/upstream/tokenExpiry.js';

const header = Buffer.from('{"alg":"ES256","typ":"JWT"}').toString('base64url');
const signature = 'c2lnbmF0dXJl';

/** A payload whose base64 contains `+`/`/` (standard) or `-`/`_` (url): `?>` and `~` bytes force those characters. */
const trickyJson = (exp: unknown) => JSON.stringify({ note: '??>>~~?>~', exp });

describe('jwtExpiry reads exp from any base64 dialect (docs/contracts/cross-cutting.md#jwt-encoding)', () => {
  it('base64url without padding', () => {
    const payload = Buffer.from(trickyJson(1_700_000_000)).toString('base64url');
    expect(payload).toMatch(/[-_]/);
    expect(jwtExpiry(`${header}.${payload}.${signature}`)).toEqual(new Date(1_700_000_000_000));
  });

  it('standard base64 with padding', () => {
    const payload = Buffer.from(`${trickyJson(1_700_000_001)} `).toString('base64');
    expect(payload).toMatch(/[+/]/);
    expect(payload).toMatch(/=$/);
    expect(jwtExpiry(`${header}.${payload}.${signature}`)).toEqual(new Date(1_700_000_001_000));
  });

  it('exp written as a string of digits (seen in MR test recordings, docs/contracts/open-points.md#mr-string-exp)', () => {
    const payload = Buffer.from(JSON.stringify({ exp: '1607978983' })).toString('base64url');
    expect(jwtExpiry(`${header}.${payload}.${signature}`)).toEqual(new Date(1_607_978_983_000));
  });

  it('no exp, a non-numeric exp, or a payload that is not JSON gives undefined', () => {
    const segment = (text: string) => Buffer.from(text).toString('base64url');
    expect(jwtExpiry(`${header}.${segment('{"iat":1}')}.${signature}`)).toBeUndefined();
    expect(jwtExpiry(`${header}.${segment('{"exp":"soon"}')}.${signature}`)).toBeUndefined();
    expect(jwtExpiry(`${header}.${segment('{"exp":-5}')}.${signature}`)).toBeUndefined();
    expect(jwtExpiry(`${header}.${segment('[1,2]')}.${signature}`)).toBeUndefined();
    expect(jwtExpiry(`${header}.${segment('not json')}.${signature}`)).toBeUndefined();
  });

  it('text that is not a compact JWT gives undefined', () => {
    for (const text of ['', 'abc', 'a.b', '<html>Gateway</html>', '"a.b.c"', `${header}.${header}.${signature}.x`]) {
      expect(jwtExpiry(text), text).toBeUndefined();
      expect(isCompactJwt(text), text).toBe(false);
    }
  });
});
