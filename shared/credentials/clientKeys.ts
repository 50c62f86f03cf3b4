/**
 * What a client key (Mixed Reality account key, Cognitive subscription key, WRAP issuer password) must look
 * like to be accepted at all (docs/failed-attempts.md, "Key entropy").
 *
 * The entropy itself comes from the writer: every key the admin CLI creates is drawn from `crypto.randomBytes`
 * (16 bytes as 32 hex characters, or 32 bytes as base64), and no CLI option takes a client key from the
 * operator. This check is the reader's guard against a record written by hand into the vault: a key shorter
 * than 32 characters, or one that uses fewer than 8 distinct characters (`aaaa…`, `passwordpassword…`),
 * makes the record unreadable, so the credential is refused rather than guessable. It cannot measure entropy;
 * it refuses the values a person would type.
 */
export const MIN_CLIENT_KEY_LENGTH = 32;
export const MAX_CLIENT_KEY_LENGTH = 256;
const MIN_DISTINCT_CHARACTERS = 8;
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

/**
 * True when `key` may be a client key: 32-256 printable ASCII characters, at least 8 of them distinct.
 *
 * @example
 * isAcceptableClientKey(randomBytes(16).toString('hex')); // true (all but about 1 in 28 million draws)
 * isAcceptableClientKey('correct horse battery staple');  // false
 */
export function isAcceptableClientKey(key: string): boolean {
  if (key.length < MIN_CLIENT_KEY_LENGTH || key.length > MAX_CLIENT_KEY_LENGTH || !PRINTABLE_ASCII.test(key))
    return false;
  return new Set(key).size >= MIN_DISTINCT_CHARACTERS;
}
