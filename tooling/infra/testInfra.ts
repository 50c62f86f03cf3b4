/**
 * `npm run test:infra`: builds and lints infra/ with the real Bicep compiler and checks the deployment's
 * security invariants on the compiled ARM JSON (not on the Bicep source, so what is asserted is what Azure
 * Resource Manager would receive).
 *
 * The compiler is `bicep` from PATH when there is one; otherwise the pinned NuGet package
 * Azure.Bicep.CommandLine.<rid> is restored with `dotnet` into a cache under the OS temp folder (reused by
 * later runs). No compiler, no pass: the run fails with the reason. Nothing is written into the repository.
 *
 * The last line is `N passed, N failed`; the exit code is non-zero on any failure.
 */
import { execFile, type ExecFileException } from 'node:child_process';
import { access, chmod, constants, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateWorkflow } from '@action-validator/core';
import { parse as parseYaml } from 'yaml';
import { parseRecord, type CredentialRecord } from '../../shared/credentials/records.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { flowCatalogue, flowNames } from '../../shared/flowCatalogue.js';
import { HEALTH_TELEMETRY_FIELDS, HEALTH_TELEMETRY_PREFIX } from '../../shared/health/healthProbe.js';
import { SECRET_NAME_PATTERN } from '../../shared/secrets/secretStore.js';
import { AZD_SIGNING_KEY_DEPLOYED_VARIABLE } from '../../tools/sts/commands/infraParams.js';
import {
  REQUEST_OUTCOMES,
  REQUEST_TELEMETRY_FIELDS,
  REQUEST_TELEMETRY_PREFIX,
  UNAVAILABLE_REASONS,
} from '../../shared/telemetry/requestTelemetry.js';
import { parseSigningJwk } from '../../shared/tokens/signingKeyMaterial.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const INFRA = join(REPO_ROOT, 'infra');
const BICEP_VERSION = '0.49.2';

/** Built-in role definition ids, checked against the Azure built-in roles reference. */
const ROLES = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
} as const;

/** Which resource type each role may be scoped to (never the resource group or subscription). */
const ROLE_SCOPES: Record<string, string> = {
  [ROLES.keyVaultSecretsUser]: 'Microsoft.KeyVault/vaults',
  [ROLES.keyVaultSecretsOfficer]: 'Microsoft.KeyVault/vaults',
  [ROLES.storageBlobDataOwner]: 'Microsoft.Storage/storageAccounts',
  [ROLES.storageTableDataContributor]: 'Microsoft.Storage/storageAccounts',
  // The account: the ledger's tables are one per hour, created and dropped by the app.
  [ROLES.storageTableDataReader]: 'Microsoft.Storage/storageAccounts',
  [ROLES.monitoringMetricsPublisher]: 'Microsoft.Insights/components',
};

/** Exactly the app settings the template must set: each is read by shared/config.ts or the Functions host. */
const EXPECTED_APP_SETTINGS = [
  'AzureWebJobsStorage__accountName',
  'AzureWebJobsStorage__credential',
  'AzureWebJobsStorage__clientId',
  'AzureWebJobsDisableHomepage',
  'APPLICATIONINSIGHTS_CONNECTION_STRING',
  'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
  'AZURE_CLIENT_ID',
  'KEY_VAULT_URL',
  'STS_ISSUER',
  'STS_AUDIENCE_MIXED_REALITY',
  'STS_AUDIENCE_COGNITIVE',
  'STS_WRAP_ISSUER',
  'STS_ENTRA_AUTHORITY',
  'STS_ENTRA_AUDIENCE',
  'STS_CORS_ALLOWED_ORIGINS',
  'STS_LEDGER_MODE',
  'STS_LEDGER_TABLE',
  'STS_LEDGER_TABLE_URL',
  'STS_LEDGER_RETENTION_HOURS',
  'STS_LEDGER_CLIENT_ADDRESS',
];

/** Settings that must never be in Azure: key-based storage, the local file store, Flex-incompatible ones. */
const FORBIDDEN_APP_SETTINGS = [
  'AzureWebJobsStorage',
  'STS_LEDGER_CONNECTION_STRING',
  'STS_LOCAL_STORE_PATH',
  'FUNCTIONS_WORKER_RUNTIME',
  'FUNCTIONS_EXTENSION_VERSION',
  'WEBSITE_RUN_FROM_PACKAGE',
  'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
];

/**
 * The regions with Flex Consumption, as the official Flex quickstart templates list them
 * (https://github.com/Azure-Samples/functions-quickstart-typescript-azd/blob/main/infra/main.bicep).
 */
const FLEX_CONSUMPTION_REGIONS = [
  'australiaeast',
  'australiasoutheast',
  'brazilsouth',
  'canadacentral',
  'centralindia',
  'centralus',
  'eastasia',
  'eastus',
  'eastus2',
  'francecentral',
  'germanywestcentral',
  'italynorth',
  'japaneast',
  'koreacentral',
  'northcentralus',
  'northeurope',
  'norwayeast',
  'southafricanorth',
  'southcentralus',
  'southeastasia',
  'southindia',
  'spaincentral',
  'swedencentral',
  'uaenorth',
  'uksouth',
  'ukwest',
  'westcentralus',
  'westeurope',
  'westus',
  'westus2',
  'westus3',
];

const EXPECTED_OUTPUTS = [
  'FUNCTION_APP_NAME',
  'FUNCTION_APP_HOST_NAME',
  'STS_ISSUER',
  'KEY_VAULT_URL',
  'APP_IDENTITY_CLIENT_ID',
  'STS_LEDGER_TABLE_URL',
  'STS_LEDGER_TABLE',
  'MIXED_REALITY_STS_URL',
  'COGNITIVE_ISSUE_TOKEN_URL',
  'COGNITIVE_LIMITED_ACCESS_URL',
  'WRAP_URL',
  'OPENID_CONFIGURATION_URL',
  'JWKS_URL',
  'HEALTH_URL',
  'OPERATIONS_WORKBOOK_ID',
];

// ---------------------------------------------------------------------------------------------------------
// Results

let passed = 0;
let failed = 0;

function check(name: string, ok: boolean, detail = ''): boolean {
  if (ok) {
    passed += 1;
    console.log(`  ok    ${name}`);
  } else {
    failed += 1;
    console.log(`  FAIL  ${name}${detail ? `: ${detail}` : ''}`);
  }
  return ok;
}

function section(title: string): void {
  console.log(`\n${title}`);
}

// ---------------------------------------------------------------------------------------------------------
// Processes

interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(
  file: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    execFile(
      file,
      [...args],
      { cwd: options.cwd ?? REPO_ROOT, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: 600_000 },
      (error: ExecFileException | null, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolvePromise({
          code,
          stdout: String(stdout),
          stderr: error && code === -1 ? `${stderr}${error.message}` : String(stderr),
        });
      },
    );
  });
}

/** Linter and compiler diagnostics (`path(line,col) : Warning|Error rule: message`). */
function diagnostics(output: string): string[] {
  return output.split(/\r?\n/).filter((line) => / : (Warning|Error) /.test(line));
}

// ---------------------------------------------------------------------------------------------------------
// The compiler

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function nugetRid(): string | undefined {
  const os = platform();
  const cpu = arch();
  if (os === 'linux' && (cpu === 'x64' || cpu === 'arm64')) return `linux-${cpu}`;
  if (os === 'darwin' && (cpu === 'x64' || cpu === 'arm64')) return `osx-${cpu}`;
  if (os === 'win32' && (cpu === 'x64' || cpu === 'arm64')) return `win-${cpu}`;
  return undefined;
}

/**
 * Restores Azure.Bicep.CommandLine.<rid> with `dotnet restore` of a throwaway project (PackageDownload) into
 * <tmp>/sts-bicep-cli/<version>/<rid>. Restores into a fresh folder and renames it into place, so a run
 * that is interrupted, or two runs at once, never leave a half-restored cache behind.
 */
async function restoreBicep(rid: string): Promise<string> {
  const cacheRoot = join(tmpdir(), 'sts-bicep-cli', BICEP_VERSION, rid);
  const packageId = `Azure.Bicep.CommandLine.${rid}`;
  const binary = (root: string) =>
    join(
      root,
      'packages',
      packageId.toLowerCase(),
      BICEP_VERSION,
      'tools',
      rid.startsWith('win') ? 'bicep.exe' : 'bicep',
    );
  if (await isExecutable(binary(cacheRoot))) return binary(cacheRoot);

  const dotnetVersion = await run('dotnet', ['--version'], { cwd: tmpdir() });
  if (dotnetVersion.code !== 0) {
    throw new Error('no `bicep` on PATH and no `dotnet` to restore it from NuGet (install one of them)');
  }
  const major = /^(\d+)\./.exec(dotnetVersion.stdout.trim())?.[1];
  if (!major) throw new Error(`cannot read the dotnet SDK version ("${dotnetVersion.stdout.trim()}")`);

  await mkdir(dirname(cacheRoot), { recursive: true });
  const staging = await mkdtemp(`${cacheRoot}.restore-`);
  try {
    const project = join(staging, 'restore.csproj');
    await writeFile(
      project,
      [
        '<Project Sdk="Microsoft.NET.Sdk">',
        `  <PropertyGroup><TargetFramework>net${major}.0</TargetFramework></PropertyGroup>`,
        `  <ItemGroup><PackageDownload Include="${packageId}" Version="[${BICEP_VERSION}]" /></ItemGroup>`,
        '</Project>',
        '',
      ].join('\n'),
    );
    console.log(
      `  ...   restoring ${packageId} ${BICEP_VERSION} from NuGet with dotnet ${dotnetVersion.stdout.trim()}`,
    );
    const restore = await run('dotnet', ['restore', project, '--packages', join(staging, 'packages'), '--nologo'], {
      cwd: staging,
      env: {
        ...process.env,
        DOTNET_CLI_TELEMETRY_OPTOUT: '1',
        DOTNET_NOLOGO: '1',
        DOTNET_SKIP_FIRST_TIME_EXPERIENCE: '1',
      },
    });
    if (restore.code !== 0) {
      throw new Error(`dotnet restore of ${packageId} ${BICEP_VERSION} failed:\n${restore.stdout}${restore.stderr}`);
    }
    await chmod(binary(staging), 0o755);
    try {
      await rename(staging, cacheRoot);
    } catch (error) {
      // Another run put its restore in place first: use that one.
      if (!(await isExecutable(binary(cacheRoot)))) throw error;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return binary(cacheRoot);
}

async function findBicep(): Promise<{ path: string; version: string }> {
  const onPath = await run('bicep', ['--version'], { cwd: tmpdir() });
  if (onPath.code === 0) return { path: 'bicep', version: onPath.stdout.trim() };
  const rid = nugetRid();
  if (!rid) throw new Error(`no \`bicep\` on PATH and no Bicep CLI package for ${platform()}-${arch()}`);
  const path = await restoreBicep(rid);
  const version = await run(path, ['--version'], { cwd: tmpdir() });
  if (version.code !== 0) throw new Error(`the restored compiler does not run: ${version.stderr.trim()}`);
  return { path, version: version.stdout.trim() };
}

// ---------------------------------------------------------------------------------------------------------
// Walking a compiled template

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface TemplateScope {
  /** Where the template sits: `main` or `main/<module deployment name>`. */
  readonly path: string;
  readonly template: JsonObject;
  /** Names of its parameters that are securestring / secureObject (directly or through a type definition). */
  readonly secureParameters: ReadonlySet<string>;
}

interface FoundResource {
  readonly scope: TemplateScope;
  readonly resource: JsonObject;
  readonly type: string;
  /** The literal last segment of the name, when the name ends in one (`'ftp')]` or `.../ftp`). */
  readonly leafName: string | undefined;
}

const isObject = (value: Json | undefined): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function secureParameterNames(template: JsonObject): Set<string> {
  const definitions = isObject(template.definitions) ? template.definitions : {};
  const isSecureType = (parameter: Json | undefined, depth = 0): boolean => {
    if (!isObject(parameter) || depth > 10) return false;
    if (parameter.type === 'securestring' || parameter.type === 'secureObject') return true;
    const ref = parameter.$ref;
    if (typeof ref === 'string' && ref.startsWith('#/definitions/')) {
      return isSecureType(definitions[ref.slice('#/definitions/'.length)], depth + 1);
    }
    return false;
  };
  const parameters = isObject(template.parameters) ? template.parameters : {};
  return new Set(
    Object.entries(parameters)
      .filter(([, p]) => isSecureType(p))
      .map(([name]) => name),
  );
}

function leafName(name: Json | undefined): string | undefined {
  if (typeof name !== 'string') return undefined;
  if (!name.startsWith('[')) return name.split('/').pop();
  return /'([^']*)'\)\]$/.exec(name)?.[1];
}

/** Every resource of the template and of its nested (module) deployments. */
function collectResources(template: JsonObject, path: string, found: FoundResource[], scopes: TemplateScope[]): void {
  const scope: TemplateScope = { path, template, secureParameters: secureParameterNames(template) };
  scopes.push(scope);
  const resources = Array.isArray(template.resources)
    ? template.resources
    : isObject(template.resources)
      ? Object.values(template.resources)
      : [];
  for (const resource of resources) {
    if (!isObject(resource) || typeof resource.type !== 'string' || resource.existing === true) continue;
    found.push({ scope, resource, type: resource.type, leafName: leafName(resource.name) });
    const properties = resource.properties;
    if (resource.type === 'Microsoft.Resources/deployments' && isObject(properties) && isObject(properties.template)) {
      collectResources(properties.template, `${path}/${leafName(resource.name) ?? '?'}`, found, scopes);
    }
  }
}

function get(value: Json | undefined, ...path: string[]): Json | undefined {
  let current = value;
  for (const key of path) {
    if (!isObject(current)) return undefined;
    current = current[key];
  }
  return current;
}

function parameterReferences(expression: string): string[] {
  return [...expression.matchAll(/parameters\('([^']+)'\)/g)].map((m) => m[1] ?? '');
}

const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

// ---------------------------------------------------------------------------------------------------------
// The checks

async function checkCompiledTemplate(mainJsonPath: string): Promise<void> {
  section('Compiled ARM template (infra/main.bicep)');
  const text = await readFile(mainJsonPath, 'utf8');
  const root = JSON.parse(text) as JsonObject;
  const found: FoundResource[] = [];
  const scopes: TemplateScope[] = [];
  collectResources(root, 'main', found, scopes);
  const ofType = (type: string) => found.filter((r) => r.type.toLowerCase() === type.toLowerCase());

  // Function app and plan
  const sites = ofType('Microsoft.Web/sites');
  check('one function app', sites.length === 1, `found ${sites.length}`);
  for (const { resource } of sites) {
    const props = resource.properties;
    check('function app: kind functionapp,linux', resource.kind === 'functionapp,linux', asText(resource.kind));
    check('function app: httpsOnly', get(props, 'httpsOnly') === true);
    check('function app: minimum TLS 1.2', get(props, 'siteConfig', 'minTlsVersion') === '1.2');
    check('function app: SCM minimum TLS 1.2', get(props, 'siteConfig', 'scmMinTlsVersion') === '1.2');
    check('function app: FTPS disabled', get(props, 'siteConfig', 'ftpsState') === 'Disabled');
    check('function app: HTTP/2 enabled', get(props, 'siteConfig', 'http20Enabled') === true);
    // docs/cors.md: the host answers preflights from siteConfig.cors on Flex; the app reads the same list.
    check(
      'function app: platform CORS never with credentials',
      get(props, 'siteConfig', 'cors', 'supportCredentials') === false,
    );
    check(
      'function app: platform CORS origins from the corsAllowedOrigins parameter',
      parameterReferences(asText(get(props, 'siteConfig', 'cors', 'allowedOrigins') ?? '')).includes(
        'corsAllowedOrigins',
      ),
    );
    check(
      'function app: no app settings inline (one appsettings resource holds them)',
      get(props, 'siteConfig', 'appSettings') === undefined,
    );
    check(
      'function app: runtime node 22 (functionAppConfig)',
      get(props, 'functionAppConfig', 'runtime', 'name') === 'node' &&
        get(props, 'functionAppConfig', 'runtime', 'version') === '22',
      JSON.stringify(get(props, 'functionAppConfig', 'runtime')),
    );
    check(
      'function app: deployment from a blob container with the user-assigned identity',
      get(props, 'functionAppConfig', 'deployment', 'storage', 'type') === 'blobContainer' &&
        get(props, 'functionAppConfig', 'deployment', 'storage', 'authentication', 'type') === 'UserAssignedIdentity',
    );
    const scale = get(props, 'functionAppConfig', 'scaleAndConcurrency');
    check(
      'function app: scale and instance memory set',
      isObject(scale) && 'maximumInstanceCount' in scale && 'instanceMemoryMB' in scale,
    );
    check('function app: runs as a user-assigned identity', get(resource, 'identity', 'type') === 'UserAssigned');
  }
  const plans = ofType('Microsoft.Web/serverfarms');
  check(
    'plan: Flex Consumption FC1 on Linux',
    plans.length === 1 &&
      get(plans[0]?.resource, 'sku', 'name') === 'FC1' &&
      get(plans[0]?.resource, 'sku', 'tier') === 'FlexConsumption' &&
      get(plans[0]?.resource, 'properties', 'reserved') === true,
  );
  const basicAuth = ofType('Microsoft.Web/sites/basicPublishingCredentialsPolicies');
  for (const leaf of ['ftp', 'scm']) {
    const policy = basicAuth.find((r) => r.leafName === leaf);
    check(`basic-auth publishing off: ${leaf}`, get(policy?.resource, 'properties', 'allow') === false);
  }

  // App settings
  const settingsResources = ofType('Microsoft.Web/sites/config').filter((r) => r.leafName === 'appsettings');
  check('one appsettings resource', settingsResources.length === 1, `found ${settingsResources.length}`);
  const settings = get(settingsResources[0]?.resource, 'properties');
  if (isObject(settings)) {
    const names = Object.keys(settings);
    const missing = EXPECTED_APP_SETTINGS.filter((n) => !names.includes(n));
    const unexpected = names.filter((n) => !EXPECTED_APP_SETTINGS.includes(n));
    check(
      'app settings: exactly the expected names',
      missing.length === 0 && unexpected.length === 0,
      `missing ${missing.join(', ') || '-'}; unexpected ${unexpected.join(', ') || '-'}`,
    );
    const forbidden = names.filter((n) => FORBIDDEN_APP_SETTINGS.some((f) => f.toLowerCase() === n.toLowerCase()));
    check(
      'app settings: no plain AzureWebJobsStorage, no connection string, no local store',
      forbidden.length === 0,
      forbidden.join(', '),
    );
    check(
      'app settings: host storage through the managed identity',
      settings.AzureWebJobsStorage__credential === 'managedidentity',
    );
    check(
      'app settings: App Insights authenticates with Entra ID',
      typeof settings.APPLICATIONINSIGHTS_AUTHENTICATION_STRING === 'string' &&
        settings.APPLICATIONINSIGHTS_AUTHENTICATION_STRING.includes('Authorization=AAD'),
    );
    check(
      'app settings: the host homepage is off (AzureWebJobsDisableHomepage=true, `/` answers 204)',
      settings.AzureWebJobsDisableHomepage === 'true',
    );
    check(
      'app settings: no languageWorkers__node__arguments (the host would not reuse its placeholder worker; docs/deploy.md)',
      !names.some((n) => n.toLowerCase().startsWith('languageworkers__')),
    );
    check(
      'app settings: STS_ISSUER is https',
      typeof settings.STS_ISSUER === 'string' && settings.STS_ISSUER.includes('https://'),
    );
    check(
      'app settings: STS_ENTRA_AUTHORITY is off without an audience',
      typeof settings.STS_ENTRA_AUTHORITY === 'string' &&
        settings.STS_ENTRA_AUTHORITY.includes("empty(parameters('entraAudience'))"),
    );
    const configSource = await readFile(join(REPO_ROOT, 'shared', 'config.ts'), 'utf8');
    const readByConfig = (n: string) => configSource.includes(`'${n}'`) || configSource.includes(`env.${n}`);
    const unread = names.filter(
      (n) =>
        !n.startsWith('AzureWebJobs') &&
        !n.startsWith('APPLICATIONINSIGHTS_') &&
        !n.startsWith('languageWorkers__') &&
        !readByConfig(n),
    );
    check('app settings: every STS setting is one shared/config.ts reads', unread.length === 0, unread.join(', '));
  }
  check('no plain AzureWebJobsStorage anywhere in the template', !/"AzureWebJobsStorage"\s*:/i.test(text));
  check('no account keys anywhere in the template (no listKeys, no AccountKey=)', !/listKeys|AccountKey=/i.test(text));
  check(
    "Entra authority defaults to the deployment's tenant (login endpoint of the cloud, v2.0)",
    /environment\(\)\.authentication\.loginEndpoint, tenant\(\)\.tenantId\)/.test(text) && text.includes('/v2.0'),
  );

  // Storage
  const accounts = ofType('Microsoft.Storage/storageAccounts');
  check('one storage account', accounts.length === 1, `found ${accounts.length}`);
  for (const { resource } of accounts) {
    check(
      'storage: shared keys off (allowSharedKeyAccess false)',
      get(resource, 'properties', 'allowSharedKeyAccess') === false,
    );
    check('storage: minimum TLS 1.2', get(resource, 'properties', 'minimumTlsVersion') === 'TLS1_2');
    check('storage: no public blob access', get(resource, 'properties', 'allowBlobPublicAccess') === false);
    check('storage: HTTPS only', get(resource, 'properties', 'supportsHttpsTrafficOnly') === true);
  }
  const containers = ofType('Microsoft.Storage/storageAccounts/blobServices/containers');
  check(
    'storage: deployment container, private',
    containers.length === 1 && get(containers[0]?.resource, 'properties', 'publicAccess') === 'None',
  );
  // The ledger's hour tables come and go with the app (created on first write, dropped by ledgerRetention).
  check(
    'storage: no declared ledger table (one per hour, made by the app)',
    ofType('Microsoft.Storage/storageAccounts/tableServices/tables').length === 0,
  );
  check(
    'ledger table defaults to "issuance", as in shared/config.ts',
    get(root, 'parameters', 'ledgerTableName', 'defaultValue') === 'issuance' &&
      (await readFile(join(REPO_ROOT, 'shared', 'config.ts'), 'utf8')).includes("'STS_LEDGER_TABLE', 'issuance'"),
  );
  check(
    'ledger retention (720 h) and client address (truncated) default as in shared/config.ts',
    get(root, 'parameters', 'ledgerRetentionHours', 'defaultValue') === 720 &&
      get(root, 'parameters', 'ledgerClientAddress', 'defaultValue') === 'truncated' &&
      (await readFile(join(REPO_ROOT, 'shared', 'config.ts'), 'utf8')).includes(
        'DEFAULT_LEDGER_RETENTION_HOURS = 720',
      ) &&
      (await readFile(join(REPO_ROOT, 'shared', 'config.ts'), 'utf8')).includes(
        "'STS_LEDGER_CLIENT_ADDRESS', 'truncated'",
      ),
  );

  // Key Vault
  const vaults = ofType('Microsoft.KeyVault/vaults');
  check('one key vault', vaults.length === 1, `found ${vaults.length}`);
  for (const { resource } of vaults) {
    const p = resource.properties;
    check('vault: RBAC authorization', get(p, 'enableRbacAuthorization') === true);
    check('vault: soft delete', get(p, 'enableSoftDelete') === true);
    check('vault: purge protection', get(p, 'enablePurgeProtection') === true);
    check(
      'vault: not enabled for deployment, disk encryption or template deployment',
      get(p, 'enabledForDeployment') === false &&
        get(p, 'enabledForDiskEncryption') === false &&
        get(p, 'enabledForTemplateDeployment') === false,
    );
    check('vault: no access policies', get(p, 'accessPolicies') === undefined);
  }
  const secrets = ofType('Microsoft.KeyVault/vaults/secrets');
  check(
    `vault: the signing key secret is named ${vaultLayout.signingKey} (shared/credentials/vaultLayout.ts)`,
    secrets.some((s) => s.leafName === vaultLayout.signingKey),
  );
  for (const secret of secrets) {
    const value = get(secret.resource, 'properties', 'value');
    const refs = typeof value === 'string' ? parameterReferences(value) : [];
    check(
      `vault secret ${secret.leafName ?? '(loop)'}: value comes only from @secure() parameters`,
      refs.length > 0 && refs.every((r) => secret.scope.secureParameters.has(r)),
      asText(value),
    );
  }

  // Monitoring
  const insights = ofType('Microsoft.Insights/components');
  check(
    'Application Insights: local auth disabled',
    insights.length === 1 && get(insights[0]?.resource, 'properties', 'DisableLocalAuth') === true,
  );
  const workspaces = ofType('Microsoft.OperationalInsights/workspaces');
  check(
    'Log Analytics: local auth disabled',
    workspaces.length === 1 && get(workspaces[0]?.resource, 'properties', 'features', 'disableLocalAuth') === true,
  );
  check('a user-assigned identity', ofType('Microsoft.ManagedIdentity/userAssignedIdentities').length === 1);

  // Role assignments
  const assignments = ofType('Microsoft.Authorization/roleAssignments');
  const granted: string[] = [];
  for (const { resource } of assignments) {
    const definition = get(resource, 'properties', 'roleDefinitionId');
    const ids = typeof definition === 'string' ? (definition.match(GUID) ?? []).map((g) => g.toLowerCase()) : [];
    const id = ids[0];
    const scope = get(resource, 'scope');
    const scopeType = typeof scope === 'string' ? /^\[resourceId\('([^']+)'/.exec(scope)?.[1] : undefined;
    check(
      `role assignment ${id ?? asText(definition)}: a literal built-in role on ${id ? (ROLE_SCOPES[id] ?? '?') : '?'}`,
      ids.length === 1 && id !== undefined && id in ROLE_SCOPES && scopeType === ROLE_SCOPES[id],
      `roleDefinitionId ${asText(definition)}, scope ${asText(scope)}`,
    );
    const isDeployer = asText(get(resource, 'properties', 'principalId')).includes("parameters('deployerPrincipalId')");
    check(
      `role assignment ${id ?? '?'}: principalType ${isDeployer ? "the deployer's, or none when not given" : 'ServicePrincipal (the app identity)'}`,
      isDeployer
        ? typeof get(resource, 'properties', 'principalType') === 'string'
        : get(resource, 'properties', 'principalType') === 'ServicePrincipal',
    );
    if (id) granted.push(id);
  }
  const expected = Object.values(ROLES).sort();
  check(
    'role assignments: exactly the expected roles, each once',
    JSON.stringify([...granted].sort()) === JSON.stringify(expected),
    granted.join(', '),
  );
  const deployerAssignments = assignments.filter(({ resource }) =>
    asText(get(resource, 'properties', 'principalId')).includes("parameters('deployerPrincipalId')"),
  );
  // azd supplies no principal type in bicepparam mode: an empty type must send none (ARM looks the principal up).
  check(
    'deployer role assignments: principalType is deployerPrincipalType, and null (not sent) when that is empty',
    deployerAssignments.length === 2 &&
      deployerAssignments.every(
        ({ resource }) => get(resource, 'properties', 'principalType') === "[variables('deployerPrincipalTypeOrNone')]",
      ),
    deployerAssignments.map(({ resource }) => asText(get(resource, 'properties', 'principalType'))).join(', '),
  );
  const roleScope = scopes.find((s) => s.path === 'main/roleAssignments');
  check(
    'deployerPrincipalTypeOrNone is null for an empty type, else the type',
    get(roleScope?.template, 'variables', 'deployerPrincipalTypeOrNone') ===
      "[if(empty(parameters('deployerPrincipalType')), null(), parameters('deployerPrincipalType'))]",
    asText(get(roleScope?.template, 'variables', 'deployerPrincipalTypeOrNone')),
  );
  const passedType = found
    .filter((r) => r.type === 'Microsoft.Resources/deployments' && r.leafName === 'roleAssignments')
    .map((r) => get(r.resource, 'properties', 'parameters', 'deployerPrincipalType', 'value'));
  check(
    'main passes deployerPrincipalType to the role assignments',
    passedType.length === 1 && passedType[0] === "[parameters('deployerPrincipalType')]",
    asText(passedType[0]),
  );
  const principalTypes = get(root, 'parameters', 'deployerPrincipalType', 'allowedValues');
  check(
    'deployerPrincipalType allows User, ServicePrincipal and empty (the default: looked up by ARM)',
    Array.isArray(principalTypes) &&
      ['', 'User', 'ServicePrincipal'].every((t) => principalTypes.includes(t)) &&
      get(root, 'parameters', 'deployerPrincipalType', 'defaultValue') === '',
  );

  // Region
  const regions = get(root, 'parameters', 'location', 'allowedValues');
  check(
    'location: @allowed is exactly the Flex Consumption regions of the official quickstart',
    Array.isArray(regions) &&
      JSON.stringify([...regions].map(String).sort()) === JSON.stringify([...FLEX_CONSUMPTION_REGIONS].sort()),
    Array.isArray(regions) ? `${regions.length} regions` : 'no @allowed',
  );
  check(
    "location: azd prompts for it as a location (metadata azd.type 'location')",
    get(root, 'parameters', 'location', 'metadata', 'azd', 'type') === 'location',
  );

  // Parameters and outputs
  const rootSecure = secureParameterNames(root);
  check(
    'root parameters signingKeyJwk and initialSecrets are @secure()',
    rootSecure.has('signingKeyJwk') && rootSecure.has('initialSecrets'),
  );
  const rootParameters = isObject(root.parameters) ? Object.keys(root.parameters) : [];
  const secretLooking = rootParameters.filter((n) => /secret|password|jwk|key$/i.test(n) && !rootSecure.has(n));
  check('no secret-looking parameter without @secure()', secretLooking.length === 0, secretLooking.join(', '));
  for (const scope of scopes) {
    const outputs = isObject(scope.template.outputs) ? scope.template.outputs : {};
    for (const [name, output] of Object.entries(outputs)) {
      const type = get(output, 'type');
      const value = JSON.stringify(get(output, 'value') ?? '');
      const secureRefs = parameterReferences(value).filter((r) => scope.secureParameters.has(r));
      const leaks =
        type === 'securestring' ||
        type === 'secureObject' ||
        secureRefs.length > 0 ||
        /list[A-Za-z]*\(|Microsoft\.KeyVault\/vaults\/secrets|secret|password/i.test(value) ||
        /secret|password/i.test(name);
      check(`output ${scope.path}.${name}: no secret`, !leaks, value);
    }
  }
  const rootOutputs = isObject(root.outputs) ? Object.keys(root.outputs) : [];
  const missingOutputs = EXPECTED_OUTPUTS.filter((n) => !rootOutputs.includes(n));
  check(
    'outputs: app name, host name, vault URI, client id and the URL of every flow',
    missingOutputs.length === 0,
    missingOutputs.join(', '),
  );
  // ARM format strings double literal braces: {{accountId}} is the text {accountId}.
  const urls = JSON.stringify(root.outputs ?? {})
    .replaceAll('{{', '{')
    .replaceAll('}}', '}');
  // Every function the flow catalogue declares has its URL among the outputs.
  for (const route of flowNames.map((flow) => flowCatalogue[flow].route)) {
    check(`outputs: URL of ${route}`, urls.includes(route));
  }

  checkOperations(found, scopes);
}

/** Every string in a JSON value (the literal parts of the compiled queries). */
function stringsIn(value: Json | undefined, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const item of value) stringsIn(item, out);
  else if (isObject(value)) for (const item of Object.values(value)) stringsIn(item, out);
  return out;
}

/**
 * The workbook, alerts, availability test and resource logs (infra/modules/operations.bicep). Every query names
 * only what the app writes: the record prefixes and fields, outcomes and dependency reasons are read from the
 * modules that write them (shared/telemetry/requestTelemetry.ts, shared/health/healthProbe.ts), not listed here.
 */
function checkOperations(found: FoundResource[], scopes: TemplateScope[]): void {
  section('Operations: workbook, alerts, availability test, resource logs (infra/modules/operations.bicep)');
  const ofType = (type: string) => found.filter((r) => r.type.toLowerCase() === type.toLowerCase());
  const scope = scopes.find((s) => s.path === 'main/operations');
  if (!check('an operations module', scope !== undefined)) return;
  const text = stringsIn(scope?.template).join('\n');

  const diagnostics = ofType('Microsoft.Insights/diagnosticSettings');
  const categories = (r: FoundResource) =>
    (Array.isArray(get(r.resource, 'properties', 'logs')) ? (get(r.resource, 'properties', 'logs') as Json[]) : [])
      .filter((l) => get(l, 'enabled') === true)
      .map((l) => asText(get(l, 'category')));
  const scopeOf = (r: FoundResource) => asText(get(r.resource, 'scope') ?? '');
  const toWorkspace = (r: FoundResource) =>
    asText(get(r.resource, 'properties', 'workspaceId') ?? '').includes('Microsoft.OperationalInsights/workspaces');
  const vaultLogs = diagnostics.filter((r) => scopeOf(r).includes('Microsoft.KeyVault/vaults'));
  check(
    'Key Vault AuditEvent to the Log Analytics workspace',
    vaultLogs.length === 1 && vaultLogs.every((r) => toWorkspace(r) && categories(r).includes('AuditEvent')),
  );
  const tableLogs = diagnostics.filter((r) => scopeOf(r).includes('tableServices'));
  check(
    'storage table logs (the ledger: read, write, delete) to the workspace',
    tableLogs.length === 1 &&
      tableLogs.every(
        (r) =>
          toWorkspace(r) && ['StorageRead', 'StorageWrite', 'StorageDelete'].every((c) => categories(r).includes(c)),
      ),
  );
  const blobLogs = diagnostics.filter((r) => scopeOf(r).includes('blobServices'));
  check(
    'storage blob logs (host storage, deployment package) to the workspace',
    blobLogs.length === 1 && blobLogs.every((r) => toWorkspace(r) && categories(r).includes('StorageWrite')),
  );

  check('one shared workbook', ofType('Microsoft.Insights/workbooks').length === 1);
  const webtests = ofType('Microsoft.Insights/webtests');
  check(
    'an availability test of GET /health expecting 200',
    webtests.length === 1 &&
      asText(get(webtests[0]?.resource, 'properties', 'Request', 'RequestUrl')).includes('/health') &&
      get(webtests[0]?.resource, 'properties', 'ValidationRules', 'ExpectedHttpStatusCode') === 200,
  );
  const ruleNames = stringsIn(get(scope?.template, 'variables', 'alertRules')).filter((v) => v.startsWith('sts-'));
  for (const rule of [
    'sts-503-rate',
    'sts-5xx',
    'sts-vault-throttling',
    'sts-ledger-failures',
    'sts-signing-key-age',
  ]) {
    check(`alert rule ${rule}`, ruleNames.includes(rule), ruleNames.join(', '));
  }
  check('alert rules: log alerts over the workspace', ofType('Microsoft.Insights/scheduledQueryRules').length === 1);

  // The record selections: the prefix the app writes, and substring() past exactly that prefix.
  for (const [prefix, alias] of [
    [REQUEST_TELEMETRY_PREFIX, 'r'],
    [HEALTH_TELEMETRY_PREFIX, 'h'],
  ] as const) {
    check(
      `queries select "${prefix}" records and parse past exactly that prefix (${prefix.length} characters)`,
      text.includes(`where Message startswith "${prefix}"`) &&
        text.includes(`extend ${alias} = parse_json(substring(Message, ${prefix.length}))`),
    );
  }
  const named = (alias: string) => [
    ...new Set([...text.matchAll(new RegExp(`\\b${alias}\\.([A-Za-z_]+)`, 'g'))].map((m) => m[1] ?? '')),
  ];
  const requestFields: readonly string[] = REQUEST_TELEMETRY_FIELDS;
  const healthFields: readonly string[] = HEALTH_TELEMETRY_FIELDS;
  const unknownRequest = named('r').filter((f) => !requestFields.includes(f));
  const unknownHealth = named('h').filter((f) => !healthFields.includes(f));
  check(
    `queries name only request-record fields the app writes (${named('r').join(', ')})`,
    named('r').length > 0 && unknownRequest.length === 0,
    unknownRequest.join(', '),
  );
  check(
    `queries name only health-record fields the app writes (${named('h').join(', ')})`,
    named('h').length > 0 && unknownHealth.length === 0,
    unknownHealth.join(', '),
  );
  const outcomes: readonly string[] = REQUEST_OUTCOMES;
  const comparedOutcomes = [
    ...[...text.matchAll(/r\.outcome\) == "([^"]+)"/g)].map((m) => m[1] ?? ''),
    ...[...text.matchAll(/r\.outcome\) in \(([^)]*)\)/g)].flatMap((m) =>
      [...(m[1] ?? '').matchAll(/"([^"]+)"/g)].map((x) => x[1] ?? ''),
    ),
  ];
  check(
    `queries compare outcome only with values the app writes (${comparedOutcomes.join(', ')})`,
    comparedOutcomes.length > 0 && comparedOutcomes.every((o) => outcomes.includes(o)),
  );
  const reasons: readonly string[] = UNAVAILABLE_REASONS;
  const comparedReasons = [...text.matchAll(/r\.reason\) == "([^"]+)"/g)].map((m) => m[1] ?? '');
  check(
    `queries compare reason only with dependency reasons the app writes (${comparedReasons.join(', ')})`,
    comparedReasons.length > 0 && comparedReasons.every((r) => reasons.includes(r)),
  );
}

async function checkSecretsParamFile(bicep: string, work: string): Promise<void> {
  section('npm run sts -- infra-params (generated secrets file, compiled with build-params)');
  const out = join(work, 'params', 'main.secrets.bicepparam');
  const deployer = '00000000-0000-4000-8000-000000000001';
  const cli = await run(process.execPath, [
    '--import',
    'tsx',
    join(REPO_ROOT, 'tools', 'sts', 'main.ts'),
    'infra-params',
    '--out',
    out,
    '--with-demo-credentials',
    '--deployer-principal-id',
    deployer,
  ]);
  if (!check('infra-params exits 0', cli.code === 0, `${cli.stdout}${cli.stderr}`.trim())) return;
  const mode = (await stat(out)).mode & 0o777;
  check('secrets file is readable by its owner only (0600)', mode === 0o600, mode.toString(8));
  const again = await run(process.execPath, [
    '--import',
    'tsx',
    join(REPO_ROOT, 'tools', 'sts', 'main.ts'),
    'infra-params',
    '--out',
    out,
  ]);
  check('infra-params refuses to overwrite without --force (exit 2)', again.code === 2, `exit ${again.code}`);

  const lint = await run(bicep, ['lint', out]);
  check(
    'generated file lints clean',
    lint.code === 0 && diagnostics(lint.stdout + lint.stderr).length === 0,
    diagnostics(lint.stdout + lint.stderr).join('\n'),
  );
  const compiledPath = join(work, 'secrets.parameters.json');
  const build = await run(bicep, ['build-params', out, '--outfile', compiledPath], { env: sanitizedEnv() });
  if (!check('generated file builds (build-params)', build.code === 0, build.stderr.trim())) return;
  const parameters = get(JSON.parse(await readFile(compiledPath, 'utf8')) as JsonObject, 'parameters');

  check('extends main.bicepparam (its values are present)', get(parameters, 'ledgerMode', 'value') === 'required');
  check('deployer principal passed through', get(parameters, 'deployerPrincipalId', 'value') === deployer);

  const jwk = get(parameters, 'signingKeyJwk', 'value');
  let jwkOk = false;
  if (typeof jwk === 'string') {
    try {
      const material = await parseSigningJwk(jwk);
      const parsed = JSON.parse(jwk) as Record<string, unknown>;
      jwkOk = material.alg === 'ES256' && parsed.kty === 'EC' && parsed.crv === 'P-256' && typeof parsed.d === 'string';
    } catch {
      jwkOk = false;
    }
  }
  check('signingKeyJwk is a private ES256 (P-256) JWK the app can load', jwkOk);

  const list = get(parameters, 'initialSecrets', 'value', 'secrets');
  const secrets = Array.isArray(list) ? list.filter(isObject) : [];
  check('initial secrets: one credential per flow (6 secrets)', secrets.length === 6, `found ${secrets.length}`);
  const records = new Map<string, CredentialRecord>();
  for (const secret of secrets) {
    const name = asText(secret.name);
    const kind = get(secret, 'tags', 'kind');
    const record =
      typeof kind === 'string' && typeof secret.value === 'string'
        ? parseRecord(secret.value, kind as CredentialRecord['kind'])
        : undefined;
    check(
      `secret ${name}: a valid name and a ${asText(kind)} record`,
      SECRET_NAME_PATTERN.test(name) && record !== undefined,
    );
    if (record) records.set(name, record);
  }
  const names = secrets.map((s) => asText(s.name));
  const byKind = <K extends CredentialRecord['kind']>(kind: K) =>
    [...records.values()].filter((r): r is Extract<CredentialRecord, { kind: K }> => r.kind === kind);
  const account = byKind('mixedRealityAccount')[0];
  check(
    'Mixed Reality account under its vault name',
    account !== undefined && names.includes(vaultLayout.mixedRealityAccount(account.accountId)),
  );
  const resource = byKind('cognitiveResource')[0];
  if (
    check(
      'Cognitive resource under its vault name',
      resource !== undefined && names.includes(vaultLayout.cognitiveResource(resource.name)),
    ) &&
    resource
  ) {
    const indexNames = resource.keys.map((key) => vaultLayout.cognitiveKeyIndex(key));
    const resourceAt = names.indexOf(vaultLayout.cognitiveResource(resource.name));
    check(
      'Cognitive key index entries for both keys, written before the resource record',
      indexNames.every((n) => names.includes(n) && names.indexOf(n) < resourceAt),
    );
  }
  const issuer = byKind('wrapIssuer')[0];
  if (
    check(
      'WRAP issuer under its vault name',
      issuer !== undefined && names.includes(vaultLayout.wrapIssuer(issuer.namespace, issuer.name)),
    ) &&
    issuer
  ) {
    const namespaceName = vaultLayout.wrapNamespace(issuer.namespace);
    check(
      'WRAP namespace signing key, written before the issuer',
      names.includes(namespaceName) &&
        names.indexOf(namespaceName) < names.indexOf(vaultLayout.wrapIssuer(issuer.namespace, issuer.name)),
    );
  }
  const privateD = typeof jwk === 'string' ? (JSON.parse(jwk) as { d?: unknown }).d : undefined;
  check('the CLI printed no signing key material', typeof privateD === 'string' && !cli.stdout.includes(privateD));
}

async function checkAzureYaml(): Promise<void> {
  section('azure.yaml (azd)');
  let yaml: string;
  try {
    yaml = await readFile(join(REPO_ROOT, 'azure.yaml'), 'utf8');
  } catch {
    check('azure.yaml exists', false);
    return;
  }
  check(
    'azd service "api" is a function app (matches the azd-service-name tag)',
    /\n {2}api:\n(?: {4}.*\n)*? {4}host: function\n/.test(yaml),
  );
  check(
    'azd provisions infra/main.bicep',
    /\ninfra:\n(?: {2}.*\n)*? {2}path: infra\n/.test(yaml) && /\n {2}module: main\n/.test(yaml),
  );
  check(
    'azd hooks keep the signing key out of the repository',
    yaml.includes('infra-params --azd preprovision') && yaml.includes('infra-params --azd postprovision'),
  );
  const service = /\n {2}api:\n((?: {4}.*\n|\s*\n)+)/.exec(yaml)?.[1] ?? '';
  check(
    'azd uploads the deployment artifact: project . with dist .deploy',
    /^ {4}project: \.$/m.test(service) && /^ {4}dist: \.deploy$/m.test(service),
  );
  check(
    'azd builds the artifact first: service prepackage hook runs npm run package',
    /^ {6}prepackage:\n(?: {8}.*\n)*? {10}run: npm run package$/m.test(service),
  );
  check('azd does no remote build (the artifact has nothing to install)', /^ {4}remoteBuild: false$/m.test(service));
}

/**
 * .github/workflows/azure-dev.yml, offline: the GitHub Actions workflow schema (@action-validator/core), then
 * what makes it safe: OpenID Connect only (no `secrets.` at all), the token permission only on the deploy job,
 * azd signing in with the GitHub federated credential, deploy after the tests and only from main, every action
 * pinned to a major version.
 */
async function checkWorkflow(): Promise<void> {
  section('GitHub Actions workflow (.github/workflows/azure-dev.yml)');
  let text: string;
  try {
    text = await readFile(join(REPO_ROOT, '.github', 'workflows', 'azure-dev.yml'), 'utf8');
  } catch {
    check('the workflow exists', false);
    return;
  }
  const validation = validateWorkflow(text);
  check(
    'valid against the GitHub Actions workflow schema (@action-validator/core)',
    validation.errors.length === 0,
    validation.errors
      .map((e) => `${'path' in e ? e.path : ''} ${e.title}${e.detail ? `: ${e.detail}` : ''}`)
      .join('; '),
  );
  const workflow = parseYaml(text) as Json;
  check('no stored secret: the workflow reads no secrets.*', !/\bsecrets\./.test(text));
  check(
    'top-level permissions: contents read only',
    JSON.stringify(get(workflow, 'permissions')) === JSON.stringify({ contents: 'read' }),
  );
  const jobs = get(workflow, 'jobs');
  const test = get(jobs, 'test');
  const deploy = get(jobs, 'deploy');
  const steps = (job: Json | undefined) => (Array.isArray(get(job, 'steps')) ? (get(job, 'steps') as Json[]) : []);
  const runs = (job: Json | undefined) => steps(job).map((step) => asText(get(step, 'run') ?? ''));
  check(
    'test job runs .ci/run (npm ci, npm test, npm run test:infra)',
    runs(test).some((r) => r.trim() === '.ci/run'),
  );
  check('test job gets no id-token', get(test, 'permissions') === undefined);
  check(
    "test job names the runner's browser for the browser suite (STS_TEST_CHROMIUM: no apt-get as a non-root runner)",
    typeof get(test, 'env', 'STS_TEST_CHROMIUM') === 'string',
  );
  check(
    'deploy needs the tests',
    get(deploy, 'needs') === 'test' ||
      (Array.isArray(get(deploy, 'needs')) && (get(deploy, 'needs') as Json[]).includes('test')),
  );
  check(
    'deploy runs only from main, never for a pull request',
    asText(get(deploy, 'if')).includes("github.ref == 'refs/heads/main'") &&
      asText(get(deploy, 'if')).includes("!= 'pull_request'"),
  );
  check(
    'deploy: id-token write, contents read, nothing else',
    JSON.stringify(get(deploy, 'permissions')) === JSON.stringify({ 'id-token': 'write', contents: 'read' }),
  );
  check(
    'deploy signs in with azd and the GitHub federated credential (as azd pipeline config sets up)',
    runs(deploy).some(
      (r) =>
        r.includes('azd auth login') &&
        r.includes('--federated-credential-provider github') &&
        r.includes('--client-id "$AZURE_CLIENT_ID"'),
    ),
  );
  const env = get(deploy, 'env');
  check(
    'deploy reads the identity from repository variables (vars.*)',
    ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_SUBSCRIPTION_ID', 'AZURE_ENV_NAME'].every(
      (n) => get(env, n) === `\${{ vars.${n} }}`,
    ),
  );
  check(
    'deploy provisions, deploys with the propagation retry, then checks GET /health',
    ['azd provision --no-prompt', 'npm run deploy:azd', '/health'].every((p) =>
      runs(deploy).some((r) => r.includes(p)),
    ),
  );
  check(
    `a pipeline never generates a signing key (${AZD_SIGNING_KEY_DEPLOYED_VARIABLE} set before provision, tools/sts/commands/infraParams.ts)`,
    runs(deploy).some((r) => r.includes(`azd env set ${AZD_SIGNING_KEY_DEPLOYED_VARIABLE} true`)),
  );
  const uses = [...steps(test), ...steps(deploy)]
    .map((step) => get(step, 'uses'))
    .filter((u): u is string => typeof u === 'string');
  check(
    `every action pinned to a release (${uses.join(', ')})`,
    uses.length > 0 && uses.every((u) => /^[\w.-]+\/[\w.-]+@v\d+$/.test(u)),
  );
}

/** The environment for build-params: without values that main.bicepparam reads, so the result is the committed default. */
function sanitizedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['AZURE_ENV_NAME', 'AZURE_PRINCIPAL_ID', 'AZURE_PRINCIPAL_TYPE', 'STS_SIGNING_KEY_JWK'])
    delete env[name];
  return env;
}

async function main(): Promise<void> {
  console.log('Infrastructure tests (infra/)');
  section('Bicep compiler');
  let bicep: string;
  try {
    const found = await findBicep();
    bicep = found.path;
    check(`compiler available: ${found.version} (${found.path})`, true);
  } catch (error) {
    check('compiler available', false, error instanceof Error ? error.message : String(error));
    console.error('\nThe Bicep compiler could not be had, so nothing was checked. This is a failure, not a skip.');
    return;
  }

  const work = await mkdtemp(join(tmpdir(), 'sts-infra-'));
  try {
    section('Build and lint');
    const build = await run(bicep, ['build', join(INFRA, 'main.bicep'), '--outdir', work]);
    const buildDiagnostics = diagnostics(build.stdout + build.stderr);
    check(
      'bicep build infra/main.bicep: no errors, no warnings',
      build.code === 0 && buildDiagnostics.length === 0,
      (buildDiagnostics.join('\n') || build.stderr).trim(),
    );
    for (const file of ['main.bicep', 'main.bicepparam']) {
      const lint = await run(bicep, ['lint', join(INFRA, file)]);
      const found = diagnostics(lint.stdout + lint.stderr);
      check(
        `bicep lint infra/${file}: no errors, no warnings`,
        lint.code === 0 && found.length === 0,
        (found.join('\n') || lint.stderr).trim(),
      );
    }
    const paramsOut = join(work, 'main.parameters.json');
    const buildParams = await run(bicep, ['build-params', join(INFRA, 'main.bicepparam'), '--outfile', paramsOut], {
      env: sanitizedEnv(),
    });
    check('bicep build-params infra/main.bicepparam', buildParams.code === 0, buildParams.stderr.trim());
    if (buildParams.code === 0) {
      const committed = get(JSON.parse(await readFile(paramsOut, 'utf8')) as JsonObject, 'parameters');
      check(
        'committed parameters carry no signing key',
        (get(committed, 'signingKeyJwk', 'value') ?? '') === '' && get(committed, 'initialSecrets') === undefined,
      );
      check(
        'deployer principal type is empty (looked up by ARM) without AZURE_PRINCIPAL_TYPE, as azd leaves it',
        get(committed, 'deployerPrincipalType', 'value') === '',
      );
    }
    // What azd really passes in bicepparam mode (bicep_provider.go, compileBicep): AZURE_PRINCIPAL_ID only.
    const azdOut = join(work, 'main.azd.parameters.json');
    const azdParams = await run(bicep, ['build-params', join(INFRA, 'main.bicepparam'), '--outfile', azdOut], {
      env: { ...sanitizedEnv(), AZURE_PRINCIPAL_ID: '00000000-0000-4000-8000-0000000000bb' },
    });
    if (
      check(
        "bicep build-params with azd's environment (AZURE_PRINCIPAL_ID, no AZURE_PRINCIPAL_TYPE)",
        azdParams.code === 0,
        azdParams.stderr.trim(),
      )
    ) {
      const azd = get(JSON.parse(await readFile(azdOut, 'utf8')) as JsonObject, 'parameters');
      check(
        'azd as a user or a service principal: the deployer is granted with no principalType (ARM looks it up)',
        get(azd, 'deployerPrincipalType', 'value') === '' &&
          get(azd, 'deployerPrincipalId', 'value') === '00000000-0000-4000-8000-0000000000bb',
      );
    }
    const spOut = join(work, 'main.sp.parameters.json');
    const spParams = await run(bicep, ['build-params', join(INFRA, 'main.bicepparam'), '--outfile', spOut], {
      env: {
        ...sanitizedEnv(),
        AZURE_PRINCIPAL_ID: '00000000-0000-4000-8000-0000000000aa',
        AZURE_PRINCIPAL_TYPE: 'ServicePrincipal',
      },
    });
    if (
      check(
        'bicep build-params with AZURE_PRINCIPAL_TYPE=ServicePrincipal set by hand',
        spParams.code === 0,
        spParams.stderr.trim(),
      )
    ) {
      const sp = get(JSON.parse(await readFile(spOut, 'utf8')) as JsonObject, 'parameters');
      check(
        'a service-principal login (CI) is granted as ServicePrincipal',
        get(sp, 'deployerPrincipalType', 'value') === 'ServicePrincipal' &&
          get(sp, 'deployerPrincipalId', 'value') === '00000000-0000-4000-8000-0000000000aa',
      );
    }
    if (build.code === 0) await checkCompiledTemplate(join(work, 'main.json'));
    await checkSecretsParamFile(bicep, work);
    await checkAzureYaml();
    await checkWorkflow();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (error) {
  check(
    'infrastructure tests ran to the end',
    false,
    error instanceof Error ? (error.stack ?? error.message) : String(error),
  );
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;

/** A value of the compiled template as text for a message or a comparison: strings as they are, the rest as JSON. */
function asText(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
}
