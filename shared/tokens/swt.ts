import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { secretsEqual } from '../security/constantTime.js';
import { StsBaseError } from '../errors.js';

/**
 * Simple Web Token (SWT 0.9.5.1) signing and verification, docs/contracts/acs-wrap.md#swt.
 *
 * An SWT is `name=value` pairs, form-encoded with lower-case hex escapes (the .NET `HttpUtility.UrlEncode`
 * style real ACS emitted), joined by `&`, followed by `&HMACSHA256=<url-encoded base64 HMAC-SHA256>` over the
 * exact ASCII bytes before it. This module works on the single-encoded form; the WRAP response body encodes it
 * once more.
 *
 * This file must stay free of server dependencies: the resource-server verification module re-exports it.
 */

/** One SWT claim, in token order. */
export type SwtClaim = readonly [name: string, value: string];

/** Stable codes of {@link SwtError}; messages may change, codes do not. */
export type SwtErrorCode =
  | 'ERR_SWT_INVALID_KEY'
  | 'ERR_SWT_INVALID_CLAIMS'
  | 'ERR_SWT_MALFORMED'
  | 'ERR_SWT_SIGNATURE_INVALID'
  | 'ERR_SWT_EXPIRED'
  | 'ERR_SWT_AUDIENCE_MISMATCH'
  | 'ERR_SWT_ISSUER_MISMATCH';

/** Why an SWT could not be signed or verified. The message never contains the key or the token. */
export class SwtError extends StsBaseError {
  constructor(
    readonly code: SwtErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SwtError';
  }
}

export interface SwtVerifyOptions {
  /** The time to check `ExpiresOn` against; defaults to the current time. */
  readonly now?: Date;
  /** When given, the `Audience` claim must equal it exactly. */
  readonly audience?: string;
  /** When given, the `Issuer` claim must equal it exactly. */
  readonly issuer?: string;
  /** Accepted clock difference in seconds (default 0). */
  readonly clockSkewSeconds?: number;
}

const SIGNATURE_NAME = 'HMACSHA256';
const SIGNATURE_SEPARATOR = `&${SIGNATURE_NAME}=`;
const EXPIRES_ON = 'ExpiresOn';
const AUDIENCE = 'Audience';
const ISSUER = 'Issuer';
/** Generous upper bound; real ACS tokens are well under 1 KB. Stops pathological input early. */
const MAX_TOKEN_LENGTH = 16_384;

/**
 * Signs claims as an SWT (docs/contracts/acs-wrap.md#swt, SWT 0.9.5.1 §3).
 *
 * Claims are written in the given order, each name and value form-encoded with lower-case hex escapes, so
 * no raw `=` or `&` can appear inside them. `HMACSHA256` is appended last. Throws {@link SwtError}
 * `ERR_SWT_INVALID_CLAIMS` when `ExpiresOn` would be the last claim (legacy Python reads it up to the next
 * `&`), a name repeats, is empty or is the reserved `HMACSHA256`; `ERR_SWT_INVALID_KEY` when the key is not
 * non-empty base64. The key is the base64 text, or the key object {@link swtSigningKey} made of it once (a
 * caller signing many tokens with one key need not decode it every time).
 *
 * @example
 * const swt = signSwt([['Audience', 'http://ns.servicebus.windows.net/'], ['ExpiresOn', '1404435127'],
 *   ['Issuer', 'https://ns-sb.accesscontrol.windows.net/']], base64Key);
 * // 'Audience=http%3a%2f%2fns.servicebus.windows.net%2f&ExpiresOn=1404435127&Issuer=…&HMACSHA256=…'
 */
export function signSwt(claims: readonly SwtClaim[], base64Key: string | KeyObject): string {
  const key = typeof base64Key === 'string' ? decodeKey(base64Key) : base64Key;
  const unsigned = encodeSwtClaims(claims);
  if (claims[claims.length - 1]?.[0] === EXPIRES_ON) {
    throw new SwtError('ERR_SWT_INVALID_CLAIMS', `${EXPIRES_ON} must not be the last claim`);
  }
  return `${unsigned}${swtSignaturePair(unsigned, key)}`;
}

/**
 * The claims of an SWT as {@link signSwt} writes them before its signature: `name=value` pairs joined by `&`, each
 * name and value form-encoded. Checks what signSwt checks of each claim (at least one; names non-empty, not
 * repeated, not the reserved `HMACSHA256`). Encoding is per character, so the text of a list of claims is the
 * text of its first claims, `&`, then the text of the rest: a signer may encode the claims that never change
 * once, and only the others per token.
 */
export function encodeSwtClaims(claims: readonly SwtClaim[]): string {
  if (claims.length === 0) throw new SwtError('ERR_SWT_INVALID_CLAIMS', 'An SWT needs at least one claim');
  let unsigned = '';
  for (let i = 0; i < claims.length; i += 1) {
    const [name, value] = claims[i] as SwtClaim;
    if (name === '') throw new SwtError('ERR_SWT_INVALID_CLAIMS', 'Claim names must not be empty');
    if (name === SIGNATURE_NAME)
      throw new SwtError('ERR_SWT_INVALID_CLAIMS', `${SIGNATURE_NAME} is reserved for the signature`);
    if (appearsBefore(claims, i)) throw new SwtError('ERR_SWT_INVALID_CLAIMS', `Claim ${name} appears twice`);
    unsigned += `${i === 0 ? '' : '&'}${encodeSwtComponent(name)}=${encodeSwtComponent(value)}`;
  }
  return unsigned;
}

/**
 * The pair that ends an SWT: `&HMACSHA256=<form-encoded base64 HMAC-SHA256 of unsigned>`, where `unsigned` is the
 * encoded claims ({@link encodeSwtClaims}). The caller vouches that `unsigned` is such text and that `ExpiresOn`
 * is not its last claim.
 */
export function swtSignaturePair(unsigned: string, key: KeyObject | Buffer): string {
  return `${SIGNATURE_SEPARATOR}${encodeSwtComponent(hmacBase64(unsigned, key))}`;
}

/** Whether the name of `claims[index]` is also the name of an earlier claim (SWTs carry a handful of claims). */
function appearsBefore(claims: readonly SwtClaim[], index: number): boolean {
  const name = (claims[index] as SwtClaim)[0];
  for (let i = 0; i < index; i += 1) if ((claims[i] as SwtClaim)[0] === name) return true;
  return false;
}

/**
 * The HMAC key of a base64 shared key, for {@link signSwt}: decoded and checked once. Throws {@link SwtError}
 * `ERR_SWT_INVALID_KEY` as {@link signSwt} does.
 *
 * @example
 * const key = swtSigningKey(base64Key);
 * signSwt(claims, key) === signSwt(claims, base64Key); // true
 */
export function swtSigningKey(base64Key: string): KeyObject {
  return createSecretKey(decodeKey(base64Key));
}

/**
 * Verifies an SWT (docs/contracts/acs-wrap.md#swt, SWT 0.9.5.1 §4) and returns its claims in token order, decoded.
 *
 * Checks, in this order: shape (pairs of exactly one `=`, `HMACSHA256` last, unique names), the signature
 * (constant-time), `ExpiresOn` (required, integer seconds; the token is expired once
 * `ExpiresOn <= now - clockSkewSeconds`), then the expected `Audience` and `Issuer` when given.
 * Throws {@link SwtError} with a stable code on any failure.
 *
 * @example
 * const claims = verifySwt(token, base64Key, { audience: 'http://ns.servicebus.windows.net/' });
 * new Map(claims).get('net.windows.servicebus.action'); // 'Listen,Manage,Send'
 */
export function verifySwt(token: string, base64Key: string, options: SwtVerifyOptions = {}): SwtClaim[] {
  const key = decodeKey(base64Key);
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    throw new SwtError('ERR_SWT_MALFORMED', 'The token is empty or too long');
  }
  const at = token.lastIndexOf(SIGNATURE_SEPARATOR);
  if (at <= 0) throw new SwtError('ERR_SWT_MALFORMED', `The token has no ${SIGNATURE_NAME} pair at the end`);
  const unsigned = token.slice(0, at);
  const encodedSignature = token.slice(at + SIGNATURE_SEPARATOR.length);
  if (encodedSignature.includes('&') || encodedSignature.includes('=')) {
    throw new SwtError('ERR_SWT_MALFORMED', `${SIGNATURE_NAME} must be the last pair`);
  }
  const claims = parseClaims(unsigned);

  const presented = decodeSwtComponent(encodedSignature);
  if (presented === undefined || !secretsEqual(presented, hmacBase64(unsigned, key))) {
    throw new SwtError('ERR_SWT_SIGNATURE_INVALID', 'The signature does not match');
  }

  const byName = new Map(claims);
  const expiresOnText = byName.get(EXPIRES_ON);
  if (expiresOnText === undefined || !/^\d{1,12}$/.test(expiresOnText)) {
    throw new SwtError('ERR_SWT_MALFORMED', `${EXPIRES_ON} is missing or not whole seconds`);
  }
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const skew = options.clockSkewSeconds ?? 0;
  if (Number(expiresOnText) <= nowSeconds - skew) throw new SwtError('ERR_SWT_EXPIRED', 'The token has expired');
  if (options.audience !== undefined && byName.get(AUDIENCE) !== options.audience) {
    throw new SwtError('ERR_SWT_AUDIENCE_MISMATCH', 'The token is for another audience');
  }
  if (options.issuer !== undefined && byName.get(ISSUER) !== options.issuer) {
    throw new SwtError('ERR_SWT_ISSUER_MISMATCH', 'The token is from another issuer');
  }
  return claims;
}

/**
 * Form-encodes a name or value the way .NET `HttpUtility.UrlEncode` does: UTF-8 bytes; letters, digits and
 * `-_.!*()` kept; space as `+`; everything else `%xx` with lower-case hex. Exported for the WRAP flow, which
 * must encode the whole SWT once more in the same style.
 */
export function encodeSwtComponent(text: string): string {
  let kept = 0;
  while (kept < text.length && KEPT[text.charCodeAt(kept)] === 1) kept += 1;
  if (kept === text.length) return text;
  // Written into a reused buffer and read once as text, so the answer is the only allocation (this runs for
  // each claim of every WRAP token, and once more over the whole token).
  const out = text.length * 3 <= SCRATCH.length ? SCRATCH : Buffer.allocUnsafe(text.length * 3);
  let at = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return encodeUtf8(Buffer.from(text, 'utf8'));
    at = writeEncodedByte(out, at, code);
  }
  return out.toString('latin1', 0, at);
}

/** {@link encodeSwtComponent} of text that is not all ASCII, over its UTF-8 bytes. */
function encodeUtf8(bytes: Buffer): string {
  const out = bytes.length * 3 <= SCRATCH.length ? SCRATCH : Buffer.allocUnsafe(bytes.length * 3);
  let at = 0;
  for (let i = 0; i < bytes.length; i += 1) {
    at = writeEncodedByte(out, at, bytes[i] as number);
  }
  return out.toString('latin1', 0, at);
}

/** Writes `byte` form-encoded at `out[at]` (kept, `+` for a space, else `%` and two lower-case hex digits); returns the next position. */
function writeEncodedByte(out: Buffer, at: number, byte: number): number {
  if (KEPT[byte] === 1) out[at++] = byte;
  else if (byte === 0x20)
    out[at++] = 0x2b; // +
  else {
    out[at++] = 0x25; // %
    out[at++] = LOWER_HEX[byte >> 4] as number;
    out[at++] = LOWER_HEX[byte & 0x0f] as number;
  }
  return at;
}

/** Where {@link encodeSwtComponent} writes (synchronously, so one buffer serves every call); longer text gets its own. */
const SCRATCH = Buffer.alloc(4_096);

/** The ASCII codes of `0-9a-f`: lower-case hex, as .NET writes it. */
const LOWER_HEX = Uint8Array.from('0123456789abcdef', (digit) => digit.charCodeAt(0));

/** 1 for each byte {@link encodeSwtComponent} keeps as it is (letters, digits, `-_.!*()`). */
const KEPT = Uint8Array.from({ length: 256 }, (_, byte) => (isUrlSafeByte(byte) ? 1 : 0));

/** Decodes a form-encoded component (`+` is space, hex either case); undefined when malformed or not UTF-8. */
export function decodeSwtComponent(text: string): string | undefined {
  if (/%(?![0-9a-fA-F]{2})/.test(text)) return undefined;
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

function isUrlSafeByte(byte: number): boolean {
  return (
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    byte === 0x2d || // -
    byte === 0x5f || // _
    byte === 0x2e || // .
    byte === 0x21 || // !
    byte === 0x2a || // *
    byte === 0x28 || // (
    byte === 0x29 // )
  );
}

function parseClaims(unsigned: string): SwtClaim[] {
  const claims: SwtClaim[] = [];
  const seen = new Set<string>();
  for (const pair of unsigned.split('&')) {
    const parts = pair.split('=');
    if (parts.length !== 2) throw new SwtError('ERR_SWT_MALFORMED', 'Every pair must have exactly one "="');
    const name = decodeSwtComponent(parts[0] ?? '');
    const value = decodeSwtComponent(parts[1] ?? '');
    if (name === undefined || value === undefined || name === '') {
      throw new SwtError('ERR_SWT_MALFORMED', 'A pair is not valid form encoding');
    }
    if (name === SIGNATURE_NAME || seen.has(name)) {
      throw new SwtError('ERR_SWT_MALFORMED', `Claim ${name} appears more than once`);
    }
    seen.add(name);
    claims.push([name, value]);
  }
  return claims;
}

function decodeKey(base64Key: string): Buffer {
  if (typeof base64Key !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64Key) || base64Key.length % 4 !== 0) {
    throw new SwtError('ERR_SWT_INVALID_KEY', 'The shared key must be non-empty base64');
  }
  return Buffer.from(base64Key, 'base64');
}

function hmacBase64(message: string, key: Buffer | KeyObject): string {
  // The message is ASCII by construction (everything outside [-_.!*()A-Za-z0-9] is %-escaped), but a token
  // presented for verification may not be; 'latin1' would silently alias, so hash the UTF-8 bytes.
  return createHmac('sha256', key).update(message, 'utf8').digest('base64');
}
