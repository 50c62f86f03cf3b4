import { app } from '../shared/functionsApp.js';
import { issueMixedRealityToken } from '../shared/flows/mixedRealityToken.js';
import { jwtIssuanceFacts } from '../shared/http/jwtAnswers.js';
import { defineStsFunction } from '../shared/app/stsFunction.js';

/**
 * Mixed Reality STS: `GET /accounts/{accountId}/token` (docs/contracts/mixed-reality-sts.md). 200 with the compact JSON
 * `{"AccessToken":"<jwt>"}`; the wrapper adds `MS-CV` and the no-store headers. `api-version`, `X-MRC-CV`,
 * `Content-Type` and any body are ignored (docs/contracts/mixed-reality-sts.md#client-behaviours), though a declared body beyond `STS_MAX_BODY_BYTES` is
 * refused (413) like everywhere else. With `STS_ENTRA_AUTHORITY` set, a Microsoft Entra access token is
 * accepted in place of the key (docs/entra-id.md); the ledger row then names the principal.
 */
export const definition = defineStsFunction({
  name: 'mixedRealityToken',
  handle: async ({ request, services, now, readBody, requestId }) => {
    await readBody();
    const result = await issueMixedRealityToken(
      { accountId: request.params.accountId, authorization: request.headers.get('authorization'), now, requestId },
      services,
    );
    return {
      response: {
        status: 200,
        headers: { 'Content-Type': 'application/json; charset=utf-8' },
        // A compact JWS is base64url and dots only: nothing in it needs JSON escaping.
        body: `{"AccessToken":"${result.accessToken.token}"}`,
      },
      issuance: {
        ...jwtIssuanceFacts(result, result.account.accountId),
        ...(result.principal ? { principal: result.principal } : {}),
      },
    };
  },
});

app.http(definition.name, definition);
