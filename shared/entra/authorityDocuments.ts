/**
 * Reads the authority's public documents (OpenID discovery, JWKS) over HTTPS: no redirects, a timeout, and a
 * size bound, so a slow or hostile endpoint cannot hold a request or fill memory. Any failure is thrown as
 * {@link AuthorityFetchError}; the key cache decides what it means for the request that is waiting.
 */

/** Larger than any real discovery document or JWKS by far (Entra's are a few KiB). */
const MAX_DOCUMENT_BYTES = 256 * 1024;

export class AuthorityFetchError extends Error {
  readonly code = 'ERR_STS_ENTRA_AUTHORITY_FETCH';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuthorityFetchError';
  }
}

/** Fetches one JSON document; resolves to the parsed value. */
export type AuthorityDocumentFetch = (url: string, timeoutMs: number) => Promise<unknown>;

/**
 * GETs `url` (which must be https) and parses the answer as JSON.
 *
 * @example
 * const discovery = await fetchAuthorityDocument('https://login.microsoftonline.com/<tenant>/v2.0/.well-known/openid-configuration', 5_000);
 */
export const fetchAuthorityDocument: AuthorityDocumentFetch = async (url, timeoutMs) => {
  if (!url.startsWith('https://')) throw new AuthorityFetchError('authority documents are fetched over https only');
  let response: Response;
  try {
    response = await fetch(url, { redirect: 'error', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new AuthorityFetchError(`GET ${url} failed`, { cause: error });
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    throw new AuthorityFetchError(`GET ${url} answered ${response.status}`);
  }
  const text = await readBounded(response, url, timeoutMs);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new AuthorityFetchError(`GET ${url} did not answer JSON`, { cause: error });
  }
};

async function readBounded(response: Response, url: string, timeoutMs: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_DOCUMENT_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw new AuthorityFetchError(`GET ${url} declared ${declared} bytes (more than ${MAX_DOCUMENT_BYTES})`);
  }
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > MAX_DOCUMENT_BYTES) {
        await reader.cancel().catch(() => undefined);
        throw new AuthorityFetchError(`GET ${url} sent more than ${MAX_DOCUMENT_BYTES} bytes`);
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof AuthorityFetchError) throw error;
    throw new AuthorityFetchError(`GET ${url} broke off after ${total} bytes (timeout ${timeoutMs} ms)`, { cause: error });
  }
  return Buffer.concat(chunks).toString('utf8');
}
