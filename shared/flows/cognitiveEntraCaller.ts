import type { CognitiveResource } from '../credentials/records.js';
import { EntraTokenRefusal, type EntraPrincipal, type EntraTokenValidator } from '../entra/entraTokenValidator.js';
import { invalidCredentials } from '../errors.js';
import type { CognitiveCaller } from './cognitiveCaller.js';
import type { FlowDependencies } from './flowDependencies.js';
import { entraCallerMessages, isPrincipalAllowed, principalName } from './mixedRealityEntraCaller.js';

/** The Cognitive texts of the Entra refusals: the Mixed Reality flow's, with "resource" for "account". */
export const cognitiveEntraMessages = {
  ...entraCallerMessages,
  principalNotAllowed: 'The caller is not allowed to obtain tokens for this resource.',
} as const;

/**
 * The keyless half of the Cognitive flows (docs/entra-id.md): validates the Entra token, then authorizes its
 * principal against the named resource's allowed principals. Refusals are 401 in the Cognitive shape with the
 * reasons of the Mixed Reality flow; an unknown resource, a disabled one and a principal not on the resource
 * share one text, so a token reveals nothing about which resources exist.
 */
export async function authenticateCognitiveEntraCaller(
  resourceName: string,
  token: string,
  now: Date,
  deps: Pick<FlowDependencies, 'credentials'>,
  entra: EntraTokenValidator,
): Promise<CognitiveCaller> {
  let principal: EntraPrincipal;
  try {
    principal = await entra.validate(token, now);
  } catch (error) {
    if (!(error instanceof EntraTokenRefusal)) throw error;
    throw invalidCredentials(cognitiveEntraMessages[error.reason], {
      reason: error.reason,
      credentialId: resourceName,
    });
  }
  const record = await deps.credentials.cognitiveResource(resourceName);
  const refusal = record ? resourceRefusal(record, principal) : 'unknown_credential';
  if (refusal || !record) {
    throw invalidCredentials(cognitiveEntraMessages.principalNotAllowed, {
      reason: refusal ?? 'unknown_credential',
      credentialId: resourceName,
      principal: principalName(principal),
    });
  }
  return { record, principal };
}

function resourceRefusal(
  record: CognitiveResource,
  principal: EntraPrincipal,
): 'principal_not_allowed' | 'credential_disabled' | undefined {
  if (!isPrincipalAllowed(record.allowedPrincipals ?? [], principal)) return 'principal_not_allowed';
  if (!record.enabled) return 'credential_disabled';
  return undefined;
}
