import { isAcceptableClientKey } from './clientKeys.js';
/**
 * The credential records, as stored (JSON) in the secret store. See `vaultLayout.ts` for the secret names.
 * Each credential has two keys so either can be rotated while the other serves.
 */

export type KeyPair = readonly [string, string];

/**
 * Where a credential's tokens come from: minted here (default) or fetched from a real Azure STS with a key
 * that stays in the vault (upstream mode).
 */
export interface UpstreamSource {
  /** Base URL of the real STS, e.g. `https://sts.mixedreality.azure.com` or `https://westus.api.cognitive.microsoft.com`. */
  readonly endpoint: string;
  /** Name of the secret holding the real key (Cognitive, WRAP password) or `accountId:accountKey` (Mixed Reality). */
  readonly secretName: string;
}

export interface MixedRealityAccount {
  readonly kind: 'mixedRealityAccount';
  /** GUID, lower case. */
  readonly accountId: string;
  /** e.g. `eastus2.mixedreality.azure.com`; `apr` is its first label. */
  readonly accountDomain: string;
  /** ARM resource id (`rid` claim), optional. */
  readonly resourceId?: string | undefined;
  readonly keys: KeyPair;
  readonly enabled: boolean;
  readonly upstream?: UpstreamSource | undefined;
  /** Microsoft Entra principals that may obtain tokens for this account without a key (docs/entra-id.md). */
  readonly allowedPrincipals?: readonly AllowedPrincipal[] | undefined;
}

/** One Entra principal: its tenant (`tid`) and object id (`oid`), both lower-case GUIDs. */
export interface AllowedPrincipal {
  readonly tenantId: string;
  readonly objectId: string;
}

export interface CognitiveResource {
  readonly kind: 'cognitiveResource';
  /** Resource (account) name, lower case; the secret name suffix. */
  readonly name: string;
  /** ARM resource id, `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{name}`. */
  readonly resourceId: string;
  readonly region: string;
  /** Resource kind, e.g. `SpeechServices`, `Face`, `CognitiveServices`. */
  readonly resourceKind: string;
  /** `product-id` claim, e.g. `SpeechServices.S0`. */
  readonly productId: string;
  readonly keys: KeyPair;
  readonly enabled: boolean;
  /** Whether this resource may issue limited access tokens (ISV features). */
  readonly limitedAccessTokens: boolean;
  /** Feature flags this resource may grant in limited access tokens, e.g. `Face.Identification`. */
  readonly grantableFeatureFlags: readonly string[];
  readonly upstream?: UpstreamSource | undefined;
  /** Microsoft Entra principals that may obtain tokens for this resource without a key (docs/entra-id.md). */
  readonly allowedPrincipals?: readonly AllowedPrincipal[] | undefined;
}

/** Index entry `cs-key-{sha256(key)}`: which resource a Cognitive key belongs to. */
export interface CognitiveKeyIndex {
  readonly kind: 'cognitiveKeyIndex';
  readonly resource: string;
  readonly slot: 1 | 2;
}

export type WrapRight = 'Listen' | 'Manage' | 'Send';
export const WRAP_RIGHTS: readonly WrapRight[] = ['Listen', 'Manage', 'Send'];

export interface WrapIssuer {
  readonly kind: 'wrapIssuer';
  /** Service namespace, lower case (the first DNS label of the scopes it serves). */
  readonly namespace: string;
  /** `wrap_name`, compared exactly. */
  readonly name: string;
  readonly keys: KeyPair;
  /** Relying-party scope prefixes, e.g. `http://contoso.servicebus.windows.net/`. */
  readonly scopes: readonly string[];
  readonly rights: readonly WrapRight[];
  readonly enabled: boolean;
  readonly upstream?: UpstreamSource | undefined;
}

export interface WrapNamespace {
  readonly kind: 'wrapNamespace';
  readonly namespace: string;
  /** Base64 HMAC-SHA256 key that signs this namespace's SWTs. */
  readonly signingKey: string;
}

export type CredentialRecord = MixedRealityAccount | CognitiveResource | CognitiveKeyIndex | WrapIssuer | WrapNamespace;

/**
 * Parses a stored record and checks its kind. A record that does not parse is treated as absent by callers
 * (and reported by the admin CLI), never as a crash on the request path.
 */
export function parseRecord<K extends CredentialRecord['kind']>(
  text: string,
  kind: K,
): Extract<CredentialRecord, { kind: K }> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!value || typeof value !== 'object' || (value as { kind?: unknown }).kind !== kind) return undefined;
  const record = value as Extract<CredentialRecord, { kind: K }>;
  if ('keys' in record && !isKeyPair(record.keys)) return undefined;
  return record;
}

/** Both keys must be acceptable client keys: a record holding a guessable one is not a credential. */
function isKeyPair(keys: unknown): keys is KeyPair {
  return (
    Array.isArray(keys) && keys.length === 2 && keys.every((k) => typeof k === 'string' && isAcceptableClientKey(k))
  );
}
