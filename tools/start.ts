import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { ConfigurationError, loadConfig, type StsConfig } from '../shared/config.js';
import { demoCurlGuide, ensureDemoCredentials } from './demoCredentials.js';
import { attachLocalAzurite, LOCAL_AZURITE_DATA_DIR, type AttachedAzurite } from './localAzurite.js';
import { projectRoot, tlsFolder } from './localHost/projectPaths.js';
import { disableLedgerWhenUnconfigured, shortenLedgerRetentionLocally } from './localHost/localRunDefaults.js';
import { applyLocalSettings } from './localHost/localSettings.js';
import { serveFunctionApp } from './localHost/serve.js';

/**
 * `npm start` (after `prestart` built the app): runs the function app locally with no Azure, under
 * `func start` when Azure Functions Core Tools are on PATH, else under the project's local host.
 *
 * Steps, in order (each one a function below, so a step can be inserted between two others):
 *   1. read the command line;
 *   2. apply local.settings.json (the environment wins, as with `func start`);
 *   2b. the issuance ledger: Azurite from the npm package, data in .azurite/, unless storage is configured;
 *   3. local defaults: the issuer is where we listen, the ledger is off when no storage is configured;
 *   4. validate the configuration (stop with the names at fault);
 *   5. demo credentials on first start, with a one-time curl guide;
 *   6. run `func start` or the local host.
 */

interface StartOptions {
  readonly https: boolean;
  readonly port: number | undefined;
  readonly host: string | undefined;
  /** Anything else, handed to `func start` unchanged. */
  readonly passThrough: readonly string[];
}

const USAGE = `Usage: npm start -- [--port <n>] [--host <addr>] [--https] [other func start options]

Builds, then serves the app on http://127.0.0.1:7071 with \`func start\` when Azure Functions Core Tools are on
PATH, otherwise with the project's local host (\`npm run host\`). --https serves TLS (func: --useHttps).`;

// Step 1.
function readCommandLine(argv: readonly string[]): StartOptions | 'help' {
  let https = false;
  let port: number | undefined;
  let host: string | undefined;
  const passThrough: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [name, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const value = (): string => {
      const next = inline ?? argv[++i];
      if (next === undefined) throw new Error(`${name} needs a value`);
      return next;
    };
    if (name === '--help' || name === '-h') return 'help';
    else if (name === '--https' || name === '--useHttps') https = true;
    else if (name === '--port') {
      port = Number(value());
      if (!Number.isInteger(port) || port < 0 || port > 65_535)
        throw new Error('--port must be a whole number from 0 to 65535');
    } else if (name === '--host') host = value();
    else passThrough.push(arg);
  }
  return { https, port, host, passThrough };
}

// Step 2b: with no ledger storage configured and the ledger not turned off, a local Azurite holds the ledger
// (the one already serving .azurite/ if there is one). Stopped when npm start ends.
let localLedgerStore: AttachedAzurite | undefined;
async function startLocalLedgerStore(): Promise<void> {
  const env = process.env;
  if (
    env.STS_LEDGER_CONNECTION_STRING?.trim() ||
    env.STS_LEDGER_TABLE_URL?.trim() ||
    env.STS_LEDGER_MODE?.trim() === 'off'
  )
    return;
  try {
    localLedgerStore = await attachLocalAzurite(LOCAL_AZURITE_DATA_DIR, { detached: true });
  } catch (error) {
    console.warn(
      `Issuance ledger: could not start Azurite (${error instanceof Error ? error.message.split('\n')[0] : String(error)}).`,
    );
    return;
  }
  env.STS_LEDGER_CONNECTION_STRING = localLedgerStore.connectionString;
  console.log(
    `Issuance ledger: Azurite on 127.0.0.1:${localLedgerStore.port}${localLedgerStore.startedHere ? '' : ' (already running)'}, ` +
      `data in ${relative(projectRoot, LOCAL_AZURITE_DATA_DIR)}/; list rows with \`npm run sts -- audit --credential <id>\`.`,
  );
}

// Step 3.
function applyLocalDefaults(options: StartOptions, port: number): void {
  const scheme = options.https ? 'https' : 'http';
  if (!process.env.STS_ISSUER?.trim()) process.env.STS_ISSUER = `${scheme}://localhost:${port}/`;
  const ledgerNotice = disableLedgerWhenUnconfigured(process.env);
  if (ledgerNotice) console.log(ledgerNotice);
  const retentionNotice = shortenLedgerRetentionLocally(process.env);
  if (retentionNotice) console.log(retentionNotice);
}

// Step 4.
function validateConfiguration(): StsConfig | undefined {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    console.error(
      ['Configuration problems (fix these settings, then start again):', ...error.problems.map((p) => `  - ${p}`)].join(
        '\n',
      ),
    );
    return undefined;
  }
}

// Step 5.
async function bootstrapDemoCredentials(
  config: StsConfig,
  baseUrl: string,
  tlsOption: string | undefined,
): Promise<void> {
  const result = await ensureDemoCredentials(config);
  switch (result.outcome) {
    case 'created':
      console.log(demoCurlGuide(result.credentials, { baseUrl, tlsOption }));
      break;
    case 'store exists':
      console.log(
        `Secrets: embedded store ${relative(projectRoot, result.storePath) || result.storePath} (delete it to get new demo credentials).`,
      );
      break;
    case 'key vault':
      console.log('Secrets: Azure Key Vault (KEY_VAULT_URL); no demo credentials are created.');
      break;
  }
}

// Step 6.
function findOnPath(command: string): string | undefined {
  const extensions = process.platform === 'win32' ? (process.env.PATHEXT ?? '.EXE;.CMD').split(';') : [''];
  for (const folder of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const extension of extensions) {
      const candidate = join(folder, command + extension);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

function runCoreTools(func: string, options: StartOptions, port: number): Promise<number> {
  const args = ['start', '--port', String(port), ...(options.https ? ['--useHttps'] : []), ...options.passThrough];
  if (options.host) console.log(`(func start has no --host option; ignoring --host ${options.host})`);
  console.log(`Running under Azure Functions Core Tools: ${func} ${args.join(' ')}`);
  const child = spawn(func, args, {
    cwd: projectRoot,
    stdio: 'inherit',
    env: { FUNCTIONS_WORKER_RUNTIME: 'node', AzureWebJobsFeatureFlags: 'EnableWorkerIndexing', ...process.env },
    shell: process.platform === 'win32',
  });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  process.on('SIGINT', forward('SIGINT'));
  process.on('SIGTERM', forward('SIGTERM'));
  return new Promise((resolve) => {
    child.on('error', (error) => {
      console.error(`Cannot run func: ${error.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 1)));
  });
}

async function main(argv: readonly string[]): Promise<number> {
  let options: StartOptions | 'help';
  try {
    options = readCommandLine(argv);
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    console.log(USAGE);
    return 0;
  }

  // Step 2.
  const settings = await applyLocalSettings(process.env);
  if (settings.found)
    console.log(`Loaded local.settings.json (${settings.applied.length} settings not already in the environment).`);
  const port = options.port ?? settings.localHttpPort ?? 7071;

  await startLocalLedgerStore();
  applyLocalDefaults(options, port);
  const config = validateConfiguration();
  if (!config) return 1;

  const func = findOnPath('func');
  const scheme = options.https ? 'https' : 'http';
  const tlsOption = !options.https
    ? undefined
    : func
      ? '--insecure' // Core Tools' own development certificate
      : `--cacert ${relative(projectRoot, join(tlsFolder, 'cert.pem'))}`;
  await bootstrapDemoCredentials(config, `${scheme}://127.0.0.1:${port}`, tlsOption);

  if (func) return runCoreTools(func, options, port);
  if (options.passThrough.length > 0) {
    console.error(`Unknown option(s) for the local host: ${options.passThrough.join(' ')}\n\n${USAGE}`);
    return 2;
  }
  console.log('Azure Functions Core Tools (func) not found on PATH: running the local host instead.');
  return serveFunctionApp({ host: options.host ?? '127.0.0.1', port, https: options.https });
}

process.exitCode = await main(process.argv.slice(2)).finally(() => localLedgerStore?.release());
