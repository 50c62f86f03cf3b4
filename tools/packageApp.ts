import { spawnSync } from 'node:child_process';
import { cp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `npm run package`: stages exactly what runs in Azure into `.deploy/` (git-ignored): the compiled
 * functions and shared code, host.json, package.json, the lock file, and production dependencies only.
 * Publishing the repository root would upload the dev toolchain too (the pinned Node binary alone is
 * ~120 MB); publishing `.deploy/` with `func azure functionapp publish <app> --no-build` does not.
 */

const projectRoot = resolve(fileURLToPath(import.meta.url), '../..');

export interface StageOptions {
  readonly outDir: string;
  /** The compiled output to stage (default: the project's `dist/`). */
  readonly distDir?: string;
  /** Install production dependencies into the staged folder (`npm ci --omit=dev`). */
  readonly install: boolean;
}

export async function stageDeployment({ outDir, install, distDir = join(projectRoot, 'dist') }: StageOptions): Promise<void> {
  try {
    await stat(join(distDir, 'functions'));
  } catch {
    throw new Error('dist/functions is missing: run `npm run build` first');
  }
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  for (const folder of ['functions', 'shared']) {
    await cp(join(distDir, folder), join(outDir, 'dist', folder), {
      recursive: true,
      // Type declarations are for library consumers; the runtime needs the JavaScript (and its source maps).
      filter: (source) => !source.endsWith('.d.ts') && !source.endsWith('.d.ts.map'),
    });
  }
  for (const file of ['host.json', 'package.json', 'package-lock.json']) {
    await cp(join(projectRoot, file), join(outDir, file));
  }
  // Nothing in the staged folder is to be left out, but Core Tools reads .funcignore when one exists.
  await writeFile(join(outDir, '.funcignore'), 'local.settings.json\n');
  if (install) {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const result = spawnSync(npm, ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: outDir,
      stdio: 'inherit',
    });
    if (result.status !== 0) throw new Error(`npm ci --omit=dev failed in ${outDir}`);
  }
}

async function folderBytes(folder: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

async function main(): Promise<void> {
  const outDir = join(projectRoot, '.deploy');
  await stageDeployment({ outDir, install: true });
  const { name } = JSON.parse(await readFile(join(outDir, 'package.json'), 'utf8')) as { name: string };
  const megabytes = (await folderBytes(outDir)) / 1_048_576;
  console.log(`Staged ${name} in ${relative(process.cwd(), outDir) || '.'} (${megabytes.toFixed(1)} MB).`);
  console.log('Publish it with:  cd .deploy && func azure functionapp publish <app> --no-build');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(`package failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
