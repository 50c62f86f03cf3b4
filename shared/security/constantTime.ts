import { hash, timingSafeEqual } from 'node:crypto';

/** SHA-256 of a secret: what constant-time comparisons compare (equal lengths, no length leak). */
export function secretDigest(secret: string): Buffer {
  // One-shot: no Hash object (a stream) per call, on every request that presents a key.
  return hash('sha256', secret, 'buffer');
}

/**
 * Compares a presented secret with an expected one in constant time. Both sides are hashed first so the
 * comparison never leaks length and `timingSafeEqual` always sees equal-length inputs.
 */
export function secretsEqual(presented: string, expected: string): boolean {
  return timingSafeEqual(secretDigest(presented), secretDigest(expected));
}

/**
 * Which of a credential's keys (slot 1 or 2) the presented key equals, or undefined, over digests computed
 * ahead (a credential's key digests are kept with its parsed record, so a request hashes only the presented
 * key). Both slots are always compared so the time taken does not tell which slot matched.
 */
export function matchKeyDigestSlot(presentedDigest: Buffer, keyDigests: readonly [Buffer, Buffer]): 1 | 2 | undefined {
  const first = timingSafeEqual(presentedDigest, keyDigests[0]);
  const second = timingSafeEqual(presentedDigest, keyDigests[1]);
  if (first) return 1;
  if (second) return 2;
  return undefined;
}
