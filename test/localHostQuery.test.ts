import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { queryText } from '../tools/localHost/queryInit.js';

/**
 * The query a handler reads (`request.query`) is the URL's `searchParams`, whether the library parses the URL or
 * the local host hands it the query's text (which the library parses with `new URLSearchParams(text)`).
 */

const queryChars = fc.constantFrom(
  ...'ab09-_.~=&?/:@!$()*,;+%#\'"<>`{} \t\\'.split(''),
  '%20',
  '%zz',
  '%C3%A9',
  'é',
  '1',
  '12',
);
const targets = fc.oneof(
  fc.array(queryChars, { maxLength: 20 }).map((parts) => `/x${parts.length > 0 ? `?${parts.join('')}` : ''}`),
  // A `?` or `#` anywhere, the path included.
  fc.array(queryChars, { maxLength: 20 }).map((parts) => `/${parts.join('')}`),
);

const searchParamsOf = (target: string) => [...new URL(`http://h${target}`).searchParams];

describe('the query the local host hands the library', () => {
  it("parses to the URL's searchParams, same parameters in the same order, or is left to the library", () => {
    let handed = 0;
    fc.assert(
      fc.property(targets, (target) => {
        const text = queryText(target);
        if (text === undefined) return;
        handed += 1;
        expect([...new URLSearchParams(text)]).toEqual(searchParamsOf(target));
      }),
      { numRuns: 3_000 },
    );
    expect(handed).toBeGreaterThan(500);
  });

  it.each([
    ['/accounts/a/token?api-version=2019-02-28-preview', '?api-version=2019-02-28-preview'],
    ['/x', '?'],
    ['/x?', '?'],
    ['/x??a', '??a'],
    ['/x#f?a=1', '?'],
    ['/x?a=1&a=%20+b&1=2', '?a=1&a=%20+b&1=2'],
  ])('hands %s as %j', (target, expected) => {
    expect(queryText(target)).toBe(expected);
  });

  it.each(['/x?a=b#c', '/x?a=é', '/x?a b', "/x?a='"])(
    'leaves %s to the library (a fragment, or what the URL parser encodes)',
    (target) => {
      expect(queryText(target)).toBeUndefined();
    },
  );
});
