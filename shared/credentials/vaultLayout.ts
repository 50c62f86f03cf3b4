import { hash } from 'node:crypto';
import type { CredentialRecord } from './records.js';

/**
 * The vault layout: the secret name of every record, derived from what a request carries so that each
 * lookup is O(1) reads and the vault is never listed on a request path. Names use only `0-9 a-z -`.
 *
 * | secret                         | holds                                  | derived from                      |
 * |--------------------------------|----------------------------------------|-----------------------------------|
 * | `sts-signing-key`              | JWT signing key, one version per key   | —                                 |
 * | `mr-account-{accountId}`       | MixedRealityAccount                    | path account id (lower case)      |
 * | `cs-key-{sha256(key)}`         | CognitiveKeyIndex → resource, slot     | the presented key (digest)        |
 * | `cs-resource-{name}`           | CognitiveResource                      | the index entry                   |
 * | `wrap-issuer-{digest}`         | WrapIssuer                             | namespace + `wrap_name` (digest)  |
 * | `wrap-namespace-{namespace}`   | WrapNamespace (SWT signing key)        | `wrap_scope` host's first label   |
 * | `upstream-mr-{accountId}`      | real `accountId:accountKey` (upstream) | `upstreamKey(kind, id)`, named by |
 * | `upstream-cs-{name}`           | real Cognitive key (upstream mode)     | the record's `upstream.secretName`|
 * | `upstream-wrap-{digest}`       | real WRAP issuer password (upstream)   | (or another name, same prefix)    |
 */
export const vaultLayout = {
  signingKey: 'sts-signing-key',
  mixedRealityAccount: (accountId: string): string => `mr-account-${accountId.toLowerCase()}`,
  cognitiveKeyIndex: (key: string): string => `cs-key-${sha256Hex(key)}`,
  /** {@link vaultLayout.cognitiveKeyIndex} from the key's SHA-256 (UTF-8) already computed, e.g. for its comparison. */
  cognitiveKeyIndexOfDigest: (keyDigest: Buffer): string => `cs-key-${keyDigest.toString('hex')}`,
  cognitiveResource: (name: string): string => `cs-resource-${name.toLowerCase()}`,
  wrapIssuer: (namespace: string, issuerName: string): string =>
    `wrap-issuer-${sha256Hex(`${namespace.toLowerCase()}\n${issuerName}`).slice(0, 48)}`,
  wrapNamespace: (namespace: string): string => `wrap-namespace-${namespace.toLowerCase()}`,
  /**
   * Default name of the secret holding a credential's real upstream key (upstream mode, docs/upstream.md). `id` is the
   * account id, the resource name, or `<namespace>/<issuer name>` (digested, as issuer names are free text).
   */
  upstreamKey: (kind: 'mixedRealityAccount' | 'cognitiveResource' | 'wrapIssuer', id: string): string => {
    if (kind === 'mixedRealityAccount') return `${UPSTREAM_KEY_PREFIX}mr-${id.toLowerCase()}`;
    if (kind === 'cognitiveResource') return `${UPSTREAM_KEY_PREFIX}cs-${id.toLowerCase()}`;
    const slash = id.indexOf('/');
    return `${UPSTREAM_KEY_PREFIX}wrap-${sha256Hex(`${id.slice(0, slash).toLowerCase()}\n${id.slice(slash + 1)}`).slice(0, 48)}`;
  },
} as const;

/** Prefix of the default upstream key secrets (not a credential record: the admin listing skips it). */
export const UPSTREAM_KEY_PREFIX = 'upstream-';

/**
 * Prefixes, one per record kind: for the admin CLI's listing, and to keep upstream key names out of the
 * credential layout (never used to list on a request path).
 */
export const vaultPrefixes = {
  mixedRealityAccount: 'mr-account-',
  cognitiveKeyIndex: 'cs-key-',
  cognitiveResource: 'cs-resource-',
  wrapIssuer: 'wrap-issuer-',
  wrapNamespace: 'wrap-namespace-',
} as const satisfies Record<CredentialRecord['kind'], string>;

function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/** GUID in 8-4-4-4-12 hex form, any case. */
export const GUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Cognitive resource names: 2-64 letters, digits and hyphens, not starting or ending with a hyphen. */
export const RESOURCE_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

/** Service namespace names (a DNS label). */
export const NAMESPACE_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$/;
