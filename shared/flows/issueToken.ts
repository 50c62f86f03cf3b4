import type { CognitiveResource } from '../credentials/records.js';
import type { IssuedJwt } from '../tokens/jwtIssuer.js';
import { servedJwt, type UpstreamProvenance } from '../upstream/servedUpstreamToken.js';
import { cognitiveAudience, cognitiveResourceClaims } from './cognitiveClaims.js';
import { authenticateCognitiveCaller, callerClaims, type CognitiveCallerSources } from './cognitiveCaller.js';
import type { FlowDependencies } from './flowDependencies.js';

/** What `issueToken` reads from a request: only the key (docs/contracts/cognitive-issue-token.md#request; the body is ignored). */
export interface CognitiveTokenRequest extends CognitiveCallerSources {
  readonly now: Date;
  /** Passed to the upstream fetch it may trigger (ledger). */
  readonly requestId?: string;
}

/** A token issued for a resource, with the facts the ledger records. */
export interface CognitiveTokenResult {
  readonly accessToken: IssuedJwt;
  readonly resource: CognitiveResource;
  /** Which key was presented; absent for a Microsoft Entra caller. */
  readonly keySlot?: 1 | 2;
  /** Set for a Microsoft Entra caller: `<tenant id>/<object id>`, as the ledger names it (docs/entra-id.md). */
  readonly principal?: string;
  readonly audience: string;
  /** Set when the token is the real token service's, served in upstream mode. */
  readonly upstream?: UpstreamProvenance;
}

/**
 * Issues a Cognitive Services access token for `POST /sts/v1.0/issueToken` (docs/contracts/cognitive-issue-token.md): the key (header
 * or `Subscription-Key` query parameter) resolves to its resource, which gets a JWT valid for the configured
 * Cognitive lifetime (600 s by default) carrying the resource claims of docs/contracts/cognitive-issue-token.md#response and `aud` from configuration.
 * Refusals are the documented 401s (docs/contracts/cognitive-issue-token.md#errors).
 *
 * @example
 * const { accessToken } = await issueCognitiveToken({ header: key, queryValues: [], now: new Date() }, services);
 * accessToken.token; // the bare JWT the response body carries
 */
export async function issueCognitiveToken(
  request: CognitiveTokenRequest,
  deps: FlowDependencies,
): Promise<CognitiveTokenResult> {
  const caller = await authenticateCognitiveCaller(request, deps);
  const { record: resource, keySlot } = caller;
  const principal = caller.principal ? `${caller.principal.tenantId}/${caller.principal.objectId}` : undefined;
  const who = { ...(keySlot ? { keySlot } : {}), ...(principal ? { principal } : {}) };
  if (resource.upstream) {
    // Upstream mode (docs/upstream.md): the client's key was verified here; the token is the real service's.
    const context = { requestId: request.requestId, credentialId: `cs/${resource.name}` };
    const served = await deps.upstream.cognitiveToken(resource.upstream, context);
    return { ...servedJwt(served, resource.upstream, request.now), resource, ...who };
  }
  const audience = cognitiveAudience(deps.config, resource.region);
  const accessToken = await deps.jwtIssuer.issue(
    { ...cognitiveResourceClaims(resource), ...callerClaims(caller) },
    {
      audience,
      lifetimeSeconds: deps.config.lifetimes.cognitiveSeconds,
      now: request.now,
    },
  );
  return { accessToken, resource, ...who, audience };
}
