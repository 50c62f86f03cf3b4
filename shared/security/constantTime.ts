import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compares a presented secret with an expected one in constant time. Both sides are hashed first so the
 * comparison never leaks length and `timingSafeEqual` always sees equal-length inputs.
 */
export function secretsEqual(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/**
 * Which of a credential's keys (slot 1 or 2) the presented key equals, or undefined. Both slots are always
 * compared so the time taken does not tell which slot matched.
 */
export function matchKeySlot(presented: string, keys: readonly [string, string]): 1 | 2 | undefined {
  const first = secretsEqual(presented, keys[0]);
  const second = secretsEqual(presented, keys[1]);
  if (first) return 1;
  if (second) return 2;
  return undefined;
}
