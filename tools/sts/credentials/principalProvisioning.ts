import type { AllowedPrincipal, MixedRealityAccount } from '../../../shared/credentials/records.js';
import { GUID_PATTERN, vaultLayout } from '../../../shared/credentials/vaultLayout.js';
import type { WritableSecretStore } from '../../../shared/secrets/secretStore.js';
import { ProvisioningError, readCredential } from './provisioning.js';

/**
 * Which Microsoft Entra principals may obtain Mixed Reality tokens for an account without its key
 * (docs/entra-id.md). The list lives in the account's record, so a change is one new version of one secret
 * and takes effect when instances next read it (at once with the file store; within
 * `STS_SECRET_CACHE_MAX_AGE_SECONDS` with Key Vault).
 */

/** Principals one account may list: far more than any real deployment; keeps the record small. */
const MAX_ALLOWED_PRINCIPALS = 200;

/** A principal from operator input: tenant and object id, both GUIDs, stored lower-case. */
export function parsePrincipal(tenantId: string | undefined, objectId: string | undefined): AllowedPrincipal {
  if (!tenantId || !GUID_PATTERN.test(tenantId)) throw new ProvisioningError(`Tenant id must be a GUID (got "${tenantId ?? ''}")`);
  if (!objectId || !GUID_PATTERN.test(objectId)) throw new ProvisioningError(`Object id must be a GUID (got "${objectId ?? ''}")`);
  return { tenantId: tenantId.toLowerCase(), objectId: objectId.toLowerCase() };
}

export interface PrincipalChange {
  readonly record: MixedRealityAccount;
  /** False when the principal was already allowed (allow) or already absent (revoke): nothing was written. */
  readonly changed: boolean;
}

/**
 * Allows `principal` on the account.
 *
 * @example
 * await allowPrincipal(store, accountId, parsePrincipal(tid, oid));
 */
export async function allowPrincipal(store: WritableSecretStore, accountId: string, principal: AllowedPrincipal): Promise<PrincipalChange> {
  const current = await readAccount(store, accountId);
  const allowed = current.allowedPrincipals ?? [];
  if (allowed.some((entry) => samePrincipal(entry, principal))) return { record: current, changed: false };
  if (allowed.length >= MAX_ALLOWED_PRINCIPALS) {
    throw new ProvisioningError(`An account allows at most ${MAX_ALLOWED_PRINCIPALS} principals: use a group of identities upstream, or revoke some`);
  }
  return { record: await writeAccount(store, { ...current, allowedPrincipals: [...allowed, principal] }), changed: true };
}

/** Removes `principal` from the account; its Entra tokens are refused from then on (issued tokens run out). */
export async function revokePrincipal(store: WritableSecretStore, accountId: string, principal: AllowedPrincipal): Promise<PrincipalChange> {
  const current = await readAccount(store, accountId);
  const allowed = current.allowedPrincipals ?? [];
  const remaining = allowed.filter((entry) => !samePrincipal(entry, principal));
  if (remaining.length === allowed.length) return { record: current, changed: false };
  return { record: await writeAccount(store, { ...current, allowedPrincipals: remaining }), changed: true };
}

/** `<tenant id>/<object id>`, the way the ledger names a principal. */
export const describePrincipal = (principal: AllowedPrincipal): string => `${principal.tenantId}/${principal.objectId}`;

async function readAccount(store: WritableSecretStore, accountId: string): Promise<MixedRealityAccount> {
  if (!GUID_PATTERN.test(accountId)) throw new ProvisioningError(`Account id must be a GUID (got "${accountId}")`);
  return (await readCredential(store, { kind: 'mixedRealityAccount', accountId: accountId.toLowerCase() })) as MixedRealityAccount;
}

async function writeAccount(store: WritableSecretStore, record: MixedRealityAccount): Promise<MixedRealityAccount> {
  await store.setSecret(vaultLayout.mixedRealityAccount(record.accountId), JSON.stringify(record), {
    contentType: 'application/json',
    tags: { kind: record.kind },
  });
  return record;
}

function samePrincipal(a: AllowedPrincipal, b: AllowedPrincipal): boolean {
  return a.tenantId.toLowerCase() === b.tenantId.toLowerCase() && a.objectId.toLowerCase() === b.objectId.toLowerCase();
}
