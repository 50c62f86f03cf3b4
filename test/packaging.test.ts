import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageDeployment } from '../tools/packageApp.js';

const run = promisify(execFile);

/**
 * The deployment package is what Azure runs: the compiled app with production dependencies only. This
 * compiles the app, stages it outside the repository (so nothing resolves from the dev node_modules) and
 * loads every function module with Node 22, as the Functions worker would.
 */
describe('npm run package', () => {
  let work: string;
  let staged: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'sts-package-'));
    const distDir = join(work, 'dist');
    await run('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', distDir]);
    staged = join(work, 'deploy');
    await stageDeployment({ outDir: staged, distDir, install: true });
  }, 180_000);

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('contains the compiled app and no sources, tests or dev tools', async () => {
    const files = (await readdir(staged, { recursive: true })).map(String).filter((f) => !f.startsWith('node_modules'));
    expect(files).toEqual(expect.arrayContaining(['host.json', 'package.json', 'package-lock.json', join('dist', 'functions', 'issueToken.js')]));
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('test') || f.startsWith('tools') || f.startsWith('tooling') || f.startsWith('infra'))).toEqual([]);
    const modules = await readdir(join(staged, 'node_modules'));
    for (const devTool of ['node', 'vitest', 'typescript', 'azurite', 'tsx', 'autocannon']) expect(modules).not.toContain(devTool);
    expect(modules).toContain('jose');
  });

  it('loads every function with production dependencies only', async () => {
    const probe = `
      const { readdirSync } = await import('node:fs');
      const names = [];
      for (const file of readdirSync('dist/functions').filter((f) => f.endsWith('.js'))) {
        const module = await import('./dist/functions/' + file);
        names.push(module.definition.name + ' ' + module.definition.route);
      }
      console.log(JSON.stringify(names.sort()));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: staged });
    const loaded = JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as string[];
    expect(loaded).toEqual([
      'issueLimitedAccessToken sts/v1.0/issueLimitedAccessToken',
      'issueToken sts/v1.0/issueToken',
      'jwks .well-known/jwks.json',
      'mixedRealityToken accounts/{accountId}/token',
      'openidConfiguration .well-known/openid-configuration',
      'wrapToken WRAPv0.9',
    ]);
  });
});
