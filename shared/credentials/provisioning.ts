import { randomBytes, randomUUID } from 'node:crypto';
import type { WritableSecretStore } from '../secrets/secretStore.js';
import { generateSigningJwk, type SigningAlgorithm } from '../tokens/signingKeyMaterial.js';
import {
  WRAP_RIGHTS,
  type CognitiveKeyIndex,
  type CognitiveResource,
  type MixedRealityAccount,
  type WrapIssuer,
  type WrapNamespace,
  type WrapRight,
} from './records.js';
import { GUID_PATTERN, NAMESPACE_PATTERN, RESOURCE_NAME_PATTERN, vaultLayout } from './vaultLayout.js';

/**
 * Creating credentials in the vault layout, shared by the admin CLI and the demo bootstrap. Writes are
 * ordered so that a failure part-way leaves nothing usable half-written: index entries before the record
 * they point to, the record last.
 */

export class ProvisioningError extends Error {
  readonly code = 'ERR_STS_PROVISIONING';
  constructor(message: string) {
    super(message);
    this.name = 'ProvisioningError';
  }
}

const JSON_CONTENT = 'application/json';

/** 32 random bytes, base64: the shape of Azure account keys and ACS issuer keys. */
export const newBase64Key = (): string => randomBytes(32).toString('base64');
/** 32 hex characters: the shape of Cognitive Services subscription keys. */
export const newHexKey = (): string => randomBytes(16).toString('hex');

export async function ensureSigningKey(store: WritableSecretStore, alg: SigningAlgorithm = 'ES256'): Promise<boolean> {
  const versions = await store.getSecretVersions(vaultLayout.signingKey);
  if (versions.some((v) => v.enabled)) return false;
  await store.setSecret(vaultLayout.signingKey, JSON.stringify(generateSigningJwk(alg)), { contentType: 'application/jwk+json' });
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
  if (!RESOURCE_NAME_PATTERN.test(name)) throw new ProvisioningError(`Resource name "${input.name}" must be 2-64 letters, digits and hyphens`);
  if (!/^[a-z0-9]+$/i.test(input.region)) throw new ProvisioningError(`Region "${input.region}" must be letters and digits`);
  if (!/^[A-Za-z][A-Za-z0-9.]*$/.test(input.resourceKind)) throw new ProvisioningError(`Kind "${input.resourceKind}" is not a resource kind`);
  const secretName = vaultLayout.cognitiveResource(name);
  if (await store.getSecret(secretName)) throw new ProvisioningError(`Cognitive Services resource ${name} already exists`);
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

export async function writeCognitiveKeyIndex(store: WritableSecretStore, key: string, resource: string, slot: 1 | 2): Promise<void> {
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
  if (!NAMESPACE_PATTERN.test(namespace)) throw new ProvisioningError(`Namespace "${input.namespace}" must be a DNS label`);
  if (!/^[\x21-\x7e]{1,128}$/.test(input.name) || /[&=]/.test(input.name)) {
    throw new ProvisioningError('Issuer name must be 1-128 printable ASCII characters without "&" or "="');
  }
  const scopes = input.scopes ?? [`http://${namespace}.servicebus.windows.net/`];
  for (const scope of scopes) {
    let url: URL;
    try {
      url = new URL(scope);
    } catch {
      throw new ProvisioningError(`Scope "${scope}" is not an absolute URI`);
    }
    if (url.hostname.split('.')[0] !== namespace) {
      throw new ProvisioningError(`Scope "${scope}" is outside namespace ${namespace} (its host must start with "${namespace}.")`);
    }
  }
  const rights = input.rights ?? WRAP_RIGHTS;
  const issuerSecret = vaultLayout.wrapIssuer(namespace, input.name);
  if (await store.getSecret(issuerSecret)) throw new ProvisioningError(`WRAP issuer ${input.name} already exists in ${namespace}`);
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
    rights: [...rights],
    enabled: true,
  };
  await store.setSecret(issuerSecret, JSON.stringify(record), { contentType: JSON_CONTENT, tags: { kind: record.kind, namespace } });
  return record;
}
