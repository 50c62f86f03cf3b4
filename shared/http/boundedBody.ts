import type { HttpRequest } from '@azure/functions';
import { payloadTooLarge } from '../errors.js';

/**
 * Reads at most `maxBytes` of the body, sized or chunked alike: a declared Content-Length beyond the limit is
 * refused before reading, and a stream is cut off (and cancelled) as soon as it passes the limit, so an endless
 * chunked body never fills memory. Under HTTP streaming `request.body` is the live request stream.
 *
 * A body that arrives in one chunk (every small body does) is returned as a view over that chunk rather than
 * a copy; the caller only reads it. Once the bytes a Content-Length declared have arrived, reading stops there:
 * the host's framing ends the body at that length, so the last read, which could only say "done", is skipped.
 *
 * @example
 * const body = await readBoundedBody(request, services.config.limits.maxBodyBytes); // or a 413 StsError
 */
export async function readBoundedBody(
  request: Pick<HttpRequest, 'headers' | 'body'>,
  maxBytes: number,
): Promise<Buffer> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (Number.isFinite(declared) && declared > maxBytes) throw payloadTooLarge(maxBytes);
  const stream = request.body;
  if (!stream) return Buffer.alloc(0);
  const reader: ReadableStreamDefaultReader<Uint8Array> = stream.getReader();
  let first: Uint8Array | undefined;
  let more: Uint8Array[] | undefined;
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      reader.cancel().catch(() => {});
      throw payloadTooLarge(maxBytes);
    }
    if (first === undefined) first = value;
    else (more ??= [first]).push(value);
    // The declared length is all the host's framing lets through: the read that would say so is not waited for.
    if (total === declared && declared > 0) break;
  }
  if (first === undefined) return Buffer.alloc(0);
  if (more === undefined) return Buffer.from(first.buffer, first.byteOffset, first.byteLength);
  return Buffer.concat(more, total);
}
