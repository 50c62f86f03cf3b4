import { app } from '../shared/functionsApp.js';
import { issueLimitedAccessToken } from '../shared/flows/issueLimitedAccessToken.js';
import { bareJwtResponse, jwtIssuanceFacts } from '../shared/http/jwtAnswers.js';
import { queryParameterValueLists } from '../shared/http/queryParameters.js';
import { defineStsFunction } from '../shared/app/stsFunction.js';

/**
 * Cognitive Services (Face) `POST /sts/v1.0/issueLimitedAccessToken?expiredTime=N` (docs/contracts/cognitive-limited-access-token.md). 200
 * with the bare JWT, `application/jwt; charset=us-ascii`; the JSON body is parsed whatever the Content-Type.
 */
export const definition = defineStsFunction({
  name: 'issueLimitedAccessToken',
  handle: async ({ request, services, now, readBody, requestId }) => {
    const query = queryParameterValueLists(request.url, ['Subscription-Key', 'resource', 'expiredTime']);
    const result = await issueLimitedAccessToken(
      {
        header: request.headers.get('ocp-apim-subscription-key'),
        queryValues: query['Subscription-Key'],
        authorization: request.headers.get('authorization'),
        resourceValues: query.resource,
        expiredTimeValues: query.expiredTime,
        readBody,
        now,
        requestId,
      },
      services,
    );
    return {
      response: bareJwtResponse(result.accessToken.token),
      issuance: {
        ...jwtIssuanceFacts(result, result.resource.name, {
          scope: result.targetAzureResourceId,
          featureFlags: result.grantedFeatureFlags,
        }),
        ...(result.principal ? { principal: result.principal } : {}),
      },
    };
  },
});

app.http(definition.name, definition);
