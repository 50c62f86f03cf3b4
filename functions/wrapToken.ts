import { app } from '../shared/functionsApp.js';
import { issueWrapToken } from '../shared/flows/wrapToken.js';
import { defineStsFunction } from '../shared/app/stsFunction.js';
import { upstreamIssuanceFacts } from '../shared/upstream/servedUpstreamToken.js';

/**
 * ACS OAuth WRAP v0.9 `POST /WRAPv0.9` and `/WRAPv0.9/` (docs/contracts/acs-wrap.md). 200 (not the 201 of the doc's
 * table, docs/contracts/open-points.md#acs-status) with the form-encoded token response, `application/x-www-form-urlencoded; charset=us-ascii`;
 * the wrapper adds `request-id` and the no-cache headers of docs/contracts/acs-wrap.md#response.
 */
export const definition = defineStsFunction({
  name: 'wrapToken',
  handle: async ({ services, now, readBody, requestId }) => {
    const result = await issueWrapToken({ body: await readBody(), now, requestId }, services);
    return {
      response: {
        status: 200,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=us-ascii' },
        body: result.responseBody,
      },
      issuance: {
        credentialId: `${result.issuer.namespace}/${result.issuer.name}`,
        keySlot: result.keySlot,
        audience: result.scope,
        scope: result.scope,
        expiresAt: new Date(result.expiresOn * 1000),
        ...upstreamIssuanceFacts(result.upstream),
      },
    };
  },
});

app.http(definition.name, definition);
