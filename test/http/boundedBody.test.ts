import { describe, expect, it } from 'vitest';
import { StsError } from '../../shared/errors.js';
import { readBoundedBody } from '../../shared/http/boundedBody.js';

/** A request whose body arrives as `pieces` and then, unless `endless`, ends; `content-length` when declared. */
function requestOf(pieces: readonly string[], options: { declared?: number; endless?: boolean } = {}) {
  let index = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const piece = pieces[index++];
      if (piece !== undefined) controller.enqueue(Buffer.from(piece));
      else if (!options.endless) controller.close();
      // endless: never says done, as a client that keeps the request open would not
    },
  });
  const headers = new Headers(options.declared === undefined ? {} : { 'content-length': String(options.declared) });
  return { headers, body };
}

describe('readBoundedBody', () => {
  it('reads a chunked body (no Content-Length) to its end, whatever its pieces', async () => {
    const body = await readBoundedBody(requestOf(['wrap_name=a', '&wrap_password=b', '&wrap_scope=c']), 1024);
    expect(body.toString()).toBe('wrap_name=a&wrap_password=b&wrap_scope=c');
  });

  it('answers once the declared length has arrived, without waiting for the end of the stream', async () => {
    const body = await readBoundedBody(requestOf(['abc', 'def'], { declared: 6, endless: true }), 1024);
    expect(body.toString()).toBe('abcdef');
  });

  it('keeps reading when a piece leaves the declared length short', async () => {
    const body = await readBoundedBody(requestOf(['ab', 'cd', 'ef'], { declared: 6 }), 1024);
    expect(body.toString()).toBe('abcdef');
  });

  it('refuses with 413 a declared length over the limit before reading, and a stream that passes it', async () => {
    const declared = await readBoundedBody(requestOf(['x'], { declared: 2048 }), 1024).catch((e: unknown) => e);
    expect(declared).toBeInstanceOf(StsError);
    expect((declared as StsError).status).toBe(413);
    const streamed = await readBoundedBody(
      requestOf(['x'.repeat(600), 'y'.repeat(600)], { endless: true }),
      1024,
    ).catch((e: unknown) => e);
    expect((streamed as StsError).status).toBe(413);
  });

  it('an empty body is empty', async () => {
    expect((await readBoundedBody(requestOf([]), 1024)).length).toBe(0);
  });
});
