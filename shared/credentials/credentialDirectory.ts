import { matchKeyDigestSlot, secretDigest } from '../security/constantTime.js';
import { NOT_AT_HAND, type SecretStore, type SecretVersion } from '../secrets/secretStore.js';
import {
  parseRecord,
  type CredentialRecord,
  type CognitiveResource,
  type MixedRealityAccount,
  type WrapIssuer,
  type WrapNamespace,
} from './records.js';
import { vaultLayout } from './vaultLayout.js';

/** A credential that proved a key: which record, and which of its two keys matched. */
export interface VerifiedCredential<T> {
  readonly record: T;
  readonly keySlot: 1 | 2;
}

export type Verification<T> =
  | { readonly ok: true; readonly credential: VerifiedCredential<T> }
  | { readonly ok: false; readonly reason: 'unknown_credential' | 'wrong_key' | 'credential_disabled' };

/**
 * Resolves credentials through the secret store with O(1) reads per request (see `vaultLayout.ts`) and
 * verifies presented keys in constant time. Store outages surface as `DependencyUnavailableError` from the
 * store; everything else (absent, unparseable, disabled, wrong key) is a refusal.
 */
type RecordKind = CredentialRecord['kind'];

/** A record parsed from one secret version (undefined when the version does not parse as that kind). */
interface ParsedSecret {
  readonly kind: RecordKind;
  readonly record: CredentialRecord | undefined;
}

/** Key digests of a record read through {@link CredentialDirectory}; absent for records built elsewhere. */
const keyDigestsOf = new WeakMap<object, readonly [Buffer, Buffer]>();

export class CredentialDirectory {
  /**
   * Parsed records per secret version object. Stores hand out the same version object until the secret
   * changes (the cache holds it; the file store keeps its views), so a warm credential is parsed and its
   * keys hashed once, not on every request. A memo keyed by the version object, not a cache: it lives exactly
   * as long as the cache (or file store) holds that version, so it needs no bound or deadline of its own.
   */
  private readonly parsed: WeakMap<SecretVersion, ParsedSecret>;

  /**
   * @param requester the client this directory's reads are done for (see {@link attributedTo}); undefined:
   *   unattributed, only the instance-wide vault read budget applies.
   */
  constructor(
    private readonly secrets: SecretStore,
    private readonly requester?: string,
    parsed?: WeakMap<SecretVersion, ParsedSecret>,
  ) {
    this.parsed = parsed ?? new WeakMap();
  }

  /**
   * The same directory (same store, same parsed records) with its secret-store reads charged to `requester`'s
   * share of the vault read budget (docs/failed-attempts.md, "Vault work"): the function wrapper hands each
   * request one, keyed by its client address. Passed explicitly rather than through `AsyncLocalStorage`, whose
   * promise hooks would tax every promise of the process, the Functions worker's included.
   */
  attributedTo(requester: string | undefined): CredentialDirectory {
    return requester === this.requester ? this : new CredentialDirectory(this.secrets, requester, this.parsed);
  }

  verifyAccountKey(accountId: string, presentedKey: string): Promise<Verification<MixedRealityAccount>> {
    return this.readThen(vaultLayout.mixedRealityAccount(accountId), 'mixedRealityAccount', (record) =>
      verify(record, presentedKey),
    );
  }

  /** The account's record as stored (Entra callers present no key; the flow checks its allowed principals). */
  mixedRealityAccount(accountId: string): Promise<MixedRealityAccount | undefined> {
    return this.read(vaultLayout.mixedRealityAccount(accountId), 'mixedRealityAccount');
  }

  /** The resource's record as stored (Entra callers name the resource and present no key; the flow checks its principals). */
  cognitiveResource(name: string): Promise<CognitiveResource | undefined> {
    return this.read(vaultLayout.cognitiveResource(name), 'cognitiveResource');
  }

  /** Cognitive keys arrive alone: the key's digest names the index entry, which names the resource. */
  verifySubscriptionKey(presentedKey: string): Promise<Verification<CognitiveResource>> {
    // One SHA-256 of the key both names the index entry and is what the constant-time comparison compares.
    const presentedDigest = secretDigest(presentedKey);
    return this.readThen(vaultLayout.cognitiveKeyIndexOfDigest(presentedDigest), 'cognitiveKeyIndex', (index) =>
      index
        ? this.readThen(vaultLayout.cognitiveResource(index.resource), 'cognitiveResource', (record) =>
            verify(record, presentedKey, presentedDigest),
          )
        : { ok: false, reason: 'unknown_credential' },
    );
  }

  verifyWrapIssuer(namespace: string, issuerName: string, presentedKey: string): Promise<Verification<WrapIssuer>> {
    return this.readThen(vaultLayout.wrapIssuer(namespace, issuerName), 'wrapIssuer', (record) => {
      // The digest names the secret; the record must still name exactly this issuer and namespace.
      const matches = record && record.name === issuerName && record.namespace === namespace.toLowerCase();
      return verify(matches ? record : undefined, presentedKey);
    });
  }

  // Pass-throughs return the read's own promise: no async frame of their own on the warm path.
  wrapNamespace(namespace: string): Promise<WrapNamespace | undefined> {
    return this.read(vaultLayout.wrapNamespace(namespace), 'wrapNamespace');
  }

  private read<K extends RecordKind>(name: string, kind: K): Promise<RecordOf<K> | undefined> {
    return this.readThen(name, kind, (record) => record);
  }

  /**
   * `then` applied to the record of secret `name`: at once when the store has the secret at hand (a warm
   * credential: no promise chain through the store), else once the store has answered.
   */
  private readThen<K extends RecordKind, T>(
    name: string,
    kind: K,
    then: (record: RecordOf<K> | undefined) => T | Promise<T>,
  ): Promise<T> {
    const atHand = this.secrets.secretAtHand ? this.secrets.secretAtHand(name, this.requester) : NOT_AT_HAND;
    if (atHand !== NOT_AT_HAND) {
      try {
        return Promise.resolve(then(this.recordOf(atHand, kind)));
      } catch (error) {
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes on what `then` threw, as an async function would
        return Promise.reject(error);
      }
    }
    return this.secrets.getSecret(name, this.requester).then((secret) => then(this.recordOf(secret, kind)));
  }

  /** The record of kind `kind` a secret version holds, parsed (and its keys hashed) once per version. */
  private recordOf<K extends RecordKind>(secret: SecretVersion | undefined, kind: K): RecordOf<K> | undefined {
    if (!secret) return undefined;
    let entry = this.parsed.get(secret);
    if (!entry || entry.kind !== kind) {
      const record = parseRecord(secret.value, kind);
      if (record && 'keys' in record)
        keyDigestsOf.set(record, [secretDigest(record.keys[0]), secretDigest(record.keys[1])]);
      entry = { kind, record };
      this.parsed.set(secret, entry);
    }
    return entry.record as RecordOf<K> | undefined;
  }
}

type RecordOf<K extends RecordKind> = Extract<CredentialRecord, { kind: K }>;

function verify<T extends { readonly keys: readonly [string, string]; readonly enabled: boolean }>(
  record: T | undefined,
  presentedKey: string,
  presentedDigest?: Buffer,
): Verification<T> {
  if (!record) return { ok: false, reason: 'unknown_credential' };
  const keyDigests = keyDigestsOf.get(record) ?? [secretDigest(record.keys[0]), secretDigest(record.keys[1])];
  const keySlot = matchKeyDigestSlot(presentedDigest ?? secretDigest(presentedKey), keyDigests);
  if (keySlot === undefined) return { ok: false, reason: 'wrong_key' };
  if (!record.enabled) return { ok: false, reason: 'credential_disabled' };
  return { ok: true, credential: { record, keySlot } };
}
