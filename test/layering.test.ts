import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The product's imports point one way (docs/layout.md): `functions/` uses `shared/`, `shared/` uses none of
 * `functions/`, `tools/`, `tooling/` or `test/`, and inside `shared/` no module imports, even for a type or
 * lazily, one that imports it back, directly or round a loop. A module is a folder of `shared/` (all its files
 * together) or a file directly in `shared/` (a one-file module: `errors.ts`, `config.ts`, `services.ts`, ...).
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PRODUCT_FOLDERS = ['functions', 'shared'];
const TOP_FOLDERS = ['functions', 'shared', 'tools', 'tooling', 'test'];

interface ImportArrow {
  readonly from: string;
  readonly to: string;
}

function typeScriptFilesUnder(folder: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(join(ROOT, folder))) {
    const path = join(folder, name);
    if (statSync(join(ROOT, path)).isDirectory()) found.push(...typeScriptFilesUnder(path));
    else if (name.endsWith('.ts')) found.push(path);
  }
  return found;
}

/** Every relative import of `file` (static, `export … from`, `import type`, dynamic `import()`), as repository paths. */
function importsOf(file: string): ImportArrow[] {
  const info = ts.preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, true);
  return info.importedFiles
    .map((imported) => imported.fileName)
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => ({ from: file, to: normalize(join(dirname(file), specifier)).replace(/\.js$/, '.ts') }));
}

const topFolderOf = (path: string): string => path.split(sep)[0] ?? path;

/** The module of a file in `shared/`: its folder right under `shared/`, or the file itself when it sits there. */
function moduleOf(path: string): string {
  const parts = path.split(sep);
  return parts.length > 2 ? parts.slice(0, 2).join('/') : parts.join('/').replace(/\.ts$/, '');
}

/** The cycles of a directed graph given as arrows between modules: each strongly connected set of two or more. */
function cyclesOf(arrows: readonly { readonly from: string; readonly to: string }[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const { from, to } of arrows) {
    if (!next.has(from)) next.set(from, new Set());
    if (!next.has(to)) next.set(to, new Set());
    if (from !== to) next.get(from)?.add(to);
  }
  // Tarjan's strongly connected components.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const target of next.get(node) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(node, Math.min(low.get(node) ?? 0, low.get(target) ?? 0));
      } else if (onStack.has(target)) {
        low.set(node, Math.min(low.get(node) ?? 0, index.get(target) ?? 0));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string | undefined;
      do {
        member = stack.pop();
        if (member === undefined) break;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const node of next.keys()) if (!index.has(node)) visit(node);
  return cycles;
}

const productFiles = PRODUCT_FOLDERS.flatMap(typeScriptFilesUnder);
const arrows = productFiles.flatMap(importsOf);

describe('the layering of the product', () => {
  it('reads the imports it judges', () => {
    // A parser that found nothing would pass every check below.
    expect(productFiles.length).toBeGreaterThan(50);
    expect(arrows).toContainEqual({ from: join('functions', 'jwks.ts'), to: join('shared', 'app', 'stsFunction.ts') });
    expect(arrows.some((arrow) => arrow.from === join('shared', 'services.ts'))).toBe(true);
  });

  it('points from functions/ to shared/ only, and from shared/ to nothing outside it', () => {
    const backwards = arrows.filter(({ from, to }) => {
      const source = topFolderOf(from);
      const target = topFolderOf(to);
      if (!TOP_FOLDERS.includes(target)) return true; // above the repository's folders: never
      if (source === 'shared') return target !== 'shared';
      return target !== 'shared' && target !== 'functions';
    });
    expect(backwards.map(({ from, to }) => `${from} → ${to}`)).toEqual([]);
  });

  it('has no function file importing another', () => {
    const between = arrows.filter(
      ({ from, to }) => topFolderOf(from) === 'functions' && topFolderOf(to) === 'functions',
    );
    expect(between.map(({ from, to }) => `${from} → ${to}`)).toEqual([]);
  });

  it('has no cycle between the modules of shared/', () => {
    const inShared = arrows
      .filter(({ from, to }) => topFolderOf(from) === 'shared' && topFolderOf(to) === 'shared')
      .map(({ from, to }) => ({
        from: moduleOf(from),
        to: moduleOf(to),
        line: `${from} → ${relative(ROOT, join(ROOT, to))}`,
      }))
      .filter(({ from, to }) => from !== to);
    const cycles = cyclesOf(inShared);
    const explained = cycles.map((members) =>
      inShared
        .filter(({ from, to }) => members.includes(from) && members.includes(to))
        .map(({ line }) => line)
        .sort(),
    );
    expect(explained).toEqual([]);
  });
});

describe('the cycle finder', () => {
  it('finds a loop round three modules and nothing in a chain', () => {
    const loop = [
      { from: 'shared/config', to: 'shared/http' },
      { from: 'shared/http', to: 'shared/services' },
      { from: 'shared/services', to: 'shared/config' },
      { from: 'shared/services', to: 'shared/errors' },
    ];
    expect(cyclesOf(loop)).toEqual([['shared/config', 'shared/http', 'shared/services']]);
    expect(cyclesOf(loop.slice(1))).toEqual([]);
  });

  it('names a folder of shared/ and a file directly in it as modules', () => {
    expect(moduleOf(join('shared', 'http', 'cors.ts'))).toBe('shared/http');
    expect(moduleOf(join('shared', 'config.ts'))).toBe('shared/config');
  });
});
