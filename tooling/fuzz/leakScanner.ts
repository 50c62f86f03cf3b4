/**
 * Finds secrets where they must never be: a key, password or signing key in any response or log line, and a
 * token issued to one request in the response to another (or in a log line).
 *
 * Tokens are recognised by their unforgeable part, the signature: a JWT's third segment, an SWT's
 * `HMACSHA256` value. Each is indexed as overlapping windows (length {@link WINDOW}, every {@link STEP}
 * characters), so any leaked run of at least WINDOW + STEP characters, a truncated copy included, contains
 * an indexed window. Text is scanned raw and percent-decoded once and twice (the WRAP body double-encodes).
 */

const WINDOW = 20;
const STEP = 8;
/** Runs of characters that can make up a base64 / base64url signature. */
const RUN = /[A-Za-z0-9+/_-]{20,}/g;

export interface Leak {
  readonly what: 'secret' | 'token';
  /** A short, masked description of what leaked (never the value itself). */
  readonly detail: string;
}

export class LeakScanner {
  private readonly secrets: readonly { readonly value: string; readonly label: string }[];
  private readonly windows = new Map<string, number>();
  private tokens = 0;

  /** `secrets` are the stored values that must never appear anywhere, each labelled for the report. */
  constructor(secrets: ReadonlyArray<{ readonly value: string; readonly label: string }>) {
    this.secrets = secrets
      .filter((secret) => secret.value.length >= 12)
      .flatMap((secret) => variants(secret.value).map((value) => ({ value, label: secret.label })));
  }

  /** How many issued tokens are indexed. */
  get tokenCount(): number {
    return this.tokens;
  }

  /**
   * Indexes a token that has just been issued (its raw response value: a JWT, or the WRAP body's
   * `wrap_access_token`). Call AFTER scanning the response that carries it.
   */
  registerIssued(token: string): void {
    const signature = signatureOf(token);
    if (!signature || signature.length < WINDOW) return;
    this.tokens += 1;
    const id = this.tokens;
    for (let at = 0; at + WINDOW <= signature.length; at += STEP)
      this.windows.set(signature.slice(at, at + WINDOW), id);
    const tail = signature.slice(-WINDOW);
    this.windows.set(tail, id);
  }

  /** Every leak in `text`. `own`, the token this very response carries, is removed first. */
  scan(text: string, own?: string): Leak[] {
    const leaks: Leak[] = [];
    let subject = own ? text.split(own).join(' ') : text;
    if (own) {
      for (const form of [encodeURIComponent(own)]) subject = subject.split(form).join(' ');
    }
    const candidates = [subject];
    const once = percentDecode(subject);
    if (once !== subject) {
      candidates.push(once);
      const twice = percentDecode(once);
      if (twice !== once) candidates.push(twice);
    }
    for (const candidate of candidates) {
      for (const secret of this.secrets) {
        if (candidate.includes(secret.value)) leaks.push({ what: 'secret', detail: `${secret.label} appears` });
      }
      if (this.windows.size === 0) continue;
      for (const match of candidate.matchAll(RUN)) {
        const run = match[0];
        for (let at = 0; at + WINDOW <= run.length; at += 1) {
          const id = this.windows.get(run.slice(at, at + WINDOW));
          if (id !== undefined) {
            leaks.push({ what: 'token', detail: `part of issued token #${id} appears` });
            break;
          }
        }
      }
      if (leaks.length > 0) break;
    }
    return leaks;
  }
}

/** The forms a secret can take on the wire: as is, URL-encoded (upper or lower hex), base64url. */
function variants(value: string): string[] {
  const encoded = encodeURIComponent(value);
  const forms = new Set([value, encoded, encoded.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase())]);
  if (/[+/=]/.test(value)) forms.add(value.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''));
  return [...forms];
}

/** The signature part of a JWT or of an SWT (raw or URL-encoded), or undefined. */
function signatureOf(token: string): string | undefined {
  const jwt = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)$/.exec(token);
  if (jwt) return jwt[1];
  let text = token;
  for (let i = 0; i < 3 && !/HMACSHA256=/.test(text); i += 1) text = percentDecode(text);
  const hmac = /HMACSHA256=([^&\s]+)/.exec(text)?.[1];
  return hmac ? percentDecode(hmac).replace(/=+$/, '') : undefined;
}

/** Decodes `%xx` escapes byte-wise (tolerant: malformed escapes and non-UTF-8 bytes are kept as they are). */
function percentDecode(text: string): string {
  if (!text.includes('%')) return text;
  return text.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
    const bytes = Buffer.from(run.replace(/%/g, ''), 'hex');
    const decoded = bytes.toString('utf8');
    return decoded.includes('\uFFFD') ? bytes.toString('latin1') : decoded;
  });
}
