import type { AllowedPrincipal, CognitiveResource, MixedRealityAccount } from '../../../shared/credentials/records.js';
import { GUID_PATTERN, RESOURCE_NAME_PATTERN, vaultLayout } from '../../../shared/credentials/vaultLayout.js';
import type { WritableSecretStore } from '../../../shared/secrets/secretStore.js';
import { ProvisioningError, readCredential } from './provisioning.js';

/**
 * Which Microsoft Entra principals may obtain tokens without a key (docs/entra-id.md): for a Mixed Reality
 * account, or for a Cognitive Services resource (issueToken, issueLimitedAccessToken). The list lives in the
 * record, so a change is one new version of one secret
 * and takes effect when instances next read it (at once with the file store; within
 * `STS_SECRET_CACHE_MAX_AGE_SECONDS` with Key Vault).
 */

/** Principals one account may list: far more than any real deployment; keeps the record small. */
const MAX_ALLOWED_PRINCIPALS = 200;

/** A principal from operator input: tenant and object id, both GUIDs, stored lower-case. */
export function parsePrincipal(tenantId: string | undefined, objectId: string | undefined): AllowedPrincipal {
  if (!tenantId || !GUID_PATTERN.test(tenantId))
    throw new ProvisioningError(`Tenant id must be a GUID (got "${tenantId ?? ''}")`);
  if (!objectId || !GUID_PATTERN.test(objectId))
    throw new ProvisioningError(`Object id must be a GUID (got "${objectId ?? ''}")`);
  return { tenantId: tenantId.toLowerCase(), objectId: objectId.toLowerCase() };
}

/** Where a principal is allowed: a Mixed Reality account (its id, as a string) or a Cognitive Services resource. */
export type PrincipalHolder = string | { readonly cognitiveResource: string };

type HolderRecord = MixedRealityAccount | CognitiveResource;

export interface PrincipalChange {
  readonly record: HolderRecord;
  /** False when the principal was already allowed (allow) or already absent (revoke): nothing was written. */
  readonly changed: boolean;
}

/**
 * Allows `principal` on the account.
 *
 * @example
 * await allowPrincipal(store, accountId, parsePrincipal(tid, oid));
 */
export async function allowPrincipal(
  store: WritableSecretStore,
  holder: PrincipalHolder,
  principal: AllowedPrincipal,
): Promise<PrincipalChange> {
  const current = await readHolder(store, holder);
  const allowed = current.allowedPrincipals ?? [];
  if (allowed.some((entry) => samePrincipal(entry, principal))) return { record: current, changed: false };
  if (allowed.length >= MAX_ALLOWED_PRINCIPALS) {
    throw new ProvisioningError(
      `A credential allows at most ${MAX_ALLOWED_PRINCIPALS} principals: use a group of identities upstream, or revoke some`,
    );
  }
  return {
    record: await writeHolder(store, { ...current, allowedPrincipals: [...allowed, principal] }),
    changed: true,
  };
}

/** Removes `principal` from the account; its Entra tokens are refused from then on (issued tokens run out). */
export async function revokePrincipal(
  store: WritableSecretStore,
  holder: PrincipalHolder,
  principal: AllowedPrincipal,
): Promise<PrincipalChange> {
  const current = await readHolder(store, holder);
  const allowed = current.allowedPrincipals ?? [];
  const remaining = allowed.filter((entry) => !samePrincipal(entry, principal));
  if (remaining.length === allowed.length) return { record: current, changed: false };
  return { record: await writeHolder(store, { ...current, allowedPrincipals: remaining }), changed: true };
}

/** `<tenant id>/<object id>`, the way the ledger names a principal. */
export const describePrincipal = (principal: AllowedPrincipal): string => `${principal.tenantId}/${principal.objectId}`;

/** `Mixed Reality account <id>` or `Cognitive Services resource <name>`, for messages. */
export function describeHolder(record: HolderRecord): string {
  return record.kind === 'mixedRealityAccount'
    ? `Mixed Reality account ${record.accountId}`
    : `Cognitive Services resource ${record.name}`;
}

async function readHolder(store: WritableSecretStore, holder: PrincipalHolder): Promise<HolderRecord> {
  if (typeof holder !== 'string') {
    const name = holder.cognitiveResource.toLowerCase();
    if (!RESOURCE_NAME_PATTERN.test(name)) {
      throw new ProvisioningError(
        `Resource name "${holder.cognitiveResource}" must be 2-64 letters, digits and hyphens`,
      );
    }
    return (await readCredential(store, { kind: 'cognitiveResource', name })) as CognitiveResource;
  }
  if (!GUID_PATTERN.test(holder)) throw new ProvisioningError(`Account id must be a GUID (got "${holder}")`);
  const ref = { kind: 'mixedRealityAccount', accountId: holder.toLowerCase() } as const;
  return (await readCredential(store, ref)) as MixedRealityAccount;
}

async function writeHolder<R extends HolderRecord>(store: WritableSecretStore, record: R): Promise<R> {
  const name =
    record.kind === 'mixedRealityAccount'
      ? vaultLayout.mixedRealityAccount(record.accountId)
      : vaultLayout.cognitiveResource(record.name);
  await store.setSecret(name, JSON.stringify(record), { contentType: 'application/json', tags: { kind: record.kind } });
  return record;
}

function samePrincipal(a: AllowedPrincipal, b: AllowedPrincipal): boolean {
  return a.tenantId.toLowerCase() === b.tenantId.toLowerCase() && a.objectId.toLowerCase() === b.objectId.toLowerCase();
}
