import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { disableLedgerWhenUnconfigured, shortenLedgerRetentionLocally } from './localRunDefaults.js';
import { applyLocalSettings } from './localSettings.js';
import { serveFunctionApp } from './serve.js';

/** `npm run host -- [--port 7071] [--host 127.0.0.1] [--https] [--app .deploy]`: the function app without Core Tools. */
const USAGE = `Usage: npm run host -- [options]

Serves the compiled functions (package.json "main"; run \`npm run build\` first) like \`func start\` does.

Options:
  --port <n>     port to listen on (default: local.settings.json Host.LocalHttpPort, else 7071)
  --host <addr>  interface to listen on (default 127.0.0.1; 0.0.0.0 exposes it to your network)
  --https        serve TLS with a self-signed certificate created on first use under .sts/tls/
  --app <folder> serve another build of the app, e.g. the deployment artifact: --app .deploy (npm run package)
  --help         this text

Settings come from the environment, then local.settings.json "Values" (the environment wins).`;

async function main(argv: readonly string[]): Promise<number> {
  let values: { port?: string; host?: string; https?: boolean; app?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        https: { type: 'boolean' },
        app: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const settings = await applyLocalSettings(process.env);
  if (settings.found)
    console.log(`Loaded local.settings.json (${settings.applied.length} settings not already in the environment).`);
  const ledgerNotice = disableLedgerWhenUnconfigured(process.env);
  if (ledgerNotice) console.log(ledgerNotice);
  const retentionNotice = shortenLedgerRetentionLocally(process.env);
  if (retentionNotice) console.log(retentionNotice);

  const port = values.port === undefined ? (settings.localHttpPort ?? 7071) : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    console.error(`--port must be a whole number from 0 to 65535 (got "${values.port}")\n\n${USAGE}`);
    return 2;
  }
  return serveFunctionApp({
    host: values.host ?? '127.0.0.1',
    port,
    https: values.https ?? false,
    ...(values.app === undefined ? {} : { appRoot: resolve(values.app) }),
  });
}

process.exitCode = await main(process.argv.slice(2));
