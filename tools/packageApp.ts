import { cp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';

/**
 * `npm run package`: builds THE deployment artifact into `.deploy/` (git-ignored), the folder both deploy paths
 * upload as it is (`func azure functionapp publish`, `azd deploy`; see docs/deploy.md):
 *
 * - `dist/app.js`: every function in `functions/` bundled with esbuild into one ES module, which registers
 *   each token flow as its own function (one `app.http` per file in `functions/`). It is the artifact's
 *   `package.json` `main`, the one file the worker imports at start (the worker expands `main` as a glob; a
 *   plain path matches that one file). It also exports each function's `definition` under the function's name
 *   and the composition root's `closeServices`, for the local host (`appTerminate` does the shutdown in Azure).
 *   One module for all the functions rather than one bundle per function, and no small entry per function:
 *   every file a start reads costs module resolution, reading and linking (docs/deploy.md, "Cold start of the
 *   artifact");
 * - `dist/chunks/*.js`: code split off by `import()`: the Azure SDKs, which the app loads only when a vault or
 *   ledger is configured, stay in chunks of their own that a cold start does not read;
 * - source maps next to each file; `host.json`; a `package.json` with no dependencies;
 * - `local.settings.json` holding only `FUNCTIONS_WORKER_RUNTIME=node`, from which Core Tools learns the worker
 *   runtime (it reads that file in the folder that holds host.json); neither tool uploads it;
 * - `.funcignore`, which Core Tools and azd both read (and neither uploads).
 *
 * No `node_modules`: every dependency bundles. `@azure/functions-core` stays external because it is not a
 * package but a module the Functions worker injects at run time (`@azure/functions` requires it, and runs in
 * test mode where it is missing).
 */

export const projectRoot = resolve(fileURLToPath(import.meta.url), '../..');

/** `main` of the artifact's package.json: the one module that registers and exports every function. */
export const ARTIFACT_MAIN = 'dist/app.js';

/** The worker runtime Core Tools must know to publish; the only value in the artifact's local.settings.json. */
export const ARTIFACT_LOCAL_SETTINGS = { IsEncrypted: false, Values: { FUNCTIONS_WORKER_RUNTIME: 'node' } } as const;

/** Left out of an upload by both tools; listed so the intent is visible in the artifact itself. */
export const ARTIFACT_FUNCIGNORE = ['local.settings.json', '.funcignore'].join('\n') + '\n';

/** Modules that must stay outside the bundle (see the module comment). */
const EXTERNAL_MODULES = ['@azure/functions-core'];

/**
 * CommonJS code inside an ES module bundle still calls `require()` for Node built-ins; this gives every output
 * file a real one (the identifier is esbuild's convention for the shim it emits).
 */
const REQUIRE_BANNER =
  "import { createRequire as __stsCreateRequire } from 'node:module'; const require = __stsCreateRequire(import.meta.url);";

export interface PackageOptions {
  /** Where the artifact goes; emptied first. */
  readonly outDir: string;
  /** The sources (default: this repository). */
  readonly sourceRoot?: string;
}

export interface PackageResult {
  readonly outDir: string;
  /** Every file of the artifact, relative, `/`-separated, sorted. */
  readonly files: readonly string[];
  readonly bytes: number;
  /** The files `main` names (the one module, `dist/app.js`), relative: what the worker imports at start. */
  readonly entries: readonly string[];
  /** The functions, by name (one per file in `functions/`), sorted; `dist/app.js` exports each under its name. */
  readonly functions: readonly string[];
  /** Output files (relative) that each entry loads statically, i.e. before its first request. */
  readonly staticallyLoaded: Readonly<Record<string, readonly string[]>>;
}

/**
 * Builds the artifact.
 *
 * @example
 * const { bytes, files } = await packageApp({ outDir: '.deploy' });
 */
export async function packageApp({ outDir, sourceRoot = projectRoot }: PackageOptions): Promise<PackageResult> {
  const functionNames = (await readdir(join(sourceRoot, 'functions')))
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .sort();
  if (functionNames.length === 0) throw new Error(`no functions/*.ts under ${sourceRoot}`);
  const functions = functionNames.map((name) => basename(name, '.ts'));
  const entryPoints: Record<string, string> = { app: APP_ENTRY };

  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const distDir = join(outDir, 'dist');
  const { metafile } = await build({
    absWorkingDir: sourceRoot,
    entryPoints,
    outdir: distDir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    minify: true,
    // Function and class names survive minifying: libraries and logs read `.name`.
    keepNames: true,
    sourcemap: true,
    // Maps carry positions and names only, not the sources: stack traces resolve, the artifact stays small.
    sourcesContent: false,
    // Bundled packages keep their licence comments, collected at the end of each file.
    legalComments: 'eof',
    chunkNames: 'chunks/[name]-[hash]',
    external: EXTERNAL_MODULES,
    banner: { js: REQUIRE_BANNER },
    metafile: true,
    logLevel: 'silent',
    plugins: [appEntryPlugin(sourceRoot, functions)],
  });
  const source = JSON.parse(await readFile(join(sourceRoot, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    description?: string;
    engines?: unknown;
  };
  const manifest = {
    name: source.name,
    version: source.version,
    private: true,
    ...(source.description ? { description: source.description } : {}),
    type: 'module',
    main: ARTIFACT_MAIN,
    ...(source.engines ? { engines: source.engines } : {}),
  };
  await writeFile(join(outDir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await cp(join(sourceRoot, 'host.json'), join(outDir, 'host.json'));
  await writeFile(join(outDir, 'local.settings.json'), `${JSON.stringify(ARTIFACT_LOCAL_SETTINGS, null, 2)}\n`);
  await writeFile(join(outDir, '.funcignore'), ARTIFACT_FUNCIGNORE);

  const files = await listFiles(outDir);
  let bytes = 0;
  for (const file of files) bytes += (await stat(join(outDir, file))).size;
  const entries = [ARTIFACT_MAIN];
  return {
    outDir,
    files,
    bytes,
    entries,
    functions,
    staticallyLoaded: staticImportClosure(metafile, outDir, entries),
  };
}

/** The module id of the generated entry that imports every function (see {@link appEntryPlugin}). */
const APP_ENTRY = 'sts:app';

/**
 * Serves {@link APP_ENTRY}: a module that imports each `functions/<name>.ts` (which registers it) and
 * re-exports its `definition` as `<name>`, and the composition root's `closeServices`, for the local host.
 */
function appEntryPlugin(sourceRoot: string, functions: readonly string[]): Plugin {
  return {
    name: 'sts-app-entry',
    setup(builder) {
      builder.onResolve({ filter: /^sts:app$/ }, () => ({ path: APP_ENTRY, namespace: 'sts-app' }));
      builder.onLoad({ filter: /.*/, namespace: 'sts-app' }, () => ({
        contents: [
          ...functions.map((name) => `export { definition as ${name} } from './functions/${name}.ts';`),
          "export { closeServices } from './shared/services.ts';",
        ].join('\n'),
        resolveDir: sourceRoot,
        loader: 'ts',
      }));
    },
  };
}

/** Every file under `folder`, relative and `/`-separated, sorted. */
export async function listFiles(folder: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) files.push(relative(folder, join(entry.parentPath, entry.name)).split('\\').join('/'));
  }
  return files.sort();
}

/** For each entry, the output files reached through static imports only (what loading the entry reads). */
function staticImportClosure(metafile: Metafile, outDir: string, entries: readonly string[]): Record<string, string[]> {
  const byArtifactPath = new Map<string, string[]>();
  for (const [outputPath, output] of Object.entries(metafile.outputs)) {
    const key = relative(outDir, resolve(outputPath)).split('\\').join('/');
    const staticImports = output.imports.filter((i) => i.kind === 'import-statement' && !i.external);
    byArtifactPath.set(
      key,
      staticImports.map((i) => relative(outDir, resolve(i.path)).split('\\').join('/')),
    );
  }
  const closure: Record<string, string[]> = {};
  for (const entry of entries) {
    const seen = new Set<string>([entry]);
    const queue = [entry];
    for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
      for (const imported of byArtifactPath.get(next) ?? []) {
        if (!seen.has(imported)) {
          seen.add(imported);
          queue.push(imported);
        }
      }
    }
    closure[entry] = [...seen].sort();
  }
  return closure;
}

async function main(): Promise<void> {
  const outDir = join(projectRoot, '.deploy');
  const result = await packageApp({ outDir });
  const shown = relative(process.cwd(), outDir) || '.';
  const kib = (n: number): string => `${(n / 1024).toFixed(0)} KiB`;
  console.log(
    `Built the deployment artifact in ${shown}: ${result.files.length} files, ${kib(result.bytes)} (${result.functions.length} functions).`,
  );
  console.log('Publish it:  npm run deploy:func -- <function app name>   (or azd deploy; see docs/deploy.md)');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(`package failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
