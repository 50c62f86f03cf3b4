import { randomUUID } from 'node:crypto';
import { link, mkdir, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { StsConfig } from '../shared/config.js';
import {
  createCognitiveResource,
  createMixedRealityAccount,
  createWrapIssuer,
  ensureSigningKey,
} from './sts/credentials/provisioning.js';
import { FileSecretStore } from '../shared/secrets/fileSecretStore.js';

/**
 * The demo bootstrap of `npm start`: on the first local start (no embedded store file, no Key Vault) it creates
 * one credential for every flow with the same provisioning code as the admin CLI, so each flow can be called
 * right away. The keys are shown once, in the curl guide printed right after creation, and never logged.
 */

export interface DemoCredentials {
  /** The store file that now holds them. */
  readonly storePath: string;
  readonly mixedReality: { readonly accountId: string; readonly accountKey: string };
  /** Allowed to issue limited access tokens with `Face.Identification` and `Face.Verification` (the ISV). */
  readonly isvFace: { readonly name: string; readonly key: string };
  /** A plain `SpeechServices` resource: issueToken only, the target of the demo limited access token. */
  readonly speech: { readonly name: string; readonly key: string; readonly resourceId: string };
  readonly wrap: { readonly name: string; readonly key: string; readonly scope: string };
}

export type DemoBootstrap =
  | { readonly outcome: 'created'; readonly credentials: DemoCredentials }
  | { readonly outcome: 'store exists'; readonly storePath: string }
  | { readonly outcome: 'key vault' };

const WRAP_NAMESPACE = 'demo';
const WRAP_SCOPE = `http://${WRAP_NAMESPACE}.servicebus.windows.net/`;

/**
 * Creates the demo credentials unless secrets come from Key Vault or the embedded store file already exists.
 * The store is written under a temporary name and linked into place only when complete, so an interrupted
 * first start leaves no half-filled store, and two concurrent first starts create it once.
 *
 * @example
 * const result = await ensureDemoCredentials(loadConfig(process.env));
 * if (result.outcome === 'created') console.log(demoCurlGuide(result.credentials, { baseUrl: 'http://127.0.0.1:7071' }));
 */
export async function ensureDemoCredentials(config: StsConfig): Promise<DemoBootstrap> {
  if (config.secretStore.kind === 'keyVault') return { outcome: 'key vault' };
  const storePath = resolve(config.secretStore.path);
  if (await new FileSecretStore(storePath).exists()) return { outcome: 'store exists', storePath };

  await mkdir(dirname(storePath), { recursive: true, mode: 0o700 });
  const stagingPath = `${storePath}.demo-${process.pid}-${randomUUID()}.tmp`;
  try {
    const store = new FileSecretStore(stagingPath);
    await ensureSigningKey(store);
    const account = await createMixedRealityAccount(store, { accountDomain: 'eastus2.mixedreality.azure.com' });
    const isvFace = await createCognitiveResource(store, {
      name: 'demo-face-isv',
      region: 'westus',
      resourceKind: 'Face',
      resourceGroup: 'sts-demo',
      limitedAccessTokens: true,
      grantableFeatureFlags: ['Face.Identification', 'Face.Verification'],
    });
    const speech = await createCognitiveResource(store, {
      name: 'demo-speech',
      region: 'eastus',
      resourceKind: 'SpeechServices',
      resourceGroup: 'sts-demo',
    });
    const owner = await createWrapIssuer(store, { namespace: WRAP_NAMESPACE, name: 'owner', scopes: [WRAP_SCOPE] });
    try {
      await link(stagingPath, storePath); // fails if another start created the store meanwhile: keep theirs
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return { outcome: 'store exists', storePath };
      throw error;
    }
    return {
      outcome: 'created',
      credentials: {
        storePath,
        mixedReality: { accountId: account.accountId, accountKey: account.keys[0] },
        isvFace: { name: isvFace.name, key: isvFace.keys[0] },
        speech: { name: speech.name, key: speech.keys[0], resourceId: speech.resourceId },
        wrap: { name: owner.name, key: owner.keys[0], scope: WRAP_SCOPE },
      },
    };
  } finally {
    await rm(stagingPath, { force: true });
  }
}

export interface CurlGuideOptions {
  /** Where the app listens, e.g. `http://127.0.0.1:7071`. */
  readonly baseUrl: string;
  /** Extra curl options for TLS, e.g. `--cacert .sts/tls/cert.pem`. */
  readonly tlsOption?: string;
}

/**
 * The one-time guide: a curl line per flow with the real demo keys (docs/contracts/mixed-reality-sts.md#request, docs/contracts/cognitive-issue-token.md#request, docs/contracts/cognitive-limited-access-token.md#response, docs/contracts/acs-wrap.md#request).
 * Print it once, right after creation; it is the only place the keys are shown.
 */
export function demoCurlGuide(credentials: DemoCredentials, options: CurlGuideOptions): string {
  const base = options.baseUrl.replace(/\/$/, '');
  const curl = options.tlsOption ? `curl ${options.tlsOption}` : 'curl';
  const { mixedReality: mr, isvFace, speech, wrap } = credentials;
  const latBody = JSON.stringify({ targetAzureResourceId: speech.resourceId, featureFlags: ['Face.Identification'] });
  return [
    `Demo credentials created in ${credentials.storePath}.`,
    'Their keys are shown now and never again (delete the file to start over, or use `npm run sts` to manage them):',
    '',
    `# Mixed Reality STS (account ${mr.accountId})`,
    `${curl} ${base}/accounts/${mr.accountId}/token -H "Authorization: Bearer ${mr.accountId}:${mr.accountKey}"`,
    '',
    `# Cognitive Services issueToken (resource ${speech.name})`,
    `${curl} -X POST ${base}/sts/v1.0/issueToken -H "Ocp-Apim-Subscription-Key: ${speech.key}" -H "Content-Length: 0"`,
    '',
    `# Cognitive Services issueLimitedAccessToken (ISV resource ${isvFace.name}, granting Face.Identification on ${speech.name})`,
    `${curl} -X POST "${base}/sts/v1.0/issueLimitedAccessToken?expiredTime=3600" -H "Content-Type: application/json" -H "Ocp-Apim-Subscription-Key: ${isvFace.key}" -d '${latBody}'`,
    '',
    `# ACS OAuth WRAP v0.9 (issuer ${wrap.name}, scope ${wrap.scope})`,
    `${curl} ${base}/WRAPv0.9/ --data-urlencode wrap_name=${wrap.name} --data-urlencode wrap_password=${wrap.key} --data-urlencode wrap_scope=${wrap.scope}`,
    '',
  ].join('\n');
}
