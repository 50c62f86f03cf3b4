import { spawn } from 'node:child_process';
import { join, relative } from 'node:path';
import { packageApp, projectRoot } from '../packageApp.js';
import { hostNameFromPublishOutput, publishWithRetry, type PublishAttempt } from './publishRetry.js';

const USAGE = `Usage:
  npm run deploy:func -- <function app name>   build the artifact, then func azure functionapp publish <app> --no-build in .deploy/
  npm run deploy:azd [-- <azd deploy options>]  azd deploy (its prepackage hook builds the artifact)

Either publish is run again, with backoff, while the deployment storage refuses the app identity because its new
role assignment is still propagating (docs/deploy.md, "Role propagation"). When Core Tools deployed the package but
found the host unhealthy, the app's GET /health is asked again for a few minutes instead. Any other failure stops
at once.`;

/** GET https://<host>/health: 200 means the vault, the signing key and the ledger answer (docs/operations.md). */
async function appIsHealthy(hostName: string): Promise<boolean> {
  const response = await fetch(`https://${hostName}/health`, { signal: AbortSignal.timeout(15_000) });
  await response.body?.cancel();
  return response.status === 200;
}

/** Keeps the last part of a command's output for the propagation check; the full output goes to the terminal. */
const OUTPUT_TAIL_CHARS = 64 * 1024;

function runCommand(command: string, args: readonly string[], cwd: string): Promise<PublishAttempt> {
  return new Promise((resolve) => {
    // Windows resolves func.cmd / azd.exe through the shell; elsewhere the command runs directly.
    const child = spawn(command, [...args], {
      cwd,
      stdio: ['inherit', 'pipe', 'pipe'],
      shell: process.platform === 'win32',
    });
    let output = '';
    const collect = (sink: NodeJS.WriteStream) => (chunk: Buffer) => {
      sink.write(chunk);
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout.on('data', collect(process.stdout));
    child.stderr.on('data', collect(process.stderr));
    child.once('error', (error) => {
      const message = `${command} did not start (${error.message}): is it installed and on PATH? See docs/deploy.md, "Prerequisites".`;
      console.error(message);
      resolve({ exitCode: 127, output: message });
    });
    child.once('close', (code) => resolve({ exitCode: code ?? 1, output }));
  });
}

async function main(argv: readonly string[]): Promise<number> {
  const [via, ...rest] = argv;
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
  let publish: () => Promise<PublishAttempt>;
  let checkHealth: ((output: string) => Promise<boolean>) | undefined;
  if (via === 'func') {
    const [appName, ...extra] = rest;
    if (!appName || appName.startsWith('-') || extra.length > 0) {
      console.error(USAGE);
      return 2;
    }
    const outDir = join(projectRoot, '.deploy');
    const built = await packageApp({ outDir });
    console.log(
      `Built ${relative(process.cwd(), outDir) || '.'}: ${built.files.length} files, ${(built.bytes / 1024).toFixed(0)} KiB.`,
    );
    publish = () => runCommand('func', ['azure', 'functionapp', 'publish', appName, '--no-build'], outDir);
    checkHealth = (output) => appIsHealthy(hostNameFromPublishOutput(output) ?? `${appName}.azurewebsites.net`);
  } else if (via === 'azd') {
    publish = () => runCommand('azd', ['deploy', ...rest], projectRoot);
  } else {
    console.error(USAGE);
    return 2;
  }
  const last = await publishWithRetry(publish, { sleep, log: (line) => console.log(line), checkHealth });
  return last.exitCode;
}

process.exitCode = await main(process.argv.slice(2));
