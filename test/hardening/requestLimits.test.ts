import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wrapMessages } from '../../shared/flows/wrapToken.js';
import {
  formFieldCount,
  jsonNestingExceeds,
  MAX_FORM_FIELDS,
  MAX_JSON_DEPTH,
} from '../../shared/security/requestLimits.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';
import {
  countedServices,
  expectFlowErrorShape,
  flowRequest,
  sendHttp,
  TOKEN_FLOWS,
  type ClientRequest,
} from './hardeningSupport.js';

/**
 * Limits on everything a client controls the size of (docs/hardening.md#size-limits): URL, query parameter count, header count
 * and bytes, body, JSON nesting (limited access token) and form fields (WRAP). Each is answered by the
 * handler with a 4xx in the flow's own error shape, over real HTTP through the local host, whose own caps
 * sit above the app's as the Azure front end's do.
 */

const NOW = new Date('2026-03-01T09:30:00.000Z');
// Kestrel's limits, except the field count: the app's own limit (100, counted with the headers the host adds)
// is what this suite exercises, so the host lets a few more through than Kestrel would.
const HOST_CAPS = { maxRequestLineBytes: 8_192, maxHeaderBytes: 32_768, maxHeaderCount: 1_000 };
let credentials: TestCredentials;
let host: TestHost;
let limits: {
  maxUrlLength: number;
  maxQueryParameters: number;
  maxHeaderBytes: number;
  maxHeaderCount: number;
  maxBodyBytes: number;
};

beforeAll(async () => {
  credentials = await createTestCredentials({ clock: () => NOW });
  const { services } = await countedServices(credentials, () => NOW);
  limits = services.config.limits;
  host = await startTestHost({ services, host: HOST_CAPS });
});
afterAll(async () => {
  await host.close();
  await credentials.remove();
});

function withQuery(req: ClientRequest, extra: string): ClientRequest {
  return { ...req, path: `${req.path}${req.path.includes('?') ? '&' : '?'}${extra}` };
}

describe.each(TOKEN_FLOWS)('%s', (flow) => {
  it('accepts a request at every limit', async () => {
    const valid = flowRequest(flow, credentials);
    const used = valid.path.length + 1;
    const padded = withQuery(valid, `pad=${'a'.repeat(limits.maxUrlLength - used - 4)}`);
    expect(padded.path.length).toBe(limits.maxUrlLength);
    expect((await sendHttp(host.url, padded)).status).toBe(200);

    const parameters = (valid.path.split('?')[1] ?? '').split('&').filter(Boolean).length;
    const manyParameters = withQuery(
      valid,
      Array.from({ length: limits.maxQueryParameters - parameters }, (_, i) => `p${i}=1`).join('&'),
    );
    expect((await sendHttp(host.url, manyParameters)).status).toBe(200);
  });

  it('414 for a URL one character over the limit', async () => {
    const valid = flowRequest(flow, credentials);
    const over = withQuery(valid, `pad=${'a'.repeat(limits.maxUrlLength - valid.path.length - 4)}`);
    expect(over.path.length).toBe(limits.maxUrlLength + 1);
    expectFlowErrorShape(flow, await sendHttp(host.url, over), 414);
  });

  it('400 for one query parameter too many, however short', async () => {
    const valid = flowRequest(flow, credentials);
    const parameters = (valid.path.split('?')[1] ?? '').split('&').filter(Boolean).length;
    const over = withQuery(
      valid,
      Array.from({ length: limits.maxQueryParameters + 1 - parameters }, (_, i) => `p${i}`).join('&'),
    );
    expectFlowErrorShape(flow, await sendHttp(host.url, over), 400);
  });

  it('431 for header fields beyond the byte limit, and for too many header fields', async () => {
    const valid = flowRequest(flow, credentials);
    const big = { ...valid, headers: { ...valid.headers, 'x-padding': 'p'.repeat(limits.maxHeaderBytes) } };
    expectFlowErrorShape(flow, await sendHttp(host.url, big), 431);
    const many: Record<string, string> = { ...valid.headers };
    for (let i = 0; i < limits.maxHeaderCount; i += 1) many[`x-h${i}`] = '1';
    expectFlowErrorShape(flow, await sendHttp(host.url, { ...valid, headers: many }), 431);
  });

  it('never a 5xx when the host’s own caps refuse first (as the platform front end would)', async () => {
    const valid = flowRequest(flow, credentials);
    const huge = withQuery(valid, `pad=${'a'.repeat(HOST_CAPS.maxRequestLineBytes)}`);
    expect((await sendHttp(host.url, huge)).status).toBe(414);
  });
});

describe.each(['issueToken', 'issueLimitedAccessToken', 'wrapToken'] as const)('%s body', (flow) => {
  it('413 in the flow’s shape for a body one byte over the limit, declared or not', async () => {
    const { 'content-length': _declared, ...headers } = flowRequest(flow, credentials).headers;
    const valid = { ...flowRequest(flow, credentials), headers };
    const body = 'x'.repeat(limits.maxBodyBytes + 1);
    expectFlowErrorShape(flow, await sendHttp(host.url, { ...valid, body }), 413);
    // Sent chunked, without a Content-Length, the handler still stops at the limit.
    const response = await request(`${host.url}${valid.path}`, {
      method: 'POST',
      headers,
      body: Readable.from([Buffer.from(body)]),
    });
    const chunked = {
      status: response.statusCode,
      headers: toHeaders(response.headers),
      text: await response.body.text(),
    };
    expectFlowErrorShape(flow, chunked, 413);
  });
});

describe('JSON nesting of the limited access token body', () => {
  const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const body = (extraDepth: number): string =>
    `{"targetAzureResourceId":${JSON.stringify(credentials.cognitive.speech.resourceId)},"featureFlags":["Face.Identification"],"extra":${nested(extraDepth)}}`;

  it(`issues at depth ${MAX_JSON_DEPTH} and refuses depth ${MAX_JSON_DEPTH + 1} (and 10,000) with the documented BadArgument`, async () => {
    const valid = flowRequest('issueLimitedAccessToken', credentials);
    expect((await sendHttp(host.url, { ...valid, body: body(MAX_JSON_DEPTH - 1) })).status).toBe(200);
    for (const depth of [MAX_JSON_DEPTH, 5_000]) {
      const answer = await sendHttp(host.url, { ...valid, body: body(depth) });
      expectFlowErrorShape('issueLimitedAccessToken', answer, 400);
      expect(JSON.parse(answer.text)).toEqual({ error: { code: 'BadArgument', message: 'Request body is invalid.' } });
    }
  });

  it('counts only structure, not brackets inside strings or escapes', () => {
    expect(jsonNestingExceeds('{"a":"[[[[[[\\"[[[["}', 1)).toBe(false);
    expect(jsonNestingExceeds('[{"a":[{}]}]', 4)).toBe(false);
    expect(jsonNestingExceeds('[{"a":[{}]}]', 3)).toBe(true);
  });
});

describe('WRAP form fields', () => {
  const form = (extra: number): string => {
    const params = new URLSearchParams({
      wrap_name: 'owner',
      wrap_password: credentials.wrap.owner.keys[0],
      wrap_scope: 'http://contoso.servicebus.windows.net/',
    });
    for (let i = 0; i < extra; i += 1) params.append(`x${i}`, '1');
    return params.toString();
  };

  it(`issues with ${MAX_FORM_FIELDS} fields and refuses ${MAX_FORM_FIELDS + 1} with 400 in the ACS shape`, async () => {
    const valid = flowRequest('wrapToken', credentials);
    expect((await sendHttp(host.url, { ...valid, body: form(MAX_FORM_FIELDS - 3) })).status).toBe(200);
    const answer = await sendHttp(host.url, { ...valid, body: form(MAX_FORM_FIELDS - 2) });
    expectFlowErrorShape('wrapToken', answer, 400);
    expect(answer.text).toContain(`Detail:${wrapMessages.tooManyFields} :TraceID:`);
  });

  it('counts fields as the parser sees them: empty parts are not fields', () => {
    expect(formFieldCount(Buffer.from('a=1&&b=2&'))).toBe(2);
    expect(formFieldCount(Buffer.from('&&&'))).toBe(0);
    expect(formFieldCount(Buffer.from('a\r\n'))).toBe(1);
  });
});

function toHeaders(raw: Record<string, string | string[] | undefined>): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw))
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  return headers;
}
