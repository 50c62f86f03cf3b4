import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { coreToolsUpload } from '../../tooling/deploy/deployUploads.js';
import { projectRoot } from '../../tools/packageApp.js';

interface LockFile {
  readonly packages: Record<string, { readonly dev?: boolean }>;
}

/** The top-level node_modules entries the app needs at run time, from package-lock.json (dev: false). */
async function runtimePackages(): Promise<string[]> {
  const lock = JSON.parse(await readFile(join(projectRoot, 'package-lock.json'), 'utf8')) as LockFile;
  return Object.entries(lock.packages)
    .filter(
      ([path, entry]) => path.startsWith('node_modules/') && !path.slice(13).includes('/node_modules/') && !entry.dev,
    )
    .map(([path]) => path.slice(13))
    .sort();
}

/** The .funcignore block that keeps exactly those packages (scoped ones through their scope folder). */
function expectedBlock(runtime: readonly string[]): string[] {
  const lines = ['node_modules/*'];
  const scopes = [...new Set(runtime.filter((n) => n.startsWith('@')).map((n) => n.split('/')[0] ?? ''))].sort();
  for (const scope of scopes) {
    lines.push(`!node_modules/${scope}`, `node_modules/${scope}/*`);
    lines.push(...runtime.filter((n) => n.startsWith(`${scope}/`)).map((n) => `!node_modules/${n}`));
  }
  lines.push(...runtime.filter((n) => !n.startsWith('@')).map((n) => `!node_modules/${n}`));
  return lines;
}

describe('a func publish from the repository root (out of habit)', () => {
  it("keeps node_modules to the runtime packages of package-lock.json (the block is the lock file's)", async () => {
    const text = await readFile(join(projectRoot, '.funcignore'), 'utf8');
    const block = /# --- runtime packages only \(from package-lock.json\) ---\n([\s\S]*?)# --- end ---/.exec(text)?.[1];
    expect(block, 'the runtime-packages block of .funcignore').toBeDefined();
    expect(block?.trim().split('\n')).toEqual(expectedBlock(await runtimePackages()));
  });

  it('uploads no development package, every runtime package, and none of the repository tooling', async () => {
    const files = (await coreToolsUpload(projectRoot)).files;
    const pkg = JSON.parse(await readFile(join(projectRoot, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    const topLevel = new Set(
      files
        .filter((f) => f.startsWith('node_modules/'))
        .map((f) =>
          f
            .split('/')
            .slice(1, f.startsWith('node_modules/@') ? 3 : 2)
            .join('/'),
        ),
    );
    for (const dev of Object.keys(pkg.devDependencies)) expect(topLevel.has(dev), dev).toBe(false);
    expect([...topLevel].sort()).toEqual(await runtimePackages());
    const outsideApp = files.filter((f) => !f.startsWith('node_modules/') && !f.startsWith('dist/'));
    expect(outsideApp.sort()).toEqual(['host.json', 'package.json']);
  });
});
