import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACT_MAIN, packageApp, type PackageResult } from '../tools/packageApp.js';
import { closeCompiledServices, importCompiledApp } from '../tools/localHost/compiledFunctions.js';
import { startLocalHost, type RunningLocalHost } from '../tools/localHost/localHost.js';
import { createMixedRealityAccount, ensureSigningKey } from '../tools/sts/credentials/provisioning.js';
import type { MixedRealityAccount } from '../shared/credentials/records.js';
import { FileSecretStore } from '../shared/secrets/fileSecretStore.js';
import { azdUpload, coreToolsUpload } from '../tooling/deploy/deployUploads.js';
import { flowCatalogue, flowNames } from '../shared/flowCatalogue.js';
import { vaultLayout } from '../shared/credentials/vaultLayout.js';
import { KeyVaultTestServer } from '../tooling/doubles/keyVaultTestServer.js';
import { createTestCertificateAuthority, loopbackCertificate } from '../tooling/doubles/testCertificates.js';

const run = promisify(execFile);

/**
 * `npm run package` builds THE deployment artifact (docs/deploy.md). It is built here into a folder outside the
 * repository, so nothing can resolve from the development node_modules, and checked as Azure and the two deploy
 * tools see it: its files and size, what `func azure functionapp publish` and `azd deploy` would upload, every
 * function loading in a bare Node 22, and the local host serving it, tokens included. esbuild runs locally;
 * nothing here needs the package registry.
 */

/** The functions that are not flows, so not in the flow catalogue: the health probe and the timer. */
const OTHER_FUNCTIONS = ['health health', 'ledgerRetention timer 0 7 * * * *'];
/** Every function, `name route` (or `name timer schedule`), in name order (as the artifact lists them). */
const EXPECTED_FUNCTIONS = [
  ...flowNames.map((flow) => `${flow} ${flowCatalogue[flow].route}`),
  ...OTHER_FUNCTIONS,
].sort();
const FIVE_MB = 5 * 1024 * 1024;
/** The user-agent prefix each Azure SDK compiles in: a string that survives minifying and exists only in that SDK. */
const AZURE_SDK_USER_AGENTS = ['azsdk-js-identity', 'azsdk-js-keyvault-secrets', 'azsdk-js-data-tables'];

describe('npm run package', () => {
  let work: string;
  let artifact: string;
  let result: PackageResult;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'sts-package-'));
    artifact = join(work, 'deploy');
    result = await packageApp({ outDir: artifact });
  }, 120_000);

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('is one bundled ES module that main names, with source maps, host.json and no file per function', async () => {
    // The worker imports what main names (a glob; a plain path matches one file): one module, every function.
    expect(ARTIFACT_MAIN).toBe('dist/app.js');
    expect(result.entries).toEqual(['dist/app.js']);
    expect(result.functions).toEqual(EXPECTED_FUNCTIONS.map((line) => line.split(' ')[0]));
    expect(result.files.filter((f) => f.startsWith('dist/') && !f.startsWith('dist/chunks/'))).toEqual([
      'dist/app.js',
      'dist/app.js.map',
    ]);
    for (const file of result.files.filter((f) => f.endsWith('.js')))
      expect(result.files, file).toContain(`${file}.map`);
    expect(result.files).toEqual(
      expect.arrayContaining(['host.json', 'package.json', 'local.settings.json', '.funcignore']),
    );
    expect(result.files.filter((f) => f.startsWith('node_modules/'))).toEqual([]);
    expect(result.files.filter((f) => f.endsWith('.ts'))).toEqual([]);
    expect(result.bytes).toBeLessThanOrEqual(FIVE_MB);

    const manifest = JSON.parse(await readFile(join(artifact, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ type: 'module', main: ARTIFACT_MAIN });
    expect(manifest.dependencies).toBeUndefined();
    expect(manifest.devDependencies).toBeUndefined();
    expect(await readFile(join(artifact, 'host.json'), 'utf8')).toBe(await readFile('host.json', 'utf8'));
  });

  it('names its worker runtime for Core Tools and nothing else in local.settings.json', async () => {
    expect(JSON.parse(await readFile(join(artifact, 'local.settings.json'), 'utf8'))).toEqual({
      IsEncrypted: false,
      Values: { FUNCTIONS_WORKER_RUNTIME: 'node' },
    });
  });

  it('keeps the Azure SDKs out of what a function loads before its first request', async () => {
    const bundled = async (file: string) => readFile(join(artifact, file), 'utf8');
    for (const [entry, loaded] of Object.entries(result.staticallyLoaded)) {
      const text = (await Promise.all(loaded.map(bundled))).join('\n');
      for (const sdk of AZURE_SDK_USER_AGENTS) expect(text, `${entry} loads ${sdk}`).not.toContain(sdk);
    }
    const everything = (await Promise.all(result.files.filter((f) => f.endsWith('.js')).map(bundled))).join('\n');
    for (const sdk of AZURE_SDK_USER_AGENTS) expect(everything, `${sdk} is bundled`).toContain(sdk);
  });

  it("bundles the part of undici the app calls out with, not the package's index", async () => {
    // undici's index loads all it offers (WebSocket streams, cache storage, mock and snapshot agents) before it
    // returns, which a cold instance would pay on its first vault call. The class names survive minifying.
    const everything = (
      await Promise.all(result.files.filter((f) => f.endsWith('.js')).map((f) => readFile(join(artifact, f), 'utf8')))
    ).join('\n');
    for (const unused of ['MockAgent', 'SnapshotAgent', 'CacheStorage', 'WebSocketStream'])
      expect(everything, `${unused} is bundled`).not.toContain(`"${unused}"`);
  });

  it('loads the Azure SDK chunks on the first vault call, not before', async () => {
    const probe = `
      const { registerHooks } = await import('node:module');
      const { readFileSync } = await import('node:fs');
      const { fileURLToPath } = await import('node:url');
      const loaded = new Set();
      registerHooks({ load(url, context, nextLoad) { loaded.add(url); return nextLoad(url, context); } });
      const sdksIn = () => ${JSON.stringify(AZURE_SDK_USER_AGENTS)}.filter((marker) =>
        [...loaded].some((url) => url.startsWith('file:') && readFileSync(fileURLToPath(url), 'utf8').includes(marker)));
      const app = await import('./' + ${JSON.stringify(ARTIFACT_MAIN)});
      const beforeCall = sdksIn();
      const nodeFetchBeforeCall = process.moduleLoadList.includes('NativeModule internal/deps/undici/undici');
      const mixedReality = app.mixedRealityToken;
      const id = '00000000-0000-4000-8000-000000000001';
      const request = Object.assign(new Request('http://127.0.0.1/accounts/' + id + '/token', { headers: { authorization: 'Bearer ' + id + ':' + 'A'.repeat(44) } }), { params: { accountId: id } });
      const quiet = () => {};
      const response = await mixedReality.handler(request, { invocationId: crypto.randomUUID(), functionName: 'mixedRealityToken', log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet });
      console.log(JSON.stringify({ beforeCall, nodeFetchBeforeCall, afterCall: sdksIn(), status: response.status }));
      process.exit(0);`;
    const env = {
      PATH: process.env.PATH ?? '',
      KEY_VAULT_URL: 'https://127.0.0.1:1/',
      STS_ISSUER: 'https://sts.test.example/',
      STS_LEDGER_MODE: 'off',
      STS_VAULT_TIMEOUT_MS: '2000',
    };
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], {
      cwd: artifact,
      env,
      timeout: 60_000,
    });
    const seen = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
      beforeCall: string[];
      nodeFetchBeforeCall: boolean;
      afterCall: string[];
      status: number;
    };
    expect(seen.beforeCall).toEqual([]);
    // Nor Node's own fetch (its built-in undici, about 20 ms to load), which an ES module import of node:http
    // pulls in through the module's WebSocket export: loading the functions must not import node:http that way.
    expect(seen.nodeFetchBeforeCall).toBe(false);
    expect(seen.afterCall).toEqual(expect.arrayContaining(['azsdk-js-identity', 'azsdk-js-keyvault-secrets']));
    // No vault answers on port 1: the client gets the flow's "dependency unavailable", not a token and not a 500.
    expect(seen.status).toBe(503);
  });

  it('issues a token from Key Vault through the App Service managed identity, with nothing but the artifact', async () => {
    // The path every deployment takes on its first request: the app's own identity credential (the one outbound
    // client, undici bundled from CommonJS) gets a vault token, the name index lists the vault, the secret is read.
    const caDir = await mkdtemp(join(tmpdir(), 'sts-package-ca-'));
    const vault = await new KeyVaultTestServer({
      certificate: await loopbackCertificate(await createTestCertificateAuthority(caDir)),
    }).start();
    try {
      const seedStore = new FileSecretStore(join(work, 'vault-seed.json'));
      await ensureSigningKey(seedStore);
      const account = await createMixedRealityAccount(seedStore, { accountDomain: 'eastus2.mixedreality.azure.com' });
      for (const name of [vaultLayout.signingKey, vaultLayout.mixedRealityAccount(account.accountId)]) {
        const secret = await seedStore.getSecret(name);
        if (!secret) throw new Error(`the seed store has no ${name}`);
        vault.seed(name, secret.value, { contentType: secret.contentType ?? 'application/json' });
      }
      const probe = `
        const { mixedRealityToken: definition } = await import('./dist/app.js');
        const id = process.env.PROBE_ACCOUNT_ID;
        const request = Object.assign(new Request('http://127.0.0.1/accounts/' + id + '/token', { headers: { authorization: 'Bearer ' + id + ':' + process.env.PROBE_ACCOUNT_KEY } }), { params: { accountId: id } });
        const quiet = () => {};
        const response = await definition.handler(request, { invocationId: crypto.randomUUID(), functionName: 'mixedRealityToken', log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet });
        console.log(JSON.stringify({ status: response.status, body: typeof response.body === 'string' ? response.body : '' }));
        process.exit(0);`;
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], {
        cwd: artifact,
        env: {
          PATH: process.env.PATH ?? '',
          ...vault.env(),
          NODE_EXTRA_CA_CERTS: join(caDir, 'ca.pem'),
          STS_ISSUER: 'https://sts.test.example/',
          STS_LEDGER_MODE: 'off',
          PROBE_ACCOUNT_ID: account.accountId,
          PROBE_ACCOUNT_KEY: account.keys[0],
        },
        timeout: 60_000,
      });
      const answer = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { status: number; body: string };
      expect(answer.status).toBe(200);
      expect(answer.body).toMatch(/^\{"AccessToken":"[\w-]+\.[\w-]+\.[\w-]+"\}$/);
    } finally {
      await vault.close();
      await rm(caDir, { recursive: true, force: true });
    }
  });

  it('is uploaded whole, and alone, by func azure functionapp publish and by azd deploy', async () => {
    const shipped = result.files.filter((f) => f !== 'local.settings.json' && f !== '.funcignore');
    const func = await coreToolsUpload(artifact);
    expect(func.files).toEqual(shipped);

    const azureYaml = await readFile('azure.yaml', 'utf8');
    const service = /^ {2}api:\n((?: {4}.*\n|\s*\n)+)/m.exec(azureYaml)?.[1] ?? '';
    expect(service).toMatch(/^ {4}host: function$/m);
    expect(service).toMatch(/^ {4}language: (?:ts|js)$/m);
    expect(service).toMatch(/^ {4}remoteBuild: false$/m);
    expect(service).toMatch(/^ {6}prepackage:\n(?: {8}.*\n)*? {10}run: npm run package$/m);
    const project = /^ {4}project: (.+)$/m.exec(service)?.[1];
    const dist = /^ {4}dist: (.+)$/m.exec(service)?.[1];
    expect([project, dist]).toEqual(['.', '.deploy']);
    // azd zips <project>/<dist>; the test's artifact stands in for .deploy/.
    const azd = await azdUpload({ packageRoot: artifact, remoteBuild: false });
    expect(azd.files).toEqual(shipped);

    let uploadedBytes = 0;
    for (const file of shipped) uploadedBytes += (await readFile(join(artifact, file))).length;
    expect(uploadedBytes).toBeLessThanOrEqual(FIVE_MB);
    const uploadedMain = JSON.parse(await readFile(join(artifact, 'package.json'), 'utf8')) as { main: string };
    expect(uploadedMain.main).toBe(ARTIFACT_MAIN);
  });

  it('loads every function in a bare Node 22 with nothing but the artifact, each exported under its name', async () => {
    const probe = `
      const names = [];
      const app = await import('./' + ${JSON.stringify(ARTIFACT_MAIN)});
      for (const [exported, value] of Object.entries(app)) {
        if (exported === 'closeServices') continue;
        const { name, route, schedule } = value;
        if (name !== exported) throw new Error(exported + ' exports the definition of ' + name);
        names.push(name + ' ' + (route ?? 'timer ' + schedule));
      }
      console.log(JSON.stringify(names.sort()));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], {
      cwd: artifact,
      env: { PATH: process.env.PATH ?? '' },
    });
    expect(JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]')).toEqual(EXPECTED_FUNCTIONS);
  });

  it('registers every function with the core API the Functions worker injects', async () => {
    // The Node.js worker answers require('@azure/functions-core') through a Proxy on Module.prototype.require
    // (azure-functions-nodejs-worker, src/setupCoreModule.ts); the bundle must reach it the same way.
    const probe = `
      const Module = (await import('node:module')).default;
      const registered = [];
      const timers = [];
      const hooks = [];
      const core = {
        version: '3.9.0', hostVersion: '4.1037.0', Disposable: class { dispose() {} }, log() {},
        setProgrammingModel() {}, getProgrammingModel() { return undefined; },
        registerHook(name) { hooks.push(name); return { dispose() {} }; },
        registerFunction(metadata) {
          registered.push(metadata.name);
          for (const binding of Object.values(metadata.bindings ?? {})) {
            if (binding.type === 'timerTrigger') timers.push(metadata.name + ' ' + binding.schedule);
          }
          return { dispose() {} };
        },
      };
      Module.prototype.require = new Proxy(Module.prototype.require, {
        apply(target, self, args) { return args[0] === '@azure/functions-core' ? core : Reflect.apply(target, self, args); },
      });
      const manifest = JSON.parse((await import('node:fs')).readFileSync('package.json', 'utf8'));
      await import('./' + manifest.main);
      console.log(JSON.stringify({ registered: registered.sort(), timers, hooks }));`;
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', probe], {
      cwd: artifact,
      env: { PATH: process.env.PATH ?? '' },
    });
    expect(JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')).toEqual({
      registered: EXPECTED_FUNCTIONS.map((line) => line.split(' ')[0]),
      // The retention timer is a timer trigger on its schedule, which the host runs with host storage.
      timers: ['ledgerRetention 0 7 * * * *'],
      hooks: ['appTerminate'],
    });
    expect(stderr).not.toMatch(/test mode/);
  });

  describe('served by the local host', () => {
    let host: RunningLocalHost;
    let account: MixedRealityAccount;
    let timerNames: string[] = [];
    let httpNames: string[] = [];
    const savedEnv = { ...process.env };

    beforeAll(async () => {
      const store = new FileSecretStore(join(work, 'secrets.json'));
      await ensureSigningKey(store);
      account = await createMixedRealityAccount(store, { accountDomain: 'eastus2.mixedreality.azure.com' });
      // The artifact carries its own copy of the app, configured from the environment like in Azure. Each test
      // file runs in a process of its own, and the environment is restored afterwards.
      Object.assign(process.env, {
        STS_LOCAL_STORE_PATH: join(work, 'secrets.json'),
        STS_ISSUER: 'https://sts.test.example/',
        STS_LEDGER_MODE: 'off',
      });
      const app = await importCompiledApp(artifact);
      timerNames = app.timers.map((timer) => `${timer.name} ${timer.schedule}`);
      httpNames = app.http.map((definition) => `${definition.name} ${definition.route}`);
      host = await startLocalHost({ definitions: app.http, host: '127.0.0.1', port: 0, log: () => {} });
    }, 60_000);

    afterAll(async () => {
      await host?.close();
      await closeCompiledServices(artifact);
      for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
      Object.assign(process.env, savedEnv);
    });

    it('finds every function in the one module main names, the retention timer to run on its schedule', () => {
      expect(httpNames.sort()).toEqual(EXPECTED_FUNCTIONS.filter((line) => !line.includes(' timer ')));
      expect(timerNames).toEqual(['ledgerRetention 0 7 * * * *']);
    });

    it('answers discovery and issues a Mixed Reality token that the JWKS verifies', async () => {
      const discovery = await request(`${host.url}/.well-known/openid-configuration`);
      expect(discovery.statusCode).toBe(200);
      expect(await discovery.body.json()).toMatchObject({ issuer: 'https://sts.test.example/' });

      const token = await request(`${host.url}/accounts/${account.accountId}/token`, {
        headers: { authorization: `Bearer ${account.accountId}:${account.keys[0]}` },
      });
      expect(token.statusCode).toBe(200);
      expect(token.headers['cache-control']).toContain('no-store');
      const { AccessToken } = (await token.body.json()) as { AccessToken: string };
      const { createLocalJWKSet, jwtVerify } = await import('jose');
      const jwks = await request(`${host.url}/.well-known/jwks.json`);
      expect(jwks.statusCode).toBe(200);
      const verified = await jwtVerify(
        AccessToken,
        createLocalJWKSet((await jwks.body.json()) as Parameters<typeof createLocalJWKSet>[0]),
        {
          issuer: 'https://sts.test.example/',
        },
      );
      expect(verified.payload.aid).toBe(account.accountId);

      const refused = await request(`${host.url}/accounts/${account.accountId}/token`, {
        headers: { authorization: `Bearer ${account.accountId}:wrong` },
      });
      expect(refused.statusCode).toBe(401);
      await refused.body.dump();
    });
  });
});
