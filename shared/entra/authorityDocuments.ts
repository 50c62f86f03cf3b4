import { sendOutbound, type OutboundAnswer } from '../outbound/outboundRequest.js';
import { StsBaseError } from '../errors.js';

/**
 * Reads the authority's public documents (OpenID discovery, JWKS) over HTTPS: no redirects, a timeout, and a
 * size bound, so a slow or hostile endpoint cannot hold a request or fill memory. Any failure is thrown as
 * {@link AuthorityFetchError}; the key cache decides what it means for the request that is waiting.
 */

/** Larger than any real discovery document or JWKS by far (Entra's are a few KiB). */
const MAX_DOCUMENT_BYTES = 256 * 1024;

export class AuthorityFetchError extends StsBaseError {
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
  let answer: OutboundAnswer;
  try {
    // No redirect is followed: a 3xx is an answer other than 200, refused below.
    answer = await sendOutbound({
      url: new URL(url),
      headers: { accept: 'application/json' },
      timeoutMs,
      maxResponseBytes: MAX_DOCUMENT_BYTES,
    });
  } catch (error) {
    throw new AuthorityFetchError(`GET ${url} failed`, { cause: error });
  }
  if (answer.status !== 200) throw new AuthorityFetchError(`GET ${url} answered ${answer.status}`);
  try {
    return JSON.parse(answer.body) as unknown;
  } catch (error) {
    throw new AuthorityFetchError(`GET ${url} did not answer JSON`, { cause: error });
  }
};
