import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeCompiledServices, importCompiledApp } from '../tools/localHost/compiledFunctions.js';

/**
 * The local host finds the compiled functions the way the Functions worker does: it imports what package.json
 * `main` names (one file, as in the deployment artifact, or a glob, as in the repository's build) and takes
 * every function definition each file exports. The apps here are tiny ES modules written to a temp folder.
 */

const httpDefinition = (name: string, route: string): string =>
  `{ name: '${name}', route: '${route}', methods: ['GET'], authLevel: 'anonymous', handler: async () => ({ status: 200 }) }`;

async function writeApp(folder: string, main: string, files: Record<string, string>): Promise<string> {
  const root = join(folder, main.replace(/[^a-z]/gi, '-'));
  for (const [file, text] of Object.entries(files)) {
    await mkdir(join(root, file, '..'), { recursive: true });
    await writeFile(join(root, file), text);
  }
  await writeFile(join(root, 'package.json'), JSON.stringify({ type: 'module', main }));
  return root;
}

describe('the compiled functions the local host serves', () => {
  let folder: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'sts-compiled-'));
  });

  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('takes every definition one main module exports, and calls its closeServices on shutdown', async () => {
    const root = await writeApp(folder, 'dist/app.js', {
      'dist/app.js': [
        `export const alpha = ${httpDefinition('alpha', 'a')};`,
        `export const beta = ${httpDefinition('beta', 'b/{id}')};`,
        "export const sweep = { name: 'sweep', schedule: '0 7 * * * *', handler: async () => {} };",
        'export let closed = 0;',
        'export async function closeServices() { closed += 1; }',
      ].join('\n'),
    });

    const app = await importCompiledApp(root);
    expect(app.http.map((d) => `${d.name} ${d.route}`).sort()).toEqual(['alpha a', 'beta b/{id}']);
    expect(app.timers.map((t) => `${t.name} ${t.schedule}`)).toEqual(['sweep 0 7 * * * *']);

    await closeCompiledServices(root);
    const module = (await import(pathToFileURL(join(root, 'dist', 'app.js')).href)) as { closed: number };
    expect(module.closed).toBe(1);
  });

  it('takes the one definition of each file a glob main finds, and the composition root closes the services', async () => {
    const root = await writeApp(folder, 'dist/functions/*.js', {
      'dist/functions/one.js': `export const definition = ${httpDefinition('one', 'one')};`,
      'dist/functions/two.js': `export const definition = ${httpDefinition('two', 'two')};`,
      'dist/shared/services.js': 'export let closed = 0;\nexport async function closeServices() { closed += 1; }',
    });

    const app = await importCompiledApp(root);
    expect(app.http.map((d) => d.name)).toEqual(['one', 'two']);
    expect(app.timers).toEqual([]);

    await closeCompiledServices(root);
    const module = (await import(pathToFileURL(join(root, 'dist', 'shared', 'services.js')).href)) as {
      closed: number;
    };
    expect(module.closed).toBe(1);
  });

  it('refuses a main file that exports no function definition, naming the file', async () => {
    const root = await writeApp(folder, 'dist/empty.js', { 'dist/empty.js': 'export const version = 1;' });
    await expect(importCompiledApp(root)).rejects.toThrow(/dist\/empty\.js exports no function definition/);
  });
});
