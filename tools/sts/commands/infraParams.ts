import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import {
  createCognitiveResource,
  createMixedRealityAccount,
  createWrapIssuer,
  ensureSigningKey,
} from '../credentials/provisioning.js';
import type { CognitiveResource, MixedRealityAccount, WrapIssuer } from '../../../shared/credentials/records.js';
import { GUID_PATTERN, vaultLayout } from '../../../shared/credentials/vaultLayout.js';
import {
  isUsable,
  SECRET_NAME_PATTERN,
  type SecretVersion,
  type SetSecretOptions,
  type WritableSecretStore,
} from '../../../shared/secrets/secretStore.js';
import type { SigningAlgorithm } from '../../../shared/tokens/signingKeyMaterial.js';
import { UsageError, type StsCommand } from '../command.js';

/**
 * `npm run sts -- infra-params`: the secret half of a first deployment. Bicep cannot make key pairs, so this
 * writes a git-ignored `.bicepparam` file that extends the committed `infra/main.bicepparam` with a freshly
 * generated JWT signing key and, optionally, demo credentials, all built by the same provisioning code the
 * admin CLI uses against a live store (records, secret names, write order).
 */

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const INFRA_DIR = join(REPO_ROOT, 'infra');
const SECRETS_SUFFIX = '.secrets.bicepparam';
const DEFAULT_OUT = join(INFRA_DIR, `main${SECRETS_SUFFIX}`);

/** azd environment values the `--azd` hooks keep (see azure.yaml). */
export const AZD_SIGNING_KEY_VARIABLE = 'STS_SIGNING_KEY_JWK';
export const AZD_SIGNING_KEY_DEPLOYED_VARIABLE = 'STS_SIGNING_KEY_DEPLOYED';

/** One secret as `infra/modules/keyVault.bicep` takes it (type `vaultSecret`). */
export interface VaultSecretParam {
  readonly name: string;
  readonly value: string;
  readonly contentType?: string | undefined;
  readonly tags?: Readonly<Record<string, string>> | undefined;
}

/** What the demo credentials are, for the operator's terminal (the keys are in the file too). */
export interface DemoCredentials {
  readonly mixedRealityAccount: MixedRealityAccount;
  readonly cognitiveResource: CognitiveResource;
  readonly wrapIssuer: WrapIssuer;
}

export interface InfraSecrets {
  /** Private JWK (JSON) for `sts-signing-key`. */
  readonly signingKeyJwk: string;
  /** Credential records in the order provisioning wrote them (index entries before their records). */
  readonly secrets: readonly VaultSecretParam[];
  readonly demo: DemoCredentials | undefined;
}

export interface DemoOptions {
  readonly mixedRealityAccountDomain: string;
  readonly cognitiveRegion: string;
  readonly wrapNamespace: string;
}

/**
 * A {@link WritableSecretStore} that only remembers what is written, in order. Running the real provisioning
 * functions against it yields exactly the secrets they would create in Key Vault, without a vault.
 */
export class CollectingSecretStore implements WritableSecretStore {
  private readonly versions = new Map<string, SecretVersion[]>();
  /** Every setSecret call, oldest first. */
  readonly writes: SecretVersion[] = [];

  getSecret(name: string): Promise<SecretVersion | undefined> {
    const current = this.versions.get(name)?.[0];
    return Promise.resolve(current && isUsable(current, new Date()) ? current : undefined);
  }

  getFreshSecret(name: string): Promise<SecretVersion | undefined> {
    return this.getSecret(name);
  }

  getSecretVersions(name: string): Promise<readonly SecretVersion[]> {
    return Promise.resolve([...(this.versions.get(name) ?? [])]);
  }

  setSecret(name: string, value: string, options: SetSecretOptions = {}): Promise<SecretVersion> {
    if (!SECRET_NAME_PATTERN.test(name)) return Promise.reject(new Error(`Invalid secret name "${name}"`));
    const version: SecretVersion = {
      name,
      version: randomUUID().replaceAll('-', ''),
      value,
      enabled: options.enabled ?? true,
      createdOn: new Date(),
      notBefore: options.notBefore,
      expiresOn: options.expiresOn,
      contentType: options.contentType,
      tags: options.tags,
    };
    this.versions.set(name, [version, ...(this.versions.get(name) ?? [])]);
    this.writes.push(version);
    return Promise.resolve(version);
  }

  updateSecretVersion(name: string, version: string, patch: { readonly enabled: boolean }): Promise<void> {
    const list = this.versions.get(name) ?? [];
    const index = list.findIndex((v) => v.version === version);
    const found = list[index];
    if (!found) return Promise.reject(new Error(`No version ${version} of "${name}"`));
    list[index] = { ...found, enabled: patch.enabled };
    return Promise.resolve();
  }

  listSecretNames(): Promise<readonly string[]> {
    return Promise.resolve([...this.versions.keys()]);
  }
}

/**
 * Generates the initial secrets of a deployment: a new signing key and, with `demo`, one credential per
 * flow (Mixed Reality account, Cognitive Services resource allowed to issue limited access tokens, WRAP
 * issuer with its namespace key), through shared/credentials/provisioning.ts.
 *
 * @example
 * const { signingKeyJwk, secrets } = await generateInfraSecrets({ alg: 'ES256' });
 */
export async function generateInfraSecrets(options: {
  readonly alg?: SigningAlgorithm;
  readonly demo?: DemoOptions | undefined;
}): Promise<InfraSecrets> {
  const store = new CollectingSecretStore();
  await ensureSigningKey(store, options.alg ?? 'ES256');
  let demo: DemoCredentials | undefined;
  if (options.demo) {
    const mixedRealityAccount = await createMixedRealityAccount(store, {
      accountDomain: options.demo.mixedRealityAccountDomain,
    });
    const cognitiveResource = await createCognitiveResource(store, {
      name: 'demo-speech',
      region: options.demo.cognitiveRegion,
      resourceKind: 'SpeechServices',
      limitedAccessTokens: true,
      grantableFeatureFlags: ['Face.Identification'],
    });
    const wrapIssuer = await createWrapIssuer(store, { namespace: options.demo.wrapNamespace, name: 'owner' });
    demo = { mixedRealityAccount, cognitiveResource, wrapIssuer };
  }
  const signingKey = store.writes.find((w) => w.name === vaultLayout.signingKey);
  if (!signingKey) throw new Error('Provisioning wrote no signing key');
  const secrets = store.writes
    .filter((w) => w.name !== vaultLayout.signingKey)
    .map((w) => ({ name: w.name, value: w.value, contentType: w.contentType, tags: w.tags }));
  return { signingKeyJwk: signingKey.value, secrets, demo };
}

/**
 * A Bicep single-quoted string literal for any text: escapes `\`, `'`, `$` (interpolation) and control
 * characters, so a key or JSON record is reproduced exactly.
 */
export function bicepString(text: string): string {
  let out = "'";
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\') out += '\\\\';
    else if (ch === "'") out += "\\'";
    else if (ch === '$') out += '\\$';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\u{${code.toString(16)}}`;
    else out += ch;
  }
  return `${out}'`;
}

/** An object property name: bare when it is an identifier (as Bicep's linter prefers), quoted otherwise. */
function bicepPropertyName(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : bicepString(name);
}

/** How to name `file` to the operator: relative to the repository when inside it, absolute otherwise. */
function displayPath(file: string): string {
  const fromRoot = relative(REPO_ROOT, file);
  return fromRoot.startsWith('..') || isAbsolute(fromRoot) ? file : fromRoot;
}

/** Path from `fromDir` to `target` as a Bicep `using`/`extends` path: forward slashes, starting with `.`. */
function bicepRelativePath(fromDir: string, target: string): string {
  const path = relative(fromDir, target).split(sep).join('/');
  return path.startsWith('.') ? path : `./${path}`;
}

/** Renders the parameters file; `outFile` decides the relative `using` and `extends` paths. */
export function renderSecretsParamFile(
  secrets: InfraSecrets,
  outFile: string,
  extra: { readonly deployerPrincipalId?: string | undefined; readonly generatedAt: Date },
): string {
  const outDir = dirname(resolve(outFile));
  const lines = [
    `// Generated by \`npm run sts -- infra-params\` at ${extra.generatedAt.toISOString()}.`,
    '// PRIVATE KEYS: never commit this file (infra/*.secrets.bicepparam is git-ignored). Deploy it once:',
    `//   az deployment group create -g <resource-group> -f infra/main.bicep -p ${displayPath(resolve(outFile))}`,
    "// then delete it; later deployments use infra/main.bicepparam and leave the vault's secrets as they are.",
    '// Deploying it again writes the same values as new secret versions (harmless); a newly generated file',
    '// brings a new signing key, which the key ring publishes and then signs with (a rotation).',
    `using ${bicepString(bicepRelativePath(outDir, join(INFRA_DIR, 'main.bicep')))}`,
    `extends ${bicepString(bicepRelativePath(outDir, join(INFRA_DIR, 'main.bicepparam')))}`,
    '',
    `param signingKeyJwk = ${bicepString(secrets.signingKeyJwk)}`,
  ];
  if (extra.deployerPrincipalId)
    lines.push('', `param deployerPrincipalId = ${bicepString(extra.deployerPrincipalId)}`);
  if (secrets.secrets.length > 0) {
    lines.push('', 'param initialSecrets = {', '  secrets: [');
    for (const secret of secrets.secrets) {
      lines.push('    {', `      name: ${bicepString(secret.name)}`, `      value: ${bicepString(secret.value)}`);
      if (secret.contentType) lines.push(`      contentType: ${bicepString(secret.contentType)}`);
      const tags = Object.entries(secret.tags ?? {});
      if (tags.length > 0) {
        lines.push('      tags: {');
        for (const [key, value] of tags) lines.push(`        ${bicepPropertyName(key)}: ${bicepString(value)}`);
        lines.push('      }');
      }
      lines.push('    }');
    }
    lines.push('  ]', '}');
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Refuses an output file that git could pick up: it must be named `*.secrets.bicepparam` and, inside this
 * repository, sit directly in `infra/` (where .gitignore covers that pattern).
 */
function checkOutputPath(outFile: string): void {
  if (!basename(outFile).endsWith(SECRETS_SUFFIX) || basename(outFile) === SECRETS_SUFFIX) {
    throw new UsageError(`--out must name a *${SECRETS_SUFFIX} file (got "${outFile}")`);
  }
  const fromRoot = relative(REPO_ROOT, outFile);
  const insideRepo = fromRoot !== '' && !fromRoot.startsWith('..') && !isAbsolute(fromRoot);
  if (insideRepo && dirname(outFile) !== INFRA_DIR) {
    throw new UsageError(`Inside the repository the file must be in infra/ (git-ignored there); got "${fromRoot}"`);
  }
}

const execFileAsync = promisify(execFile);

/** Runs `azd env ...`; resolves to stdout, or undefined when azd says the value is not set. */
async function azdEnv(args: readonly string[], { allowFailure = false } = {}): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync('azd', ['env', ...args], { timeout: 60_000, windowsHide: true });
    return stdout.trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('The Azure Developer CLI (azd) is not on PATH; --azd is meant for azure.yaml hooks', {
        cause: error,
      });
    }
    if (allowFailure) return undefined;
    throw new Error(`azd env ${args[0] ?? ''} failed`, { cause: error });
  }
}

/**
 * The azd path (azure.yaml hooks): `preprovision` puts a new signing key into the azd environment once, for
 * infra/main.bicepparam to read; `postprovision` removes it once deployed, so the private key does not stay
 * in .azure/<env>/.env and later provisions do not rewrite it.
 */
async function runAzdHook(stage: string, alg: SigningAlgorithm): Promise<number> {
  if (stage === 'preprovision') {
    if ((await azdEnv(['get-value', AZD_SIGNING_KEY_DEPLOYED_VARIABLE], { allowFailure: true })) === 'true') {
      console.log('Signing key already in Key Vault; nothing to generate (rotate keys with the admin CLI).');
      return 0;
    }
    if (await azdEnv(['get-value', AZD_SIGNING_KEY_VARIABLE], { allowFailure: true })) {
      console.log('Signing key already generated for this azd environment; it will be deployed.');
      return 0;
    }
    const { signingKeyJwk } = await generateInfraSecrets({ alg });
    await azdEnv(['set', AZD_SIGNING_KEY_VARIABLE, signingKeyJwk]);
    console.log(`Generated a new ${alg} signing key for this azd environment; provisioning stores it in Key Vault.`);
    return 0;
  }
  if (stage === 'postprovision') {
    await azdEnv(['set', AZD_SIGNING_KEY_VARIABLE, '']);
    await azdEnv(['set', AZD_SIGNING_KEY_DEPLOYED_VARIABLE, 'true']);
    console.log('Signing key is in Key Vault; removed it from the azd environment.');
    return 0;
  }
  throw new UsageError(`--azd takes preprovision or postprovision (got "${stage}")`);
}

function describeDemo(demo: DemoCredentials): string {
  const mr = demo.mixedRealityAccount;
  const cs = demo.cognitiveResource;
  const wrap = demo.wrapIssuer;
  return [
    'Demo credentials (also in the file; shown once here):',
    `  Mixed Reality account   ${mr.accountId}  (${mr.accountDomain})`,
    `    Authorization: Bearer ${mr.accountId}:${mr.keys[0]}`,
    `  Cognitive resource      ${cs.name}  (${cs.region}, ${cs.resourceKind}, limited access tokens: ${cs.grantableFeatureFlags.join(', ')})`,
    `    Ocp-Apim-Subscription-Key: ${cs.keys[0]}`,
    `  WRAP issuer             ${wrap.name} in namespace ${wrap.namespace}  (scope ${wrap.scopes.join(', ')})`,
    `    wrap_name=${wrap.name}  wrap_password=${wrap.keys[0]}`,
  ].join('\n');
}

const usage = `Usage: npm run sts -- infra-params [options]

Writes a git-ignored Bicep parameters file for a first deployment: it extends infra/main.bicepparam with a
new JWT signing key (secret sts-signing-key) and, with --with-demo-credentials, one credential per flow.
Then:  az deployment group create -g <resource-group> -f infra/main.bicep -p infra/main.secrets.bicepparam

Options:
  --out <file>                    Where to write (default infra/main.secrets.bicepparam). Must be named
                                  *.secrets.bicepparam; inside the repository it must be in infra/.
  --with-demo-credentials         Add a Mixed Reality account, a Cognitive Services resource (demo-speech)
                                  and a WRAP issuer (owner); their keys are printed once.
  --mr-account-domain <domain>    Demo account domain (default eastus2.mixedreality.azure.com).
  --cognitive-region <region>     Demo resource region (default eastus).
  --wrap-namespace <namespace>    Demo WRAP namespace (default contoso).
  --deployer-principal-id <guid>  Object id granted Key Vault Secrets Officer (az ad signed-in-user show --query id -o tsv).
  --alg <ES256|RS256>             Signing key algorithm (default ES256).
  --force                         Overwrite an existing file (its keys are lost: a new signing key is a rotation).
  --azd <preprovision|postprovision>
                                  For azure.yaml hooks: keep the signing key in the azd environment until it
                                  is deployed, instead of writing a file.`;

export const command: StsCommand = {
  name: 'infra-params',
  summary: 'Write a git-ignored .bicepparam with a new signing key (and demo credentials) for infra/main.bicep',
  usage,
  async run(args) {
    let values;
    try {
      ({ values } = parseArgs({
        args: [...args],
        strict: true,
        allowPositionals: false,
        options: {
          out: { type: 'string' },
          'with-demo-credentials': { type: 'boolean', default: false },
          'mr-account-domain': { type: 'string', default: 'eastus2.mixedreality.azure.com' },
          'cognitive-region': { type: 'string', default: 'eastus' },
          'wrap-namespace': { type: 'string', default: 'contoso' },
          'deployer-principal-id': { type: 'string' },
          alg: { type: 'string', default: 'ES256' },
          force: { type: 'boolean', default: false },
          azd: { type: 'string' },
        },
      }));
    } catch (error) {
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
    const alg = values.alg;
    if (alg !== 'ES256' && alg !== 'RS256') throw new UsageError(`--alg must be ES256 or RS256 (got "${alg}")`);
    if (values.azd !== undefined) {
      if (values.out !== undefined || values['with-demo-credentials']) {
        throw new UsageError('--azd writes no file: it cannot be combined with --out or --with-demo-credentials');
      }
      return runAzdHook(values.azd, alg);
    }

    const deployerPrincipalId = values['deployer-principal-id']?.toLowerCase();
    if (deployerPrincipalId !== undefined && !GUID_PATTERN.test(deployerPrincipalId)) {
      throw new UsageError(`--deployer-principal-id must be an object id (GUID), got "${deployerPrincipalId}"`);
    }
    const outFile = resolve(values.out ?? DEFAULT_OUT);
    checkOutputPath(outFile);

    const secrets = await generateInfraSecrets({
      alg,
      demo: values['with-demo-credentials']
        ? {
            mixedRealityAccountDomain: values['mr-account-domain'],
            cognitiveRegion: values['cognitive-region'],
            wrapNamespace: values['wrap-namespace'],
          }
        : undefined,
    });
    const text = renderSecretsParamFile(secrets, outFile, { deployerPrincipalId, generatedAt: new Date() });
    await mkdir(dirname(outFile), { recursive: true });
    try {
      await writeFile(outFile, text, { encoding: 'utf8', mode: 0o600, flag: values.force ? 'w' : 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new UsageError(
          `${outFile} exists; pass --force to replace it (its signing key and credentials are lost)`,
        );
      }
      throw error;
    }

    const shown = displayPath(outFile);
    console.log(
      `Wrote ${shown}: a new ${alg} signing key` +
        (secrets.secrets.length > 0 ? ` and ${secrets.secrets.length} credential secrets.` : '.'),
    );
    console.log(`Deploy it once:  az deployment group create -g <resource-group> -f infra/main.bicep -p ${shown}`);
    if (!deployerPrincipalId) {
      console.log(
        'No --deployer-principal-id: unless main.bicepparam sets one, nobody may run the admin CLI against the vault.',
      );
    }
    if (secrets.demo) console.log(describeDemo(secrets.demo));
    return 0;
  },
};
