import { describe, expect, it } from 'vitest';
import { encodeJwtSegment, encodeJwtSegmentJson } from '../../shared/tokens/jwtSegment.js';

/** A JWT segment as written into a token: the base64url of the padded, base64-safe JSON, however it is written. */
describe('encodeJwtSegment', () => {
  const values: Record<string, unknown>[] = [
    {},
    { a: 1 },
    { ab: 1 },
    { abc: 1 },
    { a: '>é', b: '?~\u007f', c: '日本' },
    { jti: 'x', 'feature-flags': ['Face.Identification'], nested: { deep: [1, 2, 3] } },
    { big: 'x'.repeat(20_000) }, // past the reused buffer
  ];

  it('is the base64url of encodeJwtSegmentJson, with no "-", "_" or padding', () => {
    for (const value of values) {
      const segment = encodeJwtSegment(value);
      expect(segment).toBe(encodeJwtSegmentJson(value).toString('base64url'));
      expect(segment).toMatch(/^[A-Za-z0-9]*$/);
      expect(JSON.parse(Buffer.from(segment, 'base64').toString('utf8'))).toEqual(value);
    }
  });

  it('gives the same segment when called again after a longer one', () => {
    const short = { a: 1 };
    const first = encodeJwtSegment(short);
    encodeJwtSegment({ long: 'y'.repeat(5_000) });
    expect(encodeJwtSegment(short)).toBe(first);
  });

  it('refuses what is not a JSON object', () => {
    expect(() => encodeJwtSegment([] as unknown as Record<string, unknown>)).toThrow(TypeError);
  });
});
