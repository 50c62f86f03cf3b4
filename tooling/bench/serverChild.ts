import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { loadConfig } from '../../shared/config.js';
import { importCompiledDefinitions } from '../../tools/localHost/compiledFunctions.js';
import { startLocalHost } from '../../tools/localHost/localHost.js';
import { startBaselineServer, type BaselineKind } from './baselineServers.js';
import { benchAppRoot } from './appSnapshot.js';
import { answerParent, failStart, processUsage } from './parentChannel.js';

/**
 * A benchmark server process: `app` (the compiled function app under the local host, configured from the
 * environment like `npm run host`), a baseline (`jose`, `crypto`, `swt`, see `baselineServers.ts`), or
 * `floor`: the local host serving the Mixed Reality and WRAP routes with no-op handlers (the POST one reads its
 * body), i.e. what hosting alone costs before any flow runs.
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
    const definitions = await importCompiledDefinitions(benchAppRoot());
    return startLocalHost({
      definitions,
      port: 0,
      shutdownGraceMs: 1_000,
      log: hostLog ? (line) => process.stdout.write(`${line}\n`) : false,
    });
  }
  if (kind === 'floor') {
    const answer = (body: string, contentType: string) => ({
      status: 200,
      headers: { 'Content-Type': contentType },
      body,
    });
    return startLocalHost({
      definitions: [
        {
          name: 'mixedRealityFloor',
          route: 'accounts/{accountId}/token',
          methods: ['GET'],
          authLevel: 'anonymous',
          handler: () => Promise.resolve(answer(FLOOR_JSON, 'application/json; charset=utf-8')),
        },
        {
          name: 'wrapFloor',
          route: 'WRAPv0.9',
          methods: ['POST'],
          authLevel: 'anonymous',
          handler: async (request) => {
            await request.arrayBuffer();
            return answer(FLOOR_FORM, 'application/x-www-form-urlencoded; charset=us-ascii');
          },
        },
      ],
      port: 0,
      shutdownGraceMs: 1_000,
      log: hostLog ? (line) => process.stdout.write(`${line}\n`) : false,
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
  throw new Error(`unknown server kind "${kind ?? ''}" (app, floor, jose, crypto, swt)`);
}

/** Bodies of the floor's answers, the size of real ones (a token is ~600 bytes). */
const FLOOR_JSON = JSON.stringify({ AccessToken: 'e'.repeat(620) });
const FLOOR_FORM = `wrap_access_token=${'e'.repeat(560)}&wrap_access_token_expires_in=10799`;

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
