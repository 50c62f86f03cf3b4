import { cp, mkdir, readdir, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { projectRoot } from '../../tools/localHost/projectPaths.js';

/**
 * The compiled app the benchmark measures: a private copy of `dist/` (and `package.json`, whose `main` names
 * the function files), taken once at the start. Other people rebuild `dist/` while a run is under way; a
 * process that imported half of one build and half of the next would measure nonsense (or refuse valid keys),
 * so every benchmark process imports this copy instead. It lives under the git-ignored `bench-results/` so that
 * `node_modules` still resolves from it.
 */

/** Environment variable through which the benchmark's children find the copy. */
export const APP_ROOT_ENV = 'BENCH_APP_ROOT';

/** The app root a benchmark child should import from: the snapshot when set, else the project. */
export function benchAppRoot(): string {
  return process.env[APP_ROOT_ENV] || projectRoot;
}

export interface AppSnapshot {
  readonly root: string;
  remove(): Promise<void>;
}

/**
 * Copies `dist/` (JavaScript only) and `package.json` into `bench-results/.app-<pid>/`, retrying when `dist/`
 * changed during the copy (a build by someone else finishing at that moment).
 */
export async function snapshotCompiledApp(): Promise<AppSnapshot> {
  const root = join(projectRoot, 'bench-results', `.app-${process.pid}`);
  const dist = join(projectRoot, 'dist');
  for (let attempt = 1; ; attempt += 1) {
    const before = await newestChange(dist);
    await rm(root, { recursive: true, force: true });
    await mkdir(root, { recursive: true });
    await cp(dist, join(root, 'dist'), { recursive: true, filter: (source) => !/\.(?:map|d\.ts)$/.test(source) });
    await writeFile(join(root, 'package.json'), await readFile(join(projectRoot, 'package.json')));
    if ((await newestChange(dist)) === before && Date.now() - before > 1_000) break;
    if (attempt >= 5) throw new Error('dist/ keeps changing (someone is rebuilding): try again in a moment');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
  return { root, remove: () => rm(root, { recursive: true, force: true }) };
}

/** The latest modification time (ms) of any file under `folder`. */
async function newestChange(folder: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    newest = Math.max(newest, (await stat(join(entry.parentPath, entry.name))).mtimeMs);
  }
  return newest;
}
