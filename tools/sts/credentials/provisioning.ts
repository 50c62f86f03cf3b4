import { randomUUID } from 'node:crypto';
import { wrapScopePrefixProblem } from '../../../shared/flows/wrapScope.js';
import type { SecretStore, SecretVersion, WritableSecretStore } from '../../../shared/secrets/secretStore.js';
import { generateSigningJwk, type SigningAlgorithm } from '../../../shared/tokens/signingKeyMaterial.js';
import {
  parseRecord,
  WRAP_RIGHTS,
  type CognitiveKeyIndex,
  type CognitiveResource,
  type KeyPair,
  type MixedRealityAccount,
  type WrapIssuer,
  type WrapNamespace,
  type WrapRight,
} from '../../../shared/credentials/records.js';
import {
  GUID_PATTERN,
  NAMESPACE_PATTERN,
  RESOURCE_NAME_PATTERN,
  vaultLayout,
  vaultPrefixes,
} from '../../../shared/credentials/vaultLayout.js';
import {
  credentialKindOf,
  credentialKinds,
  keyedCredentialKinds,
  newBase64Key,
  newHexKey,
  type CredentialRef,
  type KeyedCredential,
} from './credentialKinds.js';
import { ProvisioningError } from './provisioningError.js';

// Declared with the credential kinds; re-exported here for the commands and tests that import them from provisioning.
export { ProvisioningError, type CredentialRef, type KeyedCredential };

/**
 * Creating credentials in the vault layout, shared by the admin CLI and the demo bootstrap. Writes are
 * ordered so that a failure part-way leaves nothing usable half-written: index entries before the record
 * they point to, the record last.
 */

const JSON_CONTENT = 'application/json';

export async function ensureSigningKey(store: WritableSecretStore, alg: SigningAlgorithm = 'ES256'): Promise<boolean> {
  const versions = await store.getSecretVersions(vaultLayout.signingKey);
  if (versions.some((v) => v.enabled)) return false;
  await store.setSecret(vaultLayout.signingKey, JSON.stringify(generateSigningJwk(alg)), {
    contentType: 'application/jwk+json',
  });
  return true;
}

export interface NewMixedRealityAccount {
  readonly accountId?: string;
  readonly accountDomain: string;
  readonly resourceId?: string;
}

export async function createMixedRealityAccount(
  store: WritableSecretStore,
  input: NewMixedRealityAccount,
): Promise<MixedRealityAccount> {
  const accountId = (input.accountId ?? randomUUID()).toLowerCase();
  if (!GUID_PATTERN.test(accountId)) throw new ProvisioningError(`Account id must be a GUID (got "${accountId}")`);
  if (!/^[a-z0-9.-]+$/i.test(input.accountDomain)) throw new ProvisioningError('Account domain must be a DNS name');
  const name = vaultLayout.mixedRealityAccount(accountId);
  if (await store.getSecret(name)) throw new ProvisioningError(`Mixed Reality account ${accountId} already exists`);
  const record: MixedRealityAccount = {
    kind: 'mixedRealityAccount',
    accountId,
    accountDomain: input.accountDomain.toLowerCase(),
    resourceId: input.resourceId,
    keys: [newBase64Key(), newBase64Key()],
    enabled: true,
  };
  await store.setSecret(name, JSON.stringify(record), { contentType: JSON_CONTENT, tags: { kind: record.kind } });
  return record;
}

export interface NewCognitiveResource {
  readonly name: string;
  readonly region: string;
  readonly resourceKind: string;
  readonly productId?: string;
  readonly subscriptionId?: string;
  readonly resourceGroup?: string;
  readonly limitedAccessTokens?: boolean;
  readonly grantableFeatureFlags?: readonly string[];
}

export async function createCognitiveResource(
  store: WritableSecretStore,
  input: NewCognitiveResource,
): Promise<CognitiveResource> {
  const name = input.name.toLowerCase();
  if (!RESOURCE_NAME_PATTERN.test(name))
    throw new ProvisioningError(`Resource name "${input.name}" must be 2-64 letters, digits and hyphens`);
  if (!/^[a-z0-9]+$/i.test(input.region))
    throw new ProvisioningError(`Region "${input.region}" must be letters and digits`);
  if (!/^[A-Za-z][A-Za-z0-9.]*$/.test(input.resourceKind))
    throw new ProvisioningError(`Kind "${input.resourceKind}" is not a resource kind`);
  if (input.productId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(input.productId)) {
    throw new ProvisioningError(`Product id "${input.productId}" must be 1-64 letters, digits, ".", "_" or "-"`);
  }
  for (const flag of input.grantableFeatureFlags ?? []) {
    if (!FEATURE_FLAG_PATTERN.test(flag))
      throw new ProvisioningError(`Feature flag "${flag}" must look like "Face.Identification"`);
  }
  if ((input.grantableFeatureFlags?.length ?? 0) > 0 && !input.limitedAccessTokens) {
    throw new ProvisioningError(
      'Feature flags are granted in limited access tokens: enable limited access tokens for this resource',
    );
  }
  const secretName = vaultLayout.cognitiveResource(name);
  if (await store.getSecret(secretName))
    throw new ProvisioningError(`Cognitive Services resource ${name} already exists`);
  const subscriptionId = input.subscriptionId ?? '00000000-0000-0000-0000-000000000000';
  const resourceGroup = input.resourceGroup ?? 'sts-local';
  const record: CognitiveResource = {
    kind: 'cognitiveResource',
    name,
    resourceId: `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.CognitiveServices/accounts/${name}`,
    region: input.region.toLowerCase(),
    resourceKind: input.resourceKind,
    productId: input.productId ?? `${input.resourceKind}.S0`,
    keys: [newHexKey(), newHexKey()],
    enabled: true,
    limitedAccessTokens: input.limitedAccessTokens ?? false,
    grantableFeatureFlags: [...(input.grantableFeatureFlags ?? [])],
  };
  for (const slot of [1, 2] as const) {
    await writeCognitiveKeyIndex(store, record.keys[slot - 1] as string, name, slot);
  }
  await store.setSecret(secretName, JSON.stringify(record), { contentType: JSON_CONTENT, tags: { kind: record.kind } });
  return record;
}

export async function writeCognitiveKeyIndex(
  store: WritableSecretStore,
  key: string,
  resource: string,
  slot: 1 | 2,
): Promise<void> {
  const index: CognitiveKeyIndex = { kind: 'cognitiveKeyIndex', resource, slot };
  await store.setSecret(vaultLayout.cognitiveKeyIndex(key), JSON.stringify(index), {
    contentType: JSON_CONTENT,
    tags: { kind: index.kind, resource },
  });
}

export interface NewWrapIssuer {
  readonly namespace: string;
  readonly name: string;
  readonly scopes?: readonly string[];
  readonly rights?: readonly WrapRight[];
}

export async function createWrapIssuer(store: WritableSecretStore, input: NewWrapIssuer): Promise<WrapIssuer> {
  const namespace = input.namespace.toLowerCase();
  if (!NAMESPACE_PATTERN.test(namespace))
    throw new ProvisioningError(`Namespace "${input.namespace}" must be a DNS label`);
  if (!/^[\x21-\x7e]{1,128}$/.test(input.name) || /[&=]/.test(input.name)) {
    throw new ProvisioningError('Issuer name must be 1-128 printable ASCII characters without "&" or "="');
  }
  const scopes = input.scopes ?? [`http://${namespace}.servicebus.windows.net/`];
  if (scopes.length === 0) throw new ProvisioningError('An issuer needs at least one scope');
  for (const scope of scopes) {
    // The rule issuance applies too (shared/flows/wrapScope.ts): the namespace's own Service Bus host, canonical path.
    const problem = wrapScopePrefixProblem(scope, namespace);
    if (problem) throw new ProvisioningError(`Scope "${scope}" is refused for namespace ${namespace}: ${problem}`);
  }
  const rights = input.rights ?? WRAP_RIGHTS;
  if (rights.length === 0)
    throw new ProvisioningError(`An issuer needs at least one right (${WRAP_RIGHTS.join(', ')})`);
  for (const right of rights) {
    if (!WRAP_RIGHTS.includes(right))
      throw new ProvisioningError(`Right "${right}" is not one of ${WRAP_RIGHTS.join(', ')}`);
  }
  const issuerSecret = vaultLayout.wrapIssuer(namespace, input.name);
  if (await store.getSecret(issuerSecret))
    throw new ProvisioningError(`WRAP issuer ${input.name} already exists in ${namespace}`);
  const namespaceSecret = vaultLayout.wrapNamespace(namespace);
  if (!(await store.getSecret(namespaceSecret))) {
    const ns: WrapNamespace = { kind: 'wrapNamespace', namespace, signingKey: newBase64Key() };
    await store.setSecret(namespaceSecret, JSON.stringify(ns), { contentType: JSON_CONTENT, tags: { kind: ns.kind } });
  }
  const record: WrapIssuer = {
    kind: 'wrapIssuer',
    namespace,
    name: input.name,
    keys: [newBase64Key(), newBase64Key()],
    scopes: [...scopes],
    rights: [...new Set(rights)],
    enabled: true,
  };
  await store.setSecret(issuerSecret, JSON.stringify(record), {
    contentType: JSON_CONTENT,
    tags: { kind: record.kind, namespace },
  });
  return record;
}

// ---- credential administration (admin CLI) ---------------------------------------------------------------

/** Feature flags as the Face docs spell them: `Face.Identification`, `Face.Verification`. */
const FEATURE_FLAG_PATTERN = /^[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)+$/;

export type KeySlot = 1 | 2;

/**
 * Exactly one credential named by its option (`--account`, `--cognitive`, `--wrap-issuer`: the `flag` of
 * each kind in `credentialKinds.ts`), validated.
 *
 * @example
 * credentialRefFrom({ 'wrap-issuer': 'contoso/owner' }); // { kind: 'wrapIssuer', namespace: 'contoso', name: 'owner' }
 */
export function credentialRefFrom(options: Readonly<Record<string, unknown>>): CredentialRef {
  const given = keyedCredentialKinds.filter((kind) => options[credentialKinds[kind].flag] !== undefined);
  const [kind] = given;
  if (kind === undefined || given.length !== 1) {
    const choices = keyedCredentialKinds.map((k) => `--${credentialKinds[k].flag} ${credentialKinds[k].flagValue}`);
    throw new ProvisioningError(`Name exactly one credential: ${choices.join(', ')}`);
  }
  const declaration = credentialKindOf(kind);
  return declaration.refFrom(String(options[declaration.flag]));
}

/** A key slot from operator input: 1 or 2. */
export function parseKeySlot(value: string | number | undefined): KeySlot {
  const text = String(value ?? '').trim();
  if (text === '1' || text === '2') return Number(text) as KeySlot;
  throw new ProvisioningError(`Key slot must be 1 or 2 (got "${text}")`);
}

/** A signing algorithm from operator input. */
export function parseSigningAlgorithm(value: string | undefined): SigningAlgorithm {
  const text = (value ?? 'ES256').trim().toUpperCase();
  if (text === 'ES256' || text === 'RS256') return text;
  throw new ProvisioningError(`Signing algorithm must be ES256 or RS256 (got "${value}")`);
}

/** WRAP rights from operator input (`Listen,Send`, any case). */
export function parseWrapRights(text: string): WrapRight[] {
  const rights = text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  return rights.map((right) => {
    const known = WRAP_RIGHTS.find((r) => r.toLowerCase() === right.toLowerCase());
    if (!known) throw new ProvisioningError(`Right "${right}" is not one of ${WRAP_RIGHTS.join(', ')}`);
    return known;
  });
}

/** "Mixed Reality account …", "Cognitive Services resource …", "WRAP issuer ns/name": for messages. */
export function describeCredential(ref: CredentialRef): string {
  return credentialKindOf(ref.kind).describe(ref);
}

function secretNameOf(ref: CredentialRef): string {
  return credentialKindOf(ref.kind).secretName(ref);
}

/** The current record of a credential; {@link ProvisioningError} when it does not exist or does not parse. */
export async function readCredential(store: SecretStore, ref: CredentialRef): Promise<KeyedCredential> {
  const secret = await store.getSecret(secretNameOf(ref));
  if (!secret) throw new ProvisioningError(`${describeCredential(ref)} does not exist (or its secret is disabled)`);
  const record = parseRecord(secret.value, ref.kind);
  if (!record) throw new ProvisioningError(`${describeCredential(ref)} is stored in a form this version cannot read`);
  if (ref.kind === 'wrapIssuer') {
    const issuer = record as WrapIssuer;
    if (issuer.namespace !== ref.namespace || issuer.name !== ref.name)
      throw new ProvisioningError(`${describeCredential(ref)} does not exist`);
  }
  return record;
}

export interface KeyRotation {
  readonly record: KeyedCredential;
  readonly slot: KeySlot;
  /** The new key, to be shown to the operator once. */
  readonly newKey: string;
  /** Set when the rotation took effect but a clean-up step (Cognitive: disabling the old index entry) failed. */
  readonly cleanupProblem?: string;
}

/**
 * Replaces key 1 or key 2 of a credential with a new random key; the other key keeps working throughout.
 *
 * For a Cognitive resource (keys arrive alone and are found through their digest) the writes are ordered so
 * that a failure at any step leaves every key either fully working or fully refused: the new key's index
 * entry first (harmless alone: it points at a resource that does not hold the key yet), then the resource
 * with the new key (the switch), then the old key's index entry is disabled (clean-up: the resource no longer
 * holds the old key, so it is refused either way).
 */
export async function rotateCredentialKey(
  store: WritableSecretStore,
  ref: CredentialRef,
  slot: KeySlot,
): Promise<KeyRotation> {
  const current = await readCredential(store, ref);
  const newKey = credentialKindOf(current.kind).newKey();
  const oldKey = current.keys[slot - 1] as string;
  const keys: KeyPair = slot === 1 ? [newKey, current.keys[1]] : [current.keys[0], newKey];
  const record = { ...current, keys } as KeyedCredential;

  if (record.kind === 'cognitiveResource') await writeCognitiveKeyIndex(store, newKey, record.name, slot);
  await writeRecord(store, ref, record);
  if (record.kind === 'cognitiveResource' && oldKey !== newKey && !record.keys.includes(oldKey)) {
    try {
      await disableAllVersions(store, vaultLayout.cognitiveKeyIndex(oldKey));
    } catch (error) {
      // The switch is done and consistent; only the clean-up failed, which leaves nothing usable behind.
      const cleanupProblem =
        `the old key's index entry could not be disabled (${error instanceof Error ? error.message : String(error)}); ` +
        'it is harmless (the resource no longer holds that key) and can be disabled later';
      return { record, slot, newKey, cleanupProblem };
    }
  }
  return { record, slot, newKey };
}

/** Enables or disables a credential (a new version of its record); a disabled credential's keys are refused. */
export async function setCredentialEnabled(
  store: WritableSecretStore,
  ref: CredentialRef,
  enabled: boolean,
): Promise<{ readonly record: KeyedCredential; readonly changed: boolean }> {
  const current = await readCredential(store, ref);
  if (current.enabled === enabled) return { record: current, changed: false };
  const record = { ...current, enabled } as KeyedCredential;
  await writeRecord(store, ref, record);
  return { record, changed: true };
}

/** One key of a credential, for an operator who asked for it explicitly. */
export async function showCredentialKey(store: SecretStore, ref: CredentialRef, slot: KeySlot): Promise<string> {
  const record = await readCredential(store, ref);
  return record.keys[slot - 1] as string;
}

/**
 * Adds a new version of `sts-signing-key` (a new private JWK). Older versions stay enabled: the signing key
 * ring publishes the new key first and signs with it once every verifier can have seen it, and keeps the old
 * ones in the JWKS while their tokens may be live.
 */
export async function rotateSigningKey(store: WritableSecretStore, alg: SigningAlgorithm): Promise<SecretVersion> {
  parseSigningAlgorithm(alg);
  return store.setSecret(vaultLayout.signingKey, JSON.stringify(generateSigningJwk(alg)), {
    contentType: 'application/jwk+json',
  });
}

/** What `list` shows of a credential: never a key. */
export interface CredentialSummary {
  readonly kind: KeyedCredential['kind'];
  /** Account id, resource name, or `<namespace>/<issuer>`. */
  readonly id: string;
  readonly enabled: boolean;
  readonly details: Readonly<Record<string, string>>;
}

export interface CredentialListing {
  readonly credentials: readonly CredentialSummary[];
  readonly wrapNamespaces: readonly string[];
  readonly signingKeys: readonly {
    readonly version: string;
    readonly enabled: boolean;
    readonly createdOn: Date;
    readonly alg: string;
  }[];
  /** Cognitive key index entries (`cs-key-…`), counted, never shown. */
  readonly cognitiveKeyIndexEntries: number;
  /** Secrets that look like credentials but cannot be read. */
  readonly unreadable: readonly string[];
}

/** Every credential in the store, summarised without keys (admin only: it lists the vault). */
export async function listCredentials(store: WritableSecretStore): Promise<CredentialListing> {
  const names = await store.listSecretNames();
  const credentials: CredentialSummary[] = [];
  const wrapNamespaces: string[] = [];
  const unreadable: string[] = [];
  let cognitiveKeyIndexEntries = 0;
  for (const name of names) {
    if (name.startsWith(vaultPrefixes.cognitiveKeyIndex)) {
      cognitiveKeyIndexEntries += 1;
      continue;
    }
    const kind = Object.entries(vaultPrefixes).find(([, prefix]) => name.startsWith(prefix))?.[0] as
      keyof typeof vaultPrefixes | undefined;
    if (!kind) continue;
    const secret = await store.getSecret(name);
    if (!secret) continue; // disabled or expired: not in force
    if (kind === 'wrapNamespace') {
      const ns = parseRecord(secret.value, 'wrapNamespace');
      if (ns) wrapNamespaces.push(ns.namespace);
      else unreadable.push(name);
      continue;
    }
    const record = parseRecord(secret.value, kind);
    if (!record) {
      unreadable.push(name);
      continue;
    }
    const summary = summariseCredential(record as KeyedCredential);
    const upstream = (record as KeyedCredential).upstream;
    // Upstream mode shows where tokens come from (the endpoint), never the secret's value.
    credentials.push(upstream ? { ...summary, details: { ...summary.details, upstream: upstream.endpoint } } : summary);
  }
  const signingVersions = await store.getSecretVersions(vaultLayout.signingKey);
  const signingKeys = signingVersions.map((v) => ({
    version: v.version,
    enabled: v.enabled,
    createdOn: v.createdOn,
    alg: algorithmOf(v.value),
  }));
  return { credentials, wrapNamespaces, signingKeys, cognitiveKeyIndexEntries, unreadable };
}

/** What `list` and `show` print of a credential: never a key. */
export function summariseCredential(record: KeyedCredential): CredentialSummary {
  const kind = credentialKindOf(record.kind);
  return { kind: record.kind, id: kind.id(kind.refOf(record)), enabled: record.enabled, details: kind.details(record) };
}

/** The `alg` member of a stored JWK, read without keeping anything else of it. */
function algorithmOf(value: string): string {
  if (!value) return '?';
  try {
    const alg = (JSON.parse(value) as { alg?: unknown }).alg;
    return typeof alg === 'string' ? alg : '?';
  } catch {
    return '?';
  }
}

async function writeRecord(store: WritableSecretStore, ref: CredentialRef, record: KeyedCredential): Promise<void> {
  await store.setSecret(secretNameOf(ref), JSON.stringify(record), {
    contentType: JSON_CONTENT,
    tags: { ...credentialKindOf(record.kind).tags(record) },
  });
}

async function disableAllVersions(store: WritableSecretStore, name: string): Promise<void> {
  for (const version of await store.getSecretVersions(name)) {
    if (version.enabled) await store.updateSecretVersion(name, version.version, { enabled: false });
  }
}
