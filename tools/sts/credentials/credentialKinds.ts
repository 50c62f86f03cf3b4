import { randomBytes } from 'node:crypto';
import { isAcceptableClientKey } from '../../../shared/credentials/clientKeys.js';
import type { CognitiveResource, MixedRealityAccount, WrapIssuer } from '../../../shared/credentials/records.js';
import {
  GUID_PATTERN,
  NAMESPACE_PATTERN,
  RESOURCE_NAME_PATTERN,
  vaultLayout,
} from '../../../shared/credentials/vaultLayout.js';
import type { FlowCredentialKind } from '../../../shared/flowCatalogue.js';
import { ProvisioningError } from './provisioningError.js';

/**
 * What the admin CLI knows about each kind of credential a client presents a key of (the `credentialKind`
 * of a flow's declaration in `shared/flowCatalogue.ts`): the flag that names one, how it is described, where
 * its record lives, the shape of its keys, and what its real STS's base URL looks like in upstream mode.
 * Provisioning and the credential commands read this table instead of switching on the kind.
 */

/** The records that carry two keys and an enabled flag. */
export type KeyedCredential = MixedRealityAccount | CognitiveResource | WrapIssuer;
export type KeyedCredentialKind = KeyedCredential['kind'];

/** A credential an operator names: by account id, resource name, or namespace and issuer name. */
export type CredentialRef =
  | { readonly kind: 'mixedRealityAccount'; readonly accountId: string }
  | { readonly kind: 'cognitiveResource'; readonly name: string }
  | { readonly kind: 'wrapIssuer'; readonly namespace: string; readonly name: string };

type RefOf<K extends KeyedCredentialKind> = Extract<CredentialRef, { readonly kind: K }>;
type RecordOf<K extends KeyedCredentialKind> = Extract<KeyedCredential, { readonly kind: K }>;

/** One kind's entry in {@link credentialKinds}. */
export interface CredentialKindDeclaration<K extends KeyedCredentialKind> {
  /** The CLI option that names one credential of this kind (`--<flag> <value>`). */
  readonly flag: string;
  /** What the option's value looks like in usage text, e.g. `<guid>`. */
  readonly flagValue: string;
  /** What one credential of this kind is, in usage text, e.g. `a Mixed Reality account`. */
  readonly noun: string;
  /** The option's value as a reference; {@link ProvisioningError} when it is malformed. */
  readonly refFrom: (text: string) => RefOf<K>;
  /** The reference that names `record`. */
  readonly refOf: (record: RecordOf<K>) => RefOf<K>;
  /** "Mixed Reality account …": for messages. */
  readonly describe: (ref: RefOf<K>) => string;
  /** Account id, resource name, or `<namespace>/<issuer>`: what listings show and upstream key names derive from. */
  readonly id: (ref: RefOf<K>) => string;
  /** The secret that holds the record (`shared/credentials/vaultLayout.ts`). */
  readonly secretName: (ref: RefOf<K>) => string;
  /** A new random key of the shape real keys of this kind have. */
  readonly newKey: () => string;
  /** Tags written with the record (never a key). */
  readonly tags: (record: RecordOf<K>) => Readonly<Record<string, string>>;
  /** What `list` shows besides id and state (never a key). */
  readonly details: (record: RecordOf<K>) => Readonly<Record<string, string>>;
  /** Upstream mode: a path that shows the operator gave the token URL, not the base URL; and a base URL to suggest. */
  readonly upstreamEndpoint: { readonly tokenPath: RegExp; readonly example: string };
}

/** 32 random bytes (256 bits), base64: the shape of Azure account keys and ACS issuer keys. */
export const newBase64Key = (): string => acceptableKey(() => randomBytes(32).toString('base64'));
/** 16 random bytes (128 bits) as 32 hex characters: the shape of Cognitive Services subscription keys. */
export const newHexKey = (): string => acceptableKey(() => randomBytes(16).toString('hex'));

/**
 * Draws until the key passes the reader's check ({@link isAcceptableClientKey}); a hex draw fails it about
 * once in 28 million, so this costs nothing and removes a negligible sliver of the key space.
 */
function acceptableKey(draw: () => string): string {
  for (;;) {
    const key = draw();
    if (isAcceptableClientKey(key)) return key;
  }
}

/**
 * Every keyed credential kind. The `satisfies` clause makes a flow whose declaration names a new
 * `credentialKind` fail to compile until that kind is declared here.
 *
 * @example
 * credentialKinds.wrapIssuer.refFrom('contoso/owner'); // { kind: 'wrapIssuer', namespace: 'contoso', name: 'owner' }
 */
export const credentialKinds = {
  mixedRealityAccount: {
    flag: 'account',
    flagValue: '<guid>',
    noun: 'a Mixed Reality account',
    refFrom: (text) => {
      if (!GUID_PATTERN.test(text)) throw new ProvisioningError(`Account id must be a GUID (got "${text}")`);
      return { kind: 'mixedRealityAccount', accountId: text.toLowerCase() };
    },
    refOf: (record) => ({ kind: record.kind, accountId: record.accountId }),
    describe: (ref) => `Mixed Reality account ${ref.accountId}`,
    id: (ref) => ref.accountId,
    secretName: (ref) => vaultLayout.mixedRealityAccount(ref.accountId),
    newKey: newBase64Key,
    tags: (record) => ({ kind: record.kind }),
    details: (record) => ({
      domain: record.accountDomain,
      ...(record.resourceId ? { resourceId: record.resourceId } : {}),
      // Entra principals allowed without a key (docs/entra-id.md), as `<tenant>/<object id>`.
      ...(record.allowedPrincipals?.length
        ? { principals: record.allowedPrincipals.map((p) => `${p.tenantId}/${p.objectId}`).join(',') }
        : {}),
    }),
    upstreamEndpoint: { tokenPath: /\/accounts(\/|$)/i, example: 'https://sts.mixedreality.azure.com' },
  },
  cognitiveResource: {
    flag: 'cognitive',
    flagValue: '<name>',
    noun: 'a Cognitive Services resource',
    refFrom: (text) => {
      const name = text.toLowerCase();
      if (!RESOURCE_NAME_PATTERN.test(name))
        throw new ProvisioningError(`Resource name "${text}" must be 2-64 letters, digits and hyphens`);
      return { kind: 'cognitiveResource', name };
    },
    refOf: (record) => ({ kind: record.kind, name: record.name }),
    describe: (ref) => `Cognitive Services resource ${ref.name}`,
    id: (ref) => ref.name,
    secretName: (ref) => vaultLayout.cognitiveResource(ref.name),
    newKey: newHexKey,
    tags: (record) => ({ kind: record.kind }),
    details: (record) => ({
      region: record.region,
      kind: record.resourceKind,
      productId: record.productId,
      limitedAccessTokens: String(record.limitedAccessTokens),
      ...(record.grantableFeatureFlags.length > 0 ? { featureFlags: record.grantableFeatureFlags.join(',') } : {}),
      // Entra principals allowed without a key (docs/entra-id.md), as `<tenant>/<object id>`.
      ...(record.allowedPrincipals?.length
        ? { principals: record.allowedPrincipals.map((p) => `${p.tenantId}/${p.objectId}`).join(',') }
        : {}),
    }),
    upstreamEndpoint: { tokenPath: /\/sts\/v1\.0(\/|$)/i, example: 'https://westus.api.cognitive.microsoft.com' },
  },
  wrapIssuer: {
    flag: 'wrap-issuer',
    flagValue: '<namespace>/<name>',
    noun: 'a WRAP issuer',
    refFrom: (text) => {
      const slash = text.indexOf('/');
      const namespace = text.slice(0, Math.max(0, slash)).toLowerCase();
      const name = text.slice(slash + 1);
      if (slash <= 0 || !NAMESPACE_PATTERN.test(namespace) || !name) {
        throw new ProvisioningError(`A WRAP issuer is named <namespace>/<issuer name> (got "${text}")`);
      }
      return { kind: 'wrapIssuer', namespace, name };
    },
    refOf: (record) => ({ kind: record.kind, namespace: record.namespace, name: record.name }),
    describe: (ref) => `WRAP issuer ${ref.namespace}/${ref.name}`,
    id: (ref) => `${ref.namespace}/${ref.name}`,
    secretName: (ref) => vaultLayout.wrapIssuer(ref.namespace, ref.name),
    newKey: newBase64Key,
    tags: (record) => ({ kind: record.kind, namespace: record.namespace }),
    details: (record) => ({ scopes: record.scopes.join(' '), rights: record.rights.join(',') }),
    upstreamEndpoint: { tokenPath: /\/WRAPv0\.9\/./i, example: 'https://contoso-sb.accesscontrol.windows.net' },
  },
} as const satisfies { readonly [K in KeyedCredentialKind]: CredentialKindDeclaration<K> } & {
  readonly [K in FlowCredentialKind]: unknown;
};

/**
 * The declaration of `kind`, seen through one reference and record type: TypeScript cannot correlate a
 * union-typed reference with the entry of its own kind, and every entry takes exactly its own kind.
 */
export function credentialKindOf(kind: KeyedCredentialKind): CredentialKindDeclaration<KeyedCredentialKind> {
  return credentialKinds[kind] as unknown as CredentialKindDeclaration<KeyedCredentialKind>;
}

/** Every keyed credential kind, in table order. */
export const keyedCredentialKinds = Object.keys(credentialKinds) as KeyedCredentialKind[];
