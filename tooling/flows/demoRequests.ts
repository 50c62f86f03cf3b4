import { flowNames, routePath, tokenFlowNames, type FlowName, type TokenFlowName } from '../../shared/flowCatalogue.js';
import type { DemoCredentials } from '../../tools/demoCredentials.js';

/**
 * The valid request of every function of the app, built from the demo credentials, by the function's name in
 * the flow catalogue (`shared/flowCatalogue.ts`): the one table bench, fuzz and soak read. The compiler asks
 * for an entry per catalogue name, so a new flow is benchmarked, fuzzed and soaked once its request is here.
 */

export interface DemoRequest {
  readonly method: 'GET' | 'POST';
  /** Path and query. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Route parameters, as the host binds them (for in-process calls). */
  readonly params: Readonly<Record<string, string>>;
}

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** How each function is called with the demo credentials. */
export const demoRequests: { readonly [F in FlowName]: (credentials: DemoCredentials) => DemoRequest } = {
  mixedRealityToken: ({ mixedReality: { accountId, accountKey } }) => ({
    method: 'GET',
    path: `${routePath('mixedRealityToken', { accountId })}?api-version=2019-02-28-preview`,
    headers: { authorization: `Bearer ${accountId}:${accountKey}`, accept: 'application/json' },
    params: { accountId },
  }),
  issueToken: ({ speech }) => ({
    method: 'POST',
    path: routePath('issueToken'),
    headers: { 'ocp-apim-subscription-key': speech.key, 'content-length': '0' },
    body: '',
    params: {},
  }),
  issueLimitedAccessToken: ({ isvFace, speech }) => ({
    method: 'POST',
    path: `${routePath('issueLimitedAccessToken')}?expiredTime=3600`,
    headers: { 'ocp-apim-subscription-key': isvFace.key, 'content-type': 'application/json' },
    body: JSON.stringify({ targetAzureResourceId: speech.resourceId, featureFlags: ['Face.Identification'] }),
    params: {},
  }),
  wrapToken: ({ wrap }) => ({
    method: 'POST',
    path: `${routePath('wrapToken')}/`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ wrap_name: wrap.name, wrap_password: wrap.key, wrap_scope: wrap.scope }).toString(),
    params: {},
  }),
  openidConfiguration: () => ({
    method: 'GET',
    path: routePath('openidConfiguration'),
    headers: { accept: 'application/json' },
    params: {},
  }),
  jwks: () => ({ method: 'GET', path: routePath('jwks'), headers: { accept: 'application/json' }, params: {} }),
};

/** Whether a 200 body of each token flow is a token of that flow (the wire shape of its real API). */
export const issuedTokenOf: { readonly [F in TokenFlowName]: (body: string) => string | undefined } = {
  mixedRealityToken: (body) => {
    try {
      const token = (JSON.parse(body) as { AccessToken?: unknown }).AccessToken;
      return typeof token === 'string' && JWT.test(token) ? token : undefined;
    } catch {
      return undefined;
    }
  },
  issueToken: (body) => (JWT.test(body.trim()) ? body.trim() : undefined),
  issueLimitedAccessToken: (body) => (JWT.test(body.trim()) ? body.trim() : undefined),
  wrapToken: (body) => /^wrap_access_token=([^&]+)&wrap_access_token_expires_in=\d+$/.exec(body.trim())?.[1],
};

export { flowNames, tokenFlowNames };
export type { FlowName, TokenFlowName };
