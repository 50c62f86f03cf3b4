import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createCognitiveResource,
  createMixedRealityAccount,
  createWrapIssuer,
  ensureSigningKey,
} from '../../tools/sts/credentials/provisioning.js';
import {
  parseRecord,
  type CognitiveResource,
  type MixedRealityAccount,
  type WrapIssuer,
  type WrapNamespace,
} from '../../shared/credentials/records.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';

/**
 * A temp file secret store holding one credential of every kind a flow test needs, created with the same
 * provisioning code as the admin CLI. Keys are random per call; the records (with their keys) are returned
 * so tests can present them.
 */
export interface TestCredentials {
  /** The temp directory; removed by {@link TestCredentials.remove}. */
  readonly directory: string;
  /** Pass as `STS_LOCAL_STORE_PATH`. */
  readonly storePath: string;
  readonly store: FileSecretStore;
  readonly mixedReality: {
    /** Enabled, domain `eastus2.mixedreality.azure.com`, with an ARM resource id. */
    readonly account: MixedRealityAccount;
    /** Same shape, disabled (its keys are refused). */
    readonly disabled: MixedRealityAccount;
  };
  readonly cognitive: {
    /** `SpeechServices` in `eastus`; no ISV features. */
    readonly speech: CognitiveResource;
    /** `Face` in `westus`, an ISV: limited access tokens on, may grant `Face.Identification` and `Face.Verification`. */
    readonly isvFace: CognitiveResource;
    /** `TextTranslation`, disabled. */
    readonly disabled: CognitiveResource;
  };
  readonly wrap: {
    /** Namespace `contoso`, issuer `owner`: every right, scope `http://contoso.servicebus.windows.net/`. */
    readonly owner: WrapIssuer;
    /** Namespace `contoso`, issuer `orders-listener`: `Listen` only, scope prefix `http://contoso.servicebus.windows.net/orders`. */
    readonly listener: WrapIssuer;
    /** Namespace `contoso`, issuer `retired`, disabled. */
    readonly disabled: WrapIssuer;
    /** The namespace record of `contoso`, with its SWT signing key. */
    readonly namespace: WrapNamespace;
  };
  remove(): Promise<void>;
}

export interface TestCredentialOptions {
  /** The store's clock (creation times of secrets, signing key included). Default: the real clock. */
  readonly clock?: () => Date;
}

/**
 * Creates {@link TestCredentials} in a new temp directory, with an ES256 signing key.
 *
 * @example
 * const credentials = await createTestCredentials({ clock: () => frozenNow });
 * const config = loadConfig({ STS_LEDGER_MODE: 'off', STS_LOCAL_STORE_PATH: credentials.storePath });
 * afterAll(() => credentials.remove());
 */
export async function createTestCredentials(options: TestCredentialOptions = {}): Promise<TestCredentials> {
  const directory = await mkdtemp(join(tmpdir(), 'sts-credentials-'));
  const storePath = join(directory, 'secrets.json');
  const store = new FileSecretStore(storePath, options.clock);
  await ensureSigningKey(store);

  const account = await createMixedRealityAccount(store, {
    accountDomain: 'eastus2.mixedreality.azure.com',
    resourceId:
      '/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/sts-tests/providers/Microsoft.MixedReality/RemoteRenderingAccounts/render-test',
  });
  const disabledAccount = await disable(
    store,
    vaultLayout.mixedRealityAccount(
      (await createMixedRealityAccount(store, { accountDomain: 'westeurope.mixedreality.azure.com' })).accountId,
    ),
    'mixedRealityAccount',
  );

  const speech = await createCognitiveResource(store, {
    name: 'speech-test',
    region: 'eastus',
    resourceKind: 'SpeechServices',
    subscriptionId: '6F65A4C2-1B2D-4E3F-8A9B-0C1D2E3F4A5B',
    resourceGroup: 'sts-tests',
  });
  const isvFace = await createCognitiveResource(store, {
    name: 'isv-face',
    region: 'westus',
    resourceKind: 'Face',
    subscriptionId: 'f55b33ec-371d-415c-89d3-9e3fd27c7dbd',
    resourceGroup: 'isv-group',
    limitedAccessTokens: true,
    grantableFeatureFlags: ['Face.Identification', 'Face.Verification'],
  });
  const disabledCognitive = await disable(
    store,
    vaultLayout.cognitiveResource(
      (
        await createCognitiveResource(store, {
          name: 'translator-retired',
          region: 'global',
          resourceKind: 'TextTranslation',
        })
      ).name,
    ),
    'cognitiveResource',
  );

  const owner = await createWrapIssuer(store, { namespace: 'contoso', name: 'owner' });
  const listener = await createWrapIssuer(store, {
    namespace: 'contoso',
    name: 'orders-listener',
    scopes: ['http://contoso.servicebus.windows.net/orders'],
    rights: ['Listen'],
  });
  const disabledIssuer = await disable(
    store,
    vaultLayout.wrapIssuer('contoso', (await createWrapIssuer(store, { namespace: 'contoso', name: 'retired' })).name),
    'wrapIssuer',
  );
  const namespace = parseRecord(
    (await store.getSecret(vaultLayout.wrapNamespace('contoso')))?.value ?? '',
    'wrapNamespace',
  );
  if (!namespace) throw new Error('the contoso namespace record was not written');

  return {
    directory,
    storePath,
    store,
    mixedReality: { account, disabled: disabledAccount },
    cognitive: { speech, isvFace, disabled: disabledCognitive },
    wrap: { owner, listener, disabled: disabledIssuer, namespace },
    remove: () => rm(directory, { recursive: true, force: true }),
  };
}

/** Rewrites a stored record with `enabled: false` (a new secret version) and returns it. */
async function disable<K extends 'mixedRealityAccount' | 'cognitiveResource' | 'wrapIssuer'>(
  store: FileSecretStore,
  secretName: string,
  kind: K,
) {
  const record = parseRecord((await store.getSecret(secretName))?.value ?? '', kind);
  if (!record) throw new Error(`${secretName} was not written`);
  const disabled = { ...record, enabled: false };
  await store.setSecret(secretName, JSON.stringify(disabled), { contentType: 'application/json' });
  return disabled;
}
