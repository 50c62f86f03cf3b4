import { app } from '../shared/functionsApp.js';
import { issueLimitedAccessToken } from '../shared/flows/issueLimitedAccessToken.js';
import { queryParameterValues } from '../shared/http/queryParameters.js';
import { defineStsFunction } from '../shared/http/stsFunction.js';
import { upstreamIssuanceFacts } from '../shared/upstream/servedUpstreamToken.js';

/**
 * Cognitive Services (Face) `POST /sts/v1.0/issueLimitedAccessToken?expiredTime=N` (contracts.md §4). 200
 * with the bare JWT, `application/jwt; charset=us-ascii`; the JSON body is parsed whatever the Content-Type.
 */
export const definition = defineStsFunction({
  name: 'issueLimitedAccessToken',
  route: 'sts/v1.0/issueLimitedAccessToken',
  methods: ['POST'],
  errorShape: 'cognitive',
  correlationHeader: 'apim-request-id',
  handle: async ({ request, services, now, readBody, admitAttempt, requestId }) => {
    const result = await issueLimitedAccessToken(
      {
        header: request.headers.get('ocp-apim-subscription-key'),
        queryValues: queryParameterValues(request.url, 'Subscription-Key'),
        expiredTimeValues: queryParameterValues(request.url, 'expiredTime'),
        readBody,
        now,
        requestId,
        admit: admitAttempt,
      },
      services,
    );
    return {
      response: {
        status: 200,
        headers: { 'Content-Type': 'application/jwt; charset=us-ascii' },
        body: result.accessToken.token,
      },
      issuance: {
        credentialId: result.resource.name,
        keySlot: result.keySlot,
        audience: result.audience,
        scope: result.targetAzureResourceId,
        featureFlags: result.grantedFeatureFlags,
        jti: result.accessToken.jti,
        expiresAt: new Date(result.accessToken.expiresAt * 1000),
        ...upstreamIssuanceFacts(result.upstream),
      },
    };
  },
});

app.http(definition.name, definition);
