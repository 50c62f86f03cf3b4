import type { CognitiveResource } from '../credentials/records.js';
import { RESOURCE_NAME_PATTERN } from '../credentials/vaultLayout.js';
import type { EntraPrincipal } from '../entra/entraTokenValidator.js';
import { badRequest } from '../errors.js';
import { authenticateSubscriptionKey, type SubscriptionKeySources } from './cognitiveSubscriptionKey.js';
import type { FlowDependencies } from './flowDependencies.js';

/** Where a Cognitive Services caller's proof may arrive: a key, or (with Entra on) an Entra token naming a resource. */
export interface CognitiveCallerSources extends SubscriptionKeySources {
  /** The `Authorization` header, or null when absent. */
  readonly authorization?: string | null | undefined;
  /** Every value of the `resource` query parameter: the resource an Entra caller asks a token for. */
  readonly resourceValues?: readonly string[];
  readonly now: Date;
}

/** Who was let in, and for which resource: a key (its slot) or an Entra principal. */
export interface CognitiveCaller {
  readonly record: CognitiveResource;
  readonly keySlot?: 1 | 2;
  readonly principal?: EntraPrincipal;
}

/** Entra access tokens are a few KiB; the header limit (`STS_MAX_HEADER_BYTES`) bounds them too. */
const MAX_ENTRA_AUTHORIZATION_LENGTH = 12 * 1024;
/** Three base64url segments; an empty signature is let through so `alg: none` is refused for what it is. */
const BEARER_JWT = /^Bearer[ \t]+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/i;

export const cognitiveCallerMessages = {
  resourceRequired:
    'A Microsoft Entra caller must name the resource in the resource query parameter (one resource name).',
} as const;

/**
 * Authenticates a caller of `issueToken` or `issueLimitedAccessToken` (docs/entra-id.md, "Cognitive Services
 * callers"). A key (header or query) always wins and is checked exactly as before. Without a key, when
 * `STS_ENTRA_AUTHORITY` is set, `Authorization: Bearer <Entra JWT>` plus `?resource=<name>` is validated and
 * authorized against the resource's allowed principals; otherwise the request has no key (the documented 401).
 *
 * @example
 * const { record, keySlot, principal } = await authenticateCognitiveCaller(
 *   { header: null, queryValues: [], authorization: `Bearer ${jwt}`, resourceValues: ['demo-speech'], now }, services);
 */
export async function authenticateCognitiveCaller(
  sources: CognitiveCallerSources,
  deps: FlowDependencies,
): Promise<CognitiveCaller> {
  const hasKey = (sources.header?.trim() ?? '') !== '' || sources.queryValues.some((value) => value.trim() !== '');
  const authorization = sources.authorization?.trim() ?? '';
  const mayBeEntra = !hasKey && deps.entra !== undefined && authorization.length <= MAX_ENTRA_AUTHORIZATION_LENGTH;
  const entraToken = mayBeEntra ? BEARER_JWT.exec(authorization)?.[1] : undefined;
  if (deps.entra && entraToken !== undefined) {
    const names = (sources.resourceValues ?? []).map((value) => value.trim()).filter((value) => value !== '');
    const name = names.length === 1 ? names[0]?.toLowerCase() : undefined;
    if (name === undefined || !RESOURCE_NAME_PATTERN.test(name)) {
      throw badRequest(cognitiveCallerMessages.resourceRequired, { reason: 'malformed_request' });
    }
    // Loaded on the first Entra token: key callers never load the Entra modules (cold start).
    const { authenticateCognitiveEntraCaller } = await import('./cognitiveEntraCaller.js');
    return authenticateCognitiveEntraCaller(name, entraToken, sources.now, deps, deps.entra);
  }
  const { record, keySlot } = await authenticateSubscriptionKey(sources, deps);
  return { record, keySlot };
}

/** The claims that name an Entra caller in a Cognitive token (none for a key caller). */
export function callerClaims(caller: Pick<CognitiveCaller, 'principal'>): Record<string, string> {
  return caller.principal ? { tid: caller.principal.tenantId, oid: caller.principal.objectId } : {};
}
