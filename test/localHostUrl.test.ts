import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { handlerUrl } from '../tools/localHost/handlerUrl.js';

/**
 * The URL the local host hands a handler is the URL parser's serialisation of what the client sent, whether
 * the host copies a plain path or runs the parser.
 */

/** Characters where the URL parser changes a path or query, and plain ones around them. */
const pathChars = fc.constantFrom(
  ...'aZ09-._~!$&()*+,;=:@/%?#\\ "\'<>`{}|^[]\t\n'.split(''),
  '.',
  '..',
  '%2e',
  '%2E',
  '%2F',
  '%zz',
  'é',
  '\u00ff',
  '\u0000',
);
/** Mostly plain characters, so that both the copied and the parsed case are drawn often. */
const plainChars = fc.constantFrom(...'abcXYZ019-_~/.%?=&'.split(''));
const pathAndQuery = fc
  .array(fc.oneof({ arbitrary: plainChars, weight: 12 }, { arbitrary: pathChars, weight: 1 }), { maxLength: 24 })
  .map((parts) => `/${parts.join('')}`);
const authorities = fc.constantFrom('127.0.0.1:7071', 'LOCALHOST:80', 'sts.example:443', '[::1]:8080', 'a.b', '0x7f.1');

describe('the URL a handler gets from the local host', () => {
  it('is what the URL parser makes of the request, for any path and query', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<'http' | 'https'>('http', 'https'),
        authorities,
        pathAndQuery,
        (scheme, authority, target) => {
          expect(handlerUrl(scheme, authority, target)).toBe(new URL(`${scheme}://${authority}${target}`).href);
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it.each([
    ['/accounts/abc/token', 'http://127.0.0.1:7071/accounts/abc/token'],
    ['/a/./b/../c?x=1#f', 'http://127.0.0.1:7071/a/c?x=1#f'],
    ['/%2e%2E/x', 'http://127.0.0.1:7071/x'],
    ['/a b?c d', 'http://127.0.0.1:7071/a%20b?c%20d'],
    ['/x?', 'http://127.0.0.1:7071/x?'],
  ])('serialises %s as the parser does', (target, expected) => {
    expect(handlerUrl('http', '127.0.0.1:7071', target)).toBe(expected);
  });

  it('serialises the authority as the parser does (lower case, default port dropped)', () => {
    expect(handlerUrl('http', 'LOCALHOST:80', '/x')).toBe('http://localhost/x');
    expect(handlerUrl('https', 'Sts.Example:443', '/x')).toBe('https://sts.example/x');
    expect(handlerUrl('http', '0x7f.1:8080', '/x')).toBe('http://127.0.0.1:8080/x');
  });
});
