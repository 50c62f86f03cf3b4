import type { HttpResponseInit } from '@azure/functions';
import type { StsError } from '../errors.js';
import type { ErrorShape } from '../flowCatalogue.js';

export type { ErrorShape };

export interface ErrorRenderContext {
  readonly requestId: string;
  readonly now: Date;
}

/** Renders one refusal; `headers` already holds `Retry-After` when the error carries one. */
type ErrorRenderer = (
  error: StsError,
  headers: Record<string, string>,
  context: ErrorRenderContext,
) => HttpResponseInit;

/**
 * The error body shape of each real API, by the name a flow's declaration gives (docs/contracts/mixed-reality-sts.md#response,
 * docs/contracts/cognitive-issue-token.md#errors, docs/contracts/cognitive-limited-access-token.md#response,
 * docs/contracts/acs-wrap.md#errors), plus OAuth-style JSON for our own documents (discovery, JWKS).
 */
const errorRenderers: Readonly<Record<ErrorShape, ErrorRenderer>> = {
  mixedReality: (error, headers) => {
    // The MR STS documents headers only (swagger examples): the reason travels in WWW-Authenticate.
    if (error.status === 401) headers['WWW-Authenticate'] = `Invalid token: ${error.publicMessage}`;
    else if (error.status === 400) headers['WWW-Authenticate'] = `Invalid request: ${error.publicMessage}`;
    // No body at all (Content-Length: 0, no Content-Type), like the observed MR error responses (docs/contracts/mixed-reality-sts.md#response).
    return { status: error.status, headers };
  },
  cognitive: (error, headers) => {
    headers['Content-Type'] = 'application/json; charset=utf-8';
    const code = error.status === 400 ? 'BadArgument' : String(error.status);
    return { status: error.status, headers, body: JSON.stringify({ error: { code, message: error.publicMessage } }) };
  },
  wrap: (error, headers, context) => {
    if (error.status === 401) headers['WWW-Authenticate'] = 'WRAP';
    headers['Content-Type'] = 'text/plain; charset=us-ascii';
    const timestamp = context.now
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, 'Z');
    // The real body has a space between the detail and `:TraceID` ("Authentication failed. :TraceID:", docs/contracts/acs-wrap.md#errors).
    const body = `Error:Code:${error.status}:SubCode:T0:Detail:${error.publicMessage} :TraceID:${context.requestId}:TimeStamp:${timestamp}`;
    return { status: error.status, headers, body };
  },
  oauthJson: (error, headers) => {
    headers['Content-Type'] = 'application/json; charset=utf-8';
    const code = oauthCode(error.status);
    return {
      status: error.status,
      headers,
      body: JSON.stringify({ error: code, error_description: error.publicMessage }),
    };
  },
};

/**
 * Renders a typed error in the flow's shape. The caller adds the common security and correlation headers.
 */
export function renderError(shape: ErrorShape, error: StsError, context: ErrorRenderContext): HttpResponseInit {
  const headers: Record<string, string> = {};
  if (error.retryAfterSeconds !== undefined)
    headers['Retry-After'] = String(Math.max(1, Math.ceil(error.retryAfterSeconds)));
  return errorRenderers[shape](error, headers, context);
}

function oauthCode(status: number): string {
  if (status === 401) return 'invalid_client';
  if (status === 429) return 'slow_down';
  if (status >= 500) return 'temporarily_unavailable';
  return 'invalid_request';
}
