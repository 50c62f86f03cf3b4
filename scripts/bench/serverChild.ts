import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { loadConfig } from '../../shared/config.js';
import { importCompiledDefinitions } from '../localHost/compiledFunctions.js';
import { startLocalHost } from '../localHost/localHost.js';
import { startBaselineServer, type BaselineKind } from './baselineServers.js';
import { answerParent, failStart, processUsage } from './parentChannel.js';

/**
 * A benchmark server process: `app` (the compiled function app under the local host, configured from the
 * environment like `npm run host`) or a baseline (`jose`, `crypto`, `swt`, see `baselineServers.ts`).
 * Answers `usage` (its CPU time and memory) and `profile-start` / `profile-stop` (a V8 CPU profile of a window,
 * written where the parent says).
 *
 * Arguments: `<kind> [--host-log]`. `--host-log` keeps the local host's one line per request (written to the
 * child's stdout, which the benchmark discards); by default the host logs nothing, so the figures are the
 * app's, not the cost of a development access log.
 */
const kind = process.argv[2];
const hostLog = process.argv.includes('--host-log');

async function start(): Promise<{ url: string; close: () => Promise<void> }> {
  if (kind === 'app') {
    const config = loadConfig(process.env);
    const definitions = await importCompiledDefinitions();
    return startLocalHost({
      definitions,
      port: 0,
      maxUrlLength: config.limits.maxUrlLength,
      maxHeaderBytes: config.limits.maxHeaderBytes,
      shutdownGraceMs: 1_000,
      log: hostLog ? (line) => process.stdout.write(`${line}\n`) : () => {},
    });
  }
  if (kind === 'jose' || kind === 'crypto' || kind === 'swt') {
    const storePath = process.env.STS_LOCAL_STORE_PATH;
    const issuer = process.env.STS_ISSUER;
    if (!storePath || !issuer) throw new Error('STS_LOCAL_STORE_PATH and STS_ISSUER are required');
    const config = loadConfig(process.env);
    return startBaselineServer(kind satisfies BaselineKind, {
      storePath,
      issuer,
      mixedRealityAudience: config.mixedRealityAudience,
      cognitiveAudience: config.cognitiveAudience,
    });
  }
  throw new Error(`unknown server kind "${kind ?? ''}" (app, jose, crypto, swt)`);
}

let profiler: Session | undefined;

try {
  const server = await start();
  answerParent(
    { url: server.url },
    {
      usage: () => processUsage(),
      'profile-start': async () => {
        profiler = new Session();
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
        await profiler.post('Profiler.start');
        return true;
      },
      'profile-stop': async (request) => {
        if (!profiler) throw new Error('no profile is being recorded');
        const { profile } = await profiler.post('Profiler.stop');
        profiler.disconnect();
        profiler = undefined;
        await writeFile(String(request.path), JSON.stringify(profile));
        return request.path;
      },
    },
    () => server.close(),
  );
} catch (error) {
  failStart(error);
}
