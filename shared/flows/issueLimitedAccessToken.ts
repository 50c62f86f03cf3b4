import type { CognitiveResource } from '../credentials/records.js';
import { badRequest } from '../errors.js';
import type { IssuedJwt } from '../tokens/jwtIssuer.js';
import { servedJwt, type UpstreamProvenance } from '../upstream/servedUpstreamToken.js';
import { cognitiveAudience, cognitiveResourceClaims } from './cognitiveClaims.js';
import { authenticateCognitiveCaller, callerClaims, type CognitiveCallerSources } from './cognitiveCaller.js';
import type { FlowDependencies } from './flowDependencies.js';
import {
  limitedAccessTokenMessages,
  parseExpiredTime,
  parseLimitedAccessTokenBody,
} from './limitedAccessTokenRequest.js';

/** What `issueLimitedAccessToken` reads from a request (docs/contracts/cognitive-limited-access-token.md#request). */
export interface LimitedAccessTokenRequest extends CognitiveCallerSources {
  /** Every value of the `expiredTime` query parameter. */
  readonly expiredTimeValues: readonly string[];
  /** Reads the (bounded) request body; called only once the key is verified. */
  readonly readBody: () => Promise<Uint8Array>;
  readonly now: Date;
  /** Passed to the upstream fetch it may trigger (ledger). */
  readonly requestId?: string;
}

/** A limited access token, with the facts the ledger records. */
export interface LimitedAccessTokenResult {
  readonly accessToken: IssuedJwt;
  /** The ISV's resource, whose key was presented. */
  readonly resource: CognitiveResource;
  /** Which key was presented; absent for a Microsoft Entra caller. */
  readonly keySlot?: 1 | 2;
  /** Set for a Microsoft Entra caller: `<tenant id>/<object id>`, as the ledger names it (docs/entra-id.md). */
  readonly principal?: string;
  readonly audience: string;
  readonly targetAzureResourceId: string;
  readonly grantedFeatureFlags: readonly string[];
  /** Set when the token is the real token service's, served in upstream mode. */
  readonly upstream?: UpstreamProvenance;
}

/**
 * Issues a Face limited access token for `POST /sts/v1.0/issueLimitedAccessToken` (docs/contracts/cognitive-limited-access-token.md).
 *
 * The key is checked first (the documented 401s of docs/contracts/cognitive-issue-token.md#errors, as API Management answers before the service sees
 * the request), then `expiredTime` and the body (docs/contracts/cognitive-limited-access-token.md#request), then the ISV's rights in the order of the documented
 * errors (docs/contracts/cognitive-limited-access-token.md#response): the resource must have ISV features enabled, and every requested flag must be one it may
 * grant (compared case-insensitively, granted in the resource's spelling). The JWT carries the Cognitive
 * resource claims of docs/contracts/cognitive-issue-token.md#response plus `target-azure-resource-id` and `feature-flags`, with
 * `exp = now + expiredTime`.
 *
 * @example
 * const result = await issueLimitedAccessToken({ header: isvKey, queryValues: [], expiredTimeValues: ['3600'],
 *   readBody: async () => Buffer.from(JSON.stringify({ targetAzureResourceId, featureFlags: ['Face.Identification'] })),
 *   now: new Date() }, services);
 */
export async function issueLimitedAccessToken(
  request: LimitedAccessTokenRequest,
  deps: FlowDependencies,
): Promise<LimitedAccessTokenResult> {
  const caller = await authenticateCognitiveCaller(request, deps);
  const { record: resource, keySlot } = caller;
  const principal = caller.principal ? `${caller.principal.tenantId}/${caller.principal.objectId}` : undefined;
  const who = { ...(keySlot ? { keySlot } : {}), ...(principal ? { principal } : {}) };
  const lifetimeSeconds = parseExpiredTime(request.expiredTimeValues);
  const body = parseLimitedAccessTokenBody(await request.readBody());

  if (!resource.limitedAccessTokens) {
    throw badRequest(limitedAccessTokenMessages.isvNotEnabled, {
      reason: 'feature_not_allowed',
      credentialId: resource.name,
    });
  }
  const grantedFeatureFlags: string[] = [];
  for (const flag of body.featureFlags) {
    const grantable = resource.grantableFeatureFlags.find((allowed) => allowed.toLowerCase() === flag.toLowerCase());
    if (grantable === undefined) {
      throw badRequest(limitedAccessTokenMessages.missingFlag(flag), {
        reason: 'feature_not_allowed',
        credentialId: resource.name,
      });
    }
    if (!grantedFeatureFlags.includes(grantable)) grantedFeatureFlags.push(grantable);
  }

  if (resource.upstream) {
    // Upstream mode (docs/upstream.md): every check above stays ours (what this ISV resource may grant its clients);
    // the real service applies its own grants to the real key on top.
    const served = await deps.upstream.limitedAccessToken(
      resource.upstream,
      {
        targetResourceId: body.targetAzureResourceId,
        featureFlags: grantedFeatureFlags,
        expiredTimeSeconds: lifetimeSeconds,
      },
      { requestId: request.requestId, credentialId: `cs/${resource.name}` },
    );
    const { targetAzureResourceId } = body;
    return {
      ...servedJwt(served, resource.upstream, request.now),
      resource,
      ...who,
      targetAzureResourceId,
      grantedFeatureFlags,
    };
  }

  const audience = cognitiveAudience(deps.config, resource.region);
  const accessToken = await deps.jwtIssuer.issue(
    {
      ...cognitiveResourceClaims(resource),
      ...callerClaims(caller),
      'target-azure-resource-id': body.targetAzureResourceId,
      'feature-flags': grantedFeatureFlags,
    },
    { audience, lifetimeSeconds, now: request.now },
  );
  return {
    accessToken,
    resource,
    ...who,
    audience,
    targetAzureResourceId: body.targetAzureResourceId,
    grantedFeatureFlags,
  };
}
