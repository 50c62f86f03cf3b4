import { relative } from 'node:path';
import { ConfigurationError, loadConfig, type StsConfig } from '../../shared/config.js';
import { closeCompiledServices, importCompiledApp } from './compiledFunctions.js';
import { startLocalHost, type HttpFunctionLike, type RunningLocalHost } from './localHost.js';
import { projectRoot } from './projectPaths.js';
import { startLocalTimers, type TimerFunctionLike } from './localTimers.js';
import { ensureLocalTlsCertificate } from './tlsCertificate.js';

export interface ServeOptions {
  readonly host: string;
  readonly port: number;
  readonly https: boolean;
  /** The app to serve: a folder with a package.json whose `main` names the function files (default: the repository's `dist/`). */
  readonly appRoot?: string;
}

/**
 * Serves the compiled function app with the local host until SIGINT/SIGTERM, then shuts down gracefully.
 * Configuration is validated first, from `process.env` (with `local.settings.json` already applied by the
 * caller); a bad setting stops the start with the names at fault. Resolves to the process exit code.
 */
export async function serveFunctionApp(options: ServeOptions): Promise<number> {
  const scheme = options.https ? 'https' : 'http';
  // The issuer is configuration; when it is not set locally, it is where this host listens (never the request).
  if (!process.env.STS_ISSUER?.trim()) process.env.STS_ISSUER = `${scheme}://localhost:${options.port}/`;

  let config: StsConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    console.error(
      ['Configuration problems (fix these settings, then start again):', ...error.problems.map((p) => `  - ${p}`)].join(
        '\n',
      ),
    );
    return 1;
  }

  let definitions: HttpFunctionLike[];
  let timerDefinitions: TimerFunctionLike[];
  try {
    ({ http: definitions, timers: timerDefinitions } = await importCompiledApp(options.appRoot));
  } catch (error) {
    console.error(`Cannot load the functions: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }

  let running: RunningLocalHost;
  try {
    running = await startLocalHost({
      definitions,
      host: options.host,
      port: options.port,
      https: options.https,
      // The host's own limits are the real host's (Kestrel's: request line 8 KiB, headers 32 KiB or 100
      // fields); the app's smaller limits answer first, in the flow's shape, under both hosts.
      maxBodyBytes: Math.max(1_048_576, config.limits.maxBodyBytes * 2),
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      console.error(`Port ${options.port} on ${options.host} is in use: stop the other server or pass --port <n>.`);
    else if (code === 'EADDRNOTAVAIL') console.error(`Cannot listen on ${options.host}: no such local address.`);
    else throw error;
    return 1;
  }

  const lines = [`Local Functions host listening on ${running.url}`, '', 'Functions:'];
  for (const d of definitions) lines.push(`  ${d.name}: [${d.methods.join(',')}] ${running.url}/${d.route}`);
  for (const d of timerDefinitions) lines.push(`  ${d.name}: timer, "${d.schedule}" (UTC), and once just after start`);
  if (options.https) {
    const { certPath } = await ensureLocalTlsCertificate();
    const shown = relative(projectRoot, certPath);
    lines.push('', `TLS certificate (self-signed, for localhost/127.0.0.1/::1): ${certPath}`);
    lines.push(`  trust it with: curl --cacert ${shown} …   or   NODE_EXTRA_CA_CERTS=${shown} node …`);
  }
  lines.push('', 'One line per request: method path status duration request-id. Ctrl+C stops.');
  console.log(lines.join('\n'));
  const timers = startLocalTimers(timerDefinitions);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // A second signal while draining forces the exit.
        console.log(`${signal} again: exiting without waiting.`);
        process.exit(130);
      }
      stopping = true;
      console.log(`${signal}: no new requests; letting in-flight requests finish…`);
      Promise.all([running.close(), timers.stop()]).then(() => resolve(), resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await closeCompiledServices(options.appRoot);
  console.log('Stopped.');
  return 0;
}
