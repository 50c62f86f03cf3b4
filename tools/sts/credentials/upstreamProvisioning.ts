import type { WritableSecretStore } from '../../../shared/secrets/secretStore.js';
import { UpstreamError } from '../../../shared/upstream/upstreamErrors.js';
import {
  azureHostPolicy,
  checkUpstreamEndpoint,
  upstreamServiceOf,
  type UpstreamHostPolicy,
} from '../../../shared/upstream/upstreamHosts.js';
import {
  isUpstreamKeySecret,
  isUpstreamSecretName,
  parseKeySecret,
  parseMixedRealitySecret,
  upstreamKeyPrefixes,
  upstreamKeyTags,
} from '../../../shared/upstream/upstreamSecret.js';
import { credentialKindOf } from './credentialKinds.js';
import { ProvisioningError, readCredential, type CredentialRef, type KeyedCredential } from './provisioning.js';
import type { UpstreamSource } from '../../../shared/credentials/records.js';
import { GUID_PATTERN, vaultLayout } from '../../../shared/credentials/vaultLayout.js';

/**
 * Switching a credential between minting locally and upstream mode (docs/upstream.md), for the admin CLI. The real
 * key goes into its own secret (`vaultLayout.upstreamKey`, or a name the operator chooses) and the record
 * names it; clients keep their own keys and never see the real one.
 *
 * Every input is checked before the first write, and the writes are ordered so that nothing is half-written:
 * the real key first (harmless alone: no record names it yet, or the record already names this secret and
 * simply gets the new key), then the record. Clearing writes the record first, so the credential mints
 * locally before its copy of the real key is disabled.
 */

/** Longest real key or `accountId:accountKey` accepted (real ones are 32-88 characters). */
const MAX_KEY_LENGTH = 1_024;

export interface UpstreamSettings {
  /**
   * Base URL of the real STS: `https://sts.<domain>` (Mixed Reality), `https://<region>.api.cognitive.microsoft.com`
   * or a custom subdomain (Cognitive, Face), `https://<ns>-sb.accesscontrol.windows.net` (WRAP, `/WRAPv0.9` optional).
   */
  readonly endpoint: string;
  /**
   * The real key: the Cognitive or Face resource key, the WRAP issuer password, the Mixed Reality account key
   * (with `upstreamAccountId`) or `accountId:accountKey`. Omit it to use a secret that already holds it.
   */
  readonly key?: string | undefined;
  /** Mixed Reality only: the real account id, stored with `key` as `accountId:accountKey`. */
  readonly upstreamAccountId?: string | undefined;
  /**
   * The secret that holds (or is to hold) the real key. Default: `vaultLayout.upstreamKey(kind, id)`. Another
   * name must still be an upstream key name of the credential's kind (`upstream-cs-…` for a Cognitive resource),
   * and an existing secret named without a key must have been written by this command (its tags say so).
   */
  readonly secretName?: string | undefined;
}

/** Test seams only: no command-line flag or setting reaches these. */
export interface UpstreamProvisioningOptions {
  /** Where keys may go. Default: the documented Azure hosts (docs/upstream.md#hosts). */
  readonly hostPolicy?: UpstreamHostPolicy;
}

export interface UpstreamSwitch {
  readonly record: KeyedCredential;
  readonly upstream: UpstreamSource;
  /** Version of the real-key secret written, when a key was given. */
  readonly keyVersion?: string | undefined;
  /** False when the record already named this upstream (then only the key was replaced: a real-key rotation). */
  readonly recordChanged: boolean;
}

/**
 * Puts a credential in upstream mode, or replaces the real key of one that is: validates the endpoint, the
 * secret name and the key's form for the credential's kind, writes the key as a new secret version, then the
 * record with `upstream: { endpoint, secretName }` (unless it already says exactly that). Running instances
 * see the record within the secret cache's max age (Key Vault) or at once (file store); a rotated real key
 * is picked up at the latest when the upstream refuses the old one (key re-read on 401).
 *
 * @example
 * await setCredentialUpstream(store, { kind: 'cognitiveResource', name: 'speech' },
 *   { endpoint: 'https://westus.api.cognitive.microsoft.com', key: realSpeechKey });
 */
export async function setCredentialUpstream(
  store: WritableSecretStore,
  ref: CredentialRef,
  settings: UpstreamSettings,
  options: UpstreamProvisioningOptions = {},
): Promise<UpstreamSwitch> {
  const current = await readCredential(store, ref);
  const endpoint = normalizeUpstreamEndpoint(current.kind, settings.endpoint, options.hostPolicy);
  const chosenName = settings.secretName?.trim();
  const secretName = chosenName || vaultLayout.upstreamKey(current.kind, credentialKindOf(ref.kind).id(ref));
  if (!isUpstreamSecretName(secretName, current.kind)) {
    throw new ProvisioningError(
      `Secret name "${secretName.slice(0, 127)}" cannot hold this real key: it must start with ${upstreamKeyPrefixes[current.kind]} (1-127 letters, digits and "-"); only secrets this command writes are ever sent upstream`,
    );
  }

  let value: string | undefined;
  if (settings.key !== undefined) {
    value = upstreamSecretValue(current.kind, secretName, settings.key, settings.upstreamAccountId);
  } else {
    if (settings.upstreamAccountId !== undefined)
      throw new ProvisioningError('An upstream account id is stored with a key: give the key too');
    if (!chosenName)
      throw new ProvisioningError(
        'Give the real key (it is stored in the vault), or the name of a secret that already holds it',
      );
    const existing = await store.getSecret(secretName);
    if (!existing) throw new ProvisioningError(`Secret ${secretName} does not exist (or is disabled)`);
    if (!isUpstreamKeySecret(existing, current.kind)) {
      throw new ProvisioningError(
        `Secret ${secretName} was not written by set-upstream for a ${current.kind}: give the key so it is stored with the right tags`,
      );
    }
    upstreamSecretValue(current.kind, secretName, existing.value, undefined);
  }

  // Writes: the real key first, then the record that names it.
  const keyVersion =
    value === undefined
      ? undefined
      : (await store.setSecret(secretName, value, { contentType: 'text/plain', tags: upstreamKeyTags(current.kind) }))
          .version;
  const upstream: UpstreamSource = { endpoint, secretName };
  const recordChanged = current.upstream?.endpoint !== endpoint || current.upstream?.secretName !== secretName;
  const record = { ...current, upstream } as KeyedCredential;
  if (recordChanged) await writeCredentialRecord(store, ref, record);
  return { record: recordChanged ? record : current, upstream, keyVersion, recordChanged };
}

export interface UpstreamClearing {
  readonly record: KeyedCredential;
  /** False when the credential was not in upstream mode. */
  readonly changed: boolean;
  /** The upstream it used. */
  readonly previous?: UpstreamSource | undefined;
  /** Versions of the real-key secret disabled (only with `disableKey`). */
  readonly disabledKeyVersions: number;
}

/**
 * Puts a credential back to minting locally: rewrites the record without `upstream`, then, with
 * `disableKey`, disables every version of the real-key secret it named (leave it off when other
 * credentials share that secret). A name of the credential layout is never disabled.
 *
 * @example
 * await clearCredentialUpstream(store, { kind: 'mixedRealityAccount', accountId }, { disableKey: true });
 */
export async function clearCredentialUpstream(
  store: WritableSecretStore,
  ref: CredentialRef,
  options: { readonly disableKey?: boolean } = {},
): Promise<UpstreamClearing> {
  const current = await readCredential(store, ref);
  const previous = current.upstream;
  if (!previous) return { record: current, changed: false, disabledKeyVersions: 0 };
  const { upstream: _dropped, ...local } = current;
  const record = local as KeyedCredential;
  await writeCredentialRecord(store, ref, record);
  let disabledKeyVersions = 0;
  if (options.disableKey && isUpstreamSecretName(previous.secretName, current.kind)) {
    for (const version of await store.getSecretVersions(previous.secretName)) {
      if (!version.enabled) continue;
      await store.updateSecretVersion(previous.secretName, version.version, { enabled: false });
      disabledKeyVersions += 1;
    }
  }
  return { record, changed: true, previous, disabledKeyVersions };
}

/**
 * The endpoint as stored: a documented host of the credential's service (docs/upstream.md#hosts), parsed once
 * with the WHATWG URL parser, https, no user info, port, IP literal, backslash, query or fragment, trailing `/`
 * removed. A URL that already names the token operation is refused with a hint, since the fetchers append it.
 */
export function normalizeUpstreamEndpoint(
  kind: KeyedCredential['kind'],
  endpoint: string,
  hostPolicy: UpstreamHostPolicy = azureHostPolicy,
): string {
  const { tokenPath, example } = credentialKindOf(kind).upstreamEndpoint;
  const trimmed = endpoint.trim();
  if (/^[^?#]*$/.test(trimmed)) {
    try {
      const path = new URL(trimmed).pathname.replace(/\/+$/, '');
      if (tokenPath.test(path)) {
        throw new ProvisioningError(
          `Upstream endpoint must be the base URL of the real STS (e.g. ${example}), without the token path`,
        );
      }
    } catch (error) {
      if (error instanceof ProvisioningError) throw error;
    }
  }
  let url: URL;
  try {
    url = checkUpstreamEndpoint(upstreamServiceOf(kind), trimmed, hostPolicy);
  } catch (error) {
    if (error instanceof UpstreamError)
      throw new ProvisioningError(`Upstream ${error.message.replace(/^upstream /, '')} (e.g. ${example})`);
    throw error;
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** The secret value for `kind`, validated; messages never quote the key. */
function upstreamSecretValue(
  kind: KeyedCredential['kind'],
  secretName: string,
  key: string,
  upstreamAccountId: string | undefined,
): string {
  const text = key.trim();
  if (text.length === 0 || text.length > MAX_KEY_LENGTH)
    throw new ProvisioningError(`The real key must be 1-${MAX_KEY_LENGTH} characters`);
  try {
    if (kind === 'mixedRealityAccount') {
      if (upstreamAccountId !== undefined && !GUID_PATTERN.test(upstreamAccountId)) {
        throw new ProvisioningError(`Upstream account id must be a GUID (got "${upstreamAccountId.slice(0, 64)}")`);
      }
      const value = upstreamAccountId === undefined ? text : `${upstreamAccountId.toLowerCase()}:${text}`;
      const parsed = parseMixedRealitySecret(secretName, value);
      return `${parsed.accountId}:${parsed.accountKey}`;
    }
    if (upstreamAccountId !== undefined)
      throw new ProvisioningError('An upstream account id applies to Mixed Reality accounts only');
    return parseKeySecret(secretName, text);
  } catch (error) {
    if (error instanceof UpstreamError) {
      throw new ProvisioningError(
        kind === 'mixedRealityAccount'
          ? 'The real Mixed Reality credential must be the account key with an upstream account id, or "accountId:accountKey"'
          : 'The real key must be one word of printable ASCII (no spaces)',
      );
    }
    throw error;
  }
}

/** A new version of the credential's record (the layout's name and tags, as provisioning writes them). */
async function writeCredentialRecord(
  store: WritableSecretStore,
  ref: CredentialRef,
  record: KeyedCredential,
): Promise<void> {
  const kind = credentialKindOf(ref.kind);
  // A failure here leaves the record as it was (the credential keeps its previous source): no half state.
  await store.setSecret(kind.secretName(ref), JSON.stringify(record), {
    contentType: 'application/json',
    tags: { ...kind.tags(record) },
  });
}
