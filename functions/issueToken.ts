import { app } from '../shared/functionsApp.js';
import { issueCognitiveToken } from '../shared/flows/issueToken.js';
import { bareJwtResponse, jwtIssuanceFacts } from '../shared/http/jwtAnswers.js';
import { queryParameterValueLists } from '../shared/http/queryParameters.js';
import { defineStsFunction } from '../shared/app/stsFunction.js';

/**
 * Cognitive Services `POST /sts/v1.0/issueToken` (docs/contracts/cognitive-issue-token.md). 200 with the bare JWT as the body,
 * `application/jwt; charset=us-ascii`. Any or no `Content-Type`; the body is ignored, but one beyond
 * `STS_MAX_BODY_BYTES` is still refused (413) rather than silently accepted.
 */
export const definition = defineStsFunction({
  name: 'issueToken',
  handle: async ({ request, services, now, readBody, requestId }) => {
    const query = queryParameterValueLists(request.url, ['Subscription-Key', 'resource']);
    await readBody();
    const result = await issueCognitiveToken(
      {
        header: request.headers.get('ocp-apim-subscription-key'),
        queryValues: query['Subscription-Key'],
        authorization: request.headers.get('authorization'),
        resourceValues: query.resource,
        now,
        requestId,
      },
      services,
    );
    return {
      response: bareJwtResponse(result.accessToken.token),
      issuance: {
        ...jwtIssuanceFacts(result, result.resource.name),
        ...(result.principal ? { principal: result.principal } : {}),
      },
    };
  },
});

app.http(definition.name, definition);
