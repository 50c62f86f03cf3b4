import azureFunctions, { type HttpResponseInit } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definition as wrapToken } from '../../functions/wrapToken.js';
import { definition as issueLimitedAccessToken } from '../../functions/issueLimitedAccessToken.js';
import { startFlowHarness, type FlowHarness } from './flowHarness.js';

/**
 * The wrapper under HTTP streaming, in process: the worker hands the handler an `HttpRequest` over the live
 * request stream (no Content-Length when the client sent chunked). Every body must be read bounded, and every
 * answer must carry its own Content-Length, whichever way the body came.
 */

const { HttpRequest, InvocationContext } = azureFunctions;

let harness: FlowHarness;
beforeAll(async () => {
  harness = await startFlowHarness();
});
afterAll(() => harness.close());

/** A request body as a stream of `pieces`, counting how many pieces were pulled before the reader stopped. */
function streamOf(pieces: readonly Uint8Array[]): {
  stream: ReadableStream<Uint8Array>;
  pulled: () => number;
  cancelled: () => boolean;
} {
  let index = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const piece = pieces[index++];
      if (piece) controller.enqueue(piece);
      else controller.close();
    },
    cancel() {
      cancelled = true;
    },
  });
  return { stream, pulled: () => index, cancelled: () => cancelled };
}

async function invokeStreamed(
  definition: typeof wrapToken,
  path: string,
  headers: Record<string, string>,
  stream: ReadableStream<Uint8Array>,
) {
  const url = `https://sts.test.example${path}`;
  // The library builds exactly this under streaming (a Request over the proxied stream); `nativeRequest` is
  // how its own streaming path does it.
  const init = {
    nativeRequest: new Request(url, { method: 'POST', headers, body: stream, duplex: 'half' }),
    params: {},
  };
  const request = new HttpRequest(init);
  // What the handler logs, as the host would receive it (level first).
  const logLines: string[] = [];
  const context = new InvocationContext({
    functionName: definition.name,
    logHandler: (level, ...args) => logLines.push(`[${level}] ${args.map(String).join(' ')}`),
  });
  const response = (await definition.handlerFor(harness.services)(request, context)) as HttpResponseInit;
  return {
    status: response.status ?? 200,
    headers: new Headers(response.headers),
    text: (response.body ?? '') as string,
    logLines,
  };
}

const piecesOf = (text: string, size: number): Uint8Array[] => {
  const bytes = Buffer.from(text, 'utf8');
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
  return pieces;
};

describe('streamed request bodies', () => {
  it('WRAP: a form body in small pieces without Content-Length issues a token, with Content-Length on the answer', async () => {
    const password = harness.credentials.wrap.owner.keys[0];
    const form = new URLSearchParams({
      wrap_name: 'owner',
      wrap_password: password,
      wrap_scope: 'http://contoso.servicebus.windows.net/',
    }).toString();
    const { stream } = streamOf(piecesOf(form, 3));
    const answer = await invokeStreamed(
      wrapToken,
      '/WRAPv0.9/',
      { 'content-type': 'application/x-www-form-urlencoded' },
      stream,
    );
    expect(answer.status, answer.text).toBe(200);
    expect(answer.text).toMatch(/^wrap_access_token=.+&wrap_access_token_expires_in=\d+$/);
    expect(answer.headers.get('content-length')).toBe(String(Buffer.byteLength(answer.text)));
  });

  it('LAT: stops reading a body that never ends as soon as it passes the limit: 413 in the Cognitive shape', async () => {
    const endless = Array.from({ length: 1_000 }, () => new Uint8Array(1_024).fill(0x20));
    const body = streamOf(endless);
    const answer = await invokeStreamed(
      issueLimitedAccessToken,
      '/sts/v1.0/issueLimitedAccessToken?expiredTime=3600',
      {
        'content-type': 'application/json',
        'ocp-apim-subscription-key': harness.credentials.cognitive.isvFace.keys[0],
      },
      body.stream,
    );
    expect({ status: answer.status, body: answer.text }).toEqual({
      status: 413,
      body: '{"error":{"code":"413","message":"Request body exceeds 16384 bytes."}}',
    });
    expect(answer.headers.get('content-length')).toBe(String(Buffer.byteLength(answer.text)));
    // 16 KiB limit: a few pieces past it at most (the stream may read ahead), never the whole megabyte.
    expect(body.pulled()).toBeLessThan(40);
    expect(body.cancelled()).toBe(true);
    // The refusal is logged as a warning with its reason, never with the subscription key.
    expect(answer.logLines).toContain(
      '[warning] issueLimitedAccessToken refused 413 ERR_STS_PAYLOAD_TOO_LARGE reason=payload_too_large',
    );
    const key = harness.credentials.cognitive.isvFace.keys[0];
    for (const line of answer.logLines) expect(line).not.toContain(key);
  });
});
