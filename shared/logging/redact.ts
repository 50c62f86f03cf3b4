/**
 * Log hygiene: nothing that could be a key or a token reaches a log line. Long runs of base64, base64url
 * or hex (16+ characters) are replaced, and messages are bounded.
 */
const SECRET_LIKE = /[A-Za-z0-9+/_-]{16,}={0,2}(?:\.[A-Za-z0-9_-]+)*/g;

export function redact(text: string, maxLength = 300): string {
  const cleaned = text.replace(SECRET_LIKE, '[redacted]').replace(/[\r\n]+/g, ' ');
  return cleaned.length > maxLength ? `${cleaned.slice(0, maxLength)}…` : cleaned;
}

/** An error as one safe log fragment: its name, stable code if any, and redacted message. No stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return redact(`${error.name}${typeof code === 'string' ? ` ${code}` : ''}: ${error.message}`);
  }
  return redact(String(error));
}
