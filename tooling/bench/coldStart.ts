import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { KeyVaultTestServer } from '../doubles/keyVaultTestServer.js';
import { createTestCertificateAuthority, loopbackCertificate } from '../doubles/testCertificates.js';
import { packageApp } from '../../tools/packageApp.js';
import type { BenchFixtures } from './benchFixtures.js';
import { median } from './statistics.js';

/**
 * Cold start of the deployment artifact (`npm run package`, built afresh into a temp folder outside the
 * repository so nothing resolves from the development node_modules): fresh processes of the pinned Node, no
 * tsx, importing what the artifact's `main` names (`dist/app.js`) as the Functions worker does. Times are `performance.now()`
 * inside the process (milliseconds since the process started) when the modules are loaded and when the first
 * Mixed Reality token is returned by the handler (called in process: no HTTP server; the request is a fetch
 * `Request` with the route's `params`, which is all the handler reads, so the dev copy of `@azure/functions`
 * is never loaded); a bare `node -e` start in the same run is the baseline, and the first Key Vault token is
 * also reported as a multiple of it. A separate start with a module-load hook lists what was loaded, to show
 * that the Azure SDK chunks load only when a vault is configured and first called.
 */

export interface ColdStartFigure {
  readonly label: string;
  readonly starts: number;
  /** Median ms from process start to the point measured. */
  readonly readyMs: number;
  /** Median ms from process start to the modules loaded (first-token figures only). */
  readonly modulesLoadedMs?: number;
  /** Median wall ms from `spawn` to the process's answer, as seen from outside. */
  readonly wallMs: number;
  /**
   * Median CPU ms (user + system, `process.cpuUsage()`) the process had used by the point measured: less
   * sensitive than `readyMs` to other work on a busy machine, which delays a process without charging it.
   */
  readonly cpuMs: number;
  readonly rssBytes: number;
}

export interface ModuleCensus {
  readonly label: string;
  readonly modules: number;
  readonly packages: readonly string[];
  readonly azureSdks: readonly string[];
}

export interface ColdStartResults {
  readonly bare: ColdStartFigure;
  /**
   * A bare start with `NODE_EXTRA_CA_CERTS` set to the test CA, as the Key Vault probe needs to trust the test
   * server: reading it costs every start that has it, which a deployed app (a public CA) does not pay.
   */
  readonly bareWithTestCa: ColdStartFigure;
  readonly modulesLoaded: ColdStartFigure;
  readonly firstTokenEmbedded: ColdStartFigure;
  readonly firstTokenKeyVault: ColdStartFigure;
  /** `modulesLoaded.readyMs - bare.readyMs`: what the app's modules add to a start. */
  readonly moduleLoadOverheadMs: number;
  /** `firstTokenKeyVault.readyMs / bare.readyMs`. */
  readonly firstTokenKeyVaultOverBare: number;
  /** Size of the artifact measured, bytes (all files, source maps included). */
  readonly artifactBytes: number;
  readonly census: readonly ModuleCensus[];
}

interface ProbeOutput {
  readonly loadedMs: number;
  readonly loadedCpuMs: number;
  readonly firstTokenCpuMs?: number;
  readonly firstTokenMs?: number;
  readonly status?: number;
  readonly rssBytes: number;
  readonly urls?: readonly string[];
}

/**
 * Starts the probe's one result line. The app writes to stdout too (`app.setup` logs "HTTP streaming
 * enabled."), so the result is the line that starts with this, not the whole output.
 */
const RESULT_MARKER = 'STS_BENCH_PROBE_RESULT ';

/**
 * The probe run by `node --input-type=module -e`; its settings arrive in BENCH_PROBE (JSON). It loads the app
 * as the Functions worker does: the worker answers \`require('@azure/functions-core')\` with its core API
 * (registration, hooks, logging; azure-functions-nodejs-worker, src/setupCoreModule.ts), so the library
 * registers each function there instead of falling back to its test mode, which warns on stderr per function.
 * The stand-in records nothing and does nothing else.
 */
const PROBE = `
const probe = JSON.parse(process.env.BENCH_PROBE);
const { default: Module } = await import('node:module');
const disposable = { dispose() {} };
const workerCore = {
  version: '3.9.0', hostVersion: '4.1037.0', Disposable: class { dispose() {} },
  log() {}, setProgrammingModel() {}, getProgrammingModel() { return undefined; },
  registerHook() { return disposable; }, registerFunction() { return disposable; },
};
Module.prototype.require = new Proxy(Module.prototype.require, {
  apply(target, self, args) { return args[0] === '@azure/functions-core' ? workerCore : Reflect.apply(target, self, args); },
});
let urls;
if (probe.census) {
  urls = new Set();
  const { registerHooks } = await import('node:module');
  registerHooks({ load(url, context, nextLoad) { urls.add(url); return nextLoad(url, context); } });
}
const cpuMs = () => { const { user, system } = process.cpuUsage(); return (user + system) / 1000; };
for (const url of probe.mainUrls) await import(url);
const loadedMs = performance.now();
const loadedCpuMs = cpuMs();
let firstTokenMs, firstTokenCpuMs, status;
if (probe.request) {
  const definition = (await import(probe.mainUrls[0])).mixedRealityToken;
  const request = Object.assign(new Request('http://127.0.0.1:7071' + probe.request.path, { method: 'GET', headers: probe.request.headers }), { params: probe.request.params });
  const quiet = () => {};
  const context = { invocationId: crypto.randomUUID(), functionName: definition.name, log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet };
  status = (await definition.handler(request, context)).status;
  firstTokenMs = performance.now();
  firstTokenCpuMs = cpuMs();
}
process.stdout.write('\\n${RESULT_MARKER}' + JSON.stringify({ loadedMs, loadedCpuMs, firstTokenMs, firstTokenCpuMs, status, rssBytes: process.memoryUsage().rss, urls: urls && [...urls] }) + '\\n');
process.exit(0);
`;

const BARE = `const loadedMs = performance.now(); const { user, system } = process.cpuUsage(); process.stdout.write('\\n${RESULT_MARKER}' + JSON.stringify({ loadedMs, loadedCpuMs: (user + system) / 1000, rssBytes: process.memoryUsage().rss }) + '\\n'); process.exit(0);`;

/** Runs the cold-start section: `starts` processes per figure, interleaved, medians reported. */
export async function measureColdStart(
  fixtures: BenchFixtures,
  starts: number,
  log: (line: string) => void,
): Promise<ColdStartResults> {
  const artifactDir = await mkdtemp(join(tmpdir(), 'sts-bench-artifact-'));
  const artifact = await packageApp({ outDir: artifactDir });
  log(
    `  artifact: ${artifact.functions.length} functions in ${artifact.entries.join(', ')}, ${(artifact.bytes / 1024).toFixed(0)} KiB (${artifactDir})`,
  );
  const mainUrls = artifact.entries.map((entry) => pathToFileURL(join(artifactDir, entry)).href);
  const { method: _method, looksIssued: _check, body: _body, ...request } = fixtures.requests.mixedRealityToken;
  const runProbe = (code: string, env: NodeJS.ProcessEnv) => runProbeIn(artifactDir, code, env);

  const caDir = await mkdtemp(join(tmpdir(), 'sts-bench-ca-'));
  const vault = await startSeededVault(fixtures, caDir);
  try {
    const vaultEnv = { ...vault.env(), NODE_EXTRA_CA_CERTS: join(caDir, 'ca.pem') };
    const kinds = {
      bare: { code: BARE, env: fixtures.childEnv() },
      bareWithTestCa: { code: BARE, env: fixtures.childEnv({ NODE_EXTRA_CA_CERTS: join(caDir, 'ca.pem') }) },
      modulesLoaded: { code: PROBE, env: fixtures.childEnv({ BENCH_PROBE: JSON.stringify({ mainUrls }) }) },
      firstTokenEmbedded: {
        code: PROBE,
        env: fixtures.childEnv({ BENCH_PROBE: JSON.stringify({ mainUrls, request }) }),
      },
      firstTokenKeyVault: {
        code: PROBE,
        env: fixtures.childEnv({
          ...vaultEnv,
          BENCH_PROBE: JSON.stringify({ mainUrls, request }),
        }),
      },
    } as const;
    const runs: Record<keyof typeof kinds, { output: ProbeOutput; wallMs: number }[]> = {
      bare: [],
      bareWithTestCa: [],
      modulesLoaded: [],
      firstTokenEmbedded: [],
      firstTokenKeyVault: [],
    };
    for (let start = 0; start < starts; start += 1) {
      for (const [kind, probe] of Object.entries(kinds) as [keyof typeof kinds, (typeof kinds)[keyof typeof kinds]][]) {
        const run = await runProbe(probe.code, probe.env);
        if (run.output.status !== undefined && run.output.status !== 200)
          throw new Error(`cold start ${kind}: the first token was answered ${run.output.status}`);
        runs[kind].push(run);
      }
    }
    const figure = (kind: keyof typeof kinds, label: string): ColdStartFigure => {
      const list = runs[kind];
      const tokenTimes = list.map((r) => r.output.firstTokenMs).filter((t): t is number => t !== undefined);
      const tokenCpu = list.map((r) => r.output.firstTokenCpuMs).filter((t): t is number => t !== undefined);
      return {
        label,
        starts: list.length,
        readyMs: tokenTimes.length > 0 ? median(tokenTimes) : median(list.map((r) => r.output.loadedMs)),
        ...(tokenTimes.length > 0 ? { modulesLoadedMs: median(list.map((r) => r.output.loadedMs)) } : {}),
        wallMs: median(list.map((r) => r.wallMs)),
        cpuMs: tokenCpu.length > 0 ? median(tokenCpu) : median(list.map((r) => r.output.loadedCpuMs)),
        rssBytes: median(list.map((r) => r.output.rssBytes)),
      };
    };
    const bare = figure('bare', 'bare node -e (baseline)');
    const modulesLoaded = figure('modulesLoaded', `artifact modules loaded (${artifact.entries.join(', ')})`);
    const firstTokenKeyVault = figure('firstTokenKeyVault', 'first token, Key Vault (test server)');
    const results = {
      bare,
      bareWithTestCa: figure('bareWithTestCa', 'bare node -e, NODE_EXTRA_CA_CERTS (test CA)'),
      modulesLoaded,
      firstTokenEmbedded: figure('firstTokenEmbedded', 'first token, embedded store'),
      firstTokenKeyVault,
      moduleLoadOverheadMs: modulesLoaded.readyMs - bare.readyMs,
      firstTokenKeyVaultOverBare: firstTokenKeyVault.readyMs / bare.readyMs,
      artifactBytes: artifact.bytes,
    };

    const census: ModuleCensus[] = [];
    for (const [kind, label] of [
      ['modulesLoaded', 'modules loaded'],
      ['firstTokenEmbedded', 'after first token, embedded store'],
      ['firstTokenKeyVault', 'after first token, Key Vault'],
    ] as const) {
      const env = {
        ...kinds[kind].env,
        BENCH_PROBE: JSON.stringify({ ...JSON.parse(String(kinds[kind].env.BENCH_PROBE)), census: true }),
      };
      census.push(await moduleCensus(label, (await runProbe(PROBE, env)).output.urls ?? []));
    }
    log(`  ${starts} starts per figure; module load overhead ${results.moduleLoadOverheadMs.toFixed(1)} ms`);
    return { ...results, census };
  } finally {
    await vault.close();
    await rm(caDir, { recursive: true, force: true });
    await rm(artifactDir, { recursive: true, force: true });
  }
}

/** A Key Vault test server (HTTPS with a throw-away CA under `caDir`) holding the signing key and the demo MR account. */
async function startSeededVault(fixtures: BenchFixtures, caDir: string): Promise<KeyVaultTestServer> {
  const ca = await createTestCertificateAuthority(caDir);
  const vault = await new KeyVaultTestServer({ certificate: await loopbackCertificate(ca) }).start();
  const store = new FileSecretStore(fixtures.storePath);
  for (const name of [
    vaultLayout.signingKey,
    vaultLayout.mixedRealityAccount(fixtures.credentials.mixedReality.accountId),
  ]) {
    const secret = await store.getSecret(name);
    if (!secret) throw new Error(`the bench store has no ${name}`);
    vault.seed(name, secret.value, { contentType: secret.contentType ?? 'application/json' });
  }
  return vault;
}

function runProbeIn(
  cwd: string,
  code: string,
  env: NodeJS.ProcessEnv,
): Promise<{ output: ProbeOutput; wallMs: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-2_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const wallMs = performance.now() - started;
      try {
        if (code !== 0) throw new Error(`exit code ${code}`);
        const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARKER));
        if (line === undefined) throw new Error(`no result line in its output: ${stdout.slice(0, 200)}`);
        resolve({ output: JSON.parse(line.slice(RESULT_MARKER.length)) as ProbeOutput, wallMs });
      } catch (error) {
        reject(new Error(`cold-start probe failed (${(error as Error).message}): ${stderr.trim()}`));
      }
    });
  });
}

/** The user-agent prefix each Azure SDK compiles in: found in a bundled chunk only when that SDK is in it. */
const AZURE_SDK_MARKERS: Readonly<Record<string, string>> = {
  '@azure/identity': 'azsdk-js-identity',
  '@azure/keyvault-secrets': 'azsdk-js-keyvault-secrets',
  '@azure/data-tables': 'azsdk-js-data-tables',
};

/** What a start loaded: files, packages from a node_modules (none for the artifact), and which Azure SDKs. */
async function moduleCensus(label: string, urls: readonly string[]): Promise<ModuleCensus> {
  const files = urls.filter((url) => url.startsWith('file:'));
  const packages = new Set<string>();
  const sdks = new Set<string>();
  for (const url of files) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (match?.[1]) packages.add(match[1]);
    const text = await readFile(fileURLToPath(url), 'utf8').catch(() => '');
    for (const [sdk, marker] of Object.entries(AZURE_SDK_MARKERS)) if (text.includes(marker)) sdks.add(sdk);
  }
  return { label, modules: files.length, packages: [...packages].sort(), azureSdks: [...sdks].sort() };
}
