import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import azureFunctions from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { importFunctionFiles, type FunctionFile } from './support/localHostFixture.js';

/**
 * Every function's registration against ONE expected table (STYLE.md habit 7, contracts.md §1.1): the routes
 * the real APIs use, their methods, anonymous auth (no client sends a function key), and the app wiring the
 * Functions host reads (package.json `main`, host.json).
 */
const EXPECTED = [
  { name: 'mixedRealityToken', route: 'accounts/{accountId}/token', methods: ['GET'] },
  { name: 'issueToken', route: 'sts/v1.0/issueToken', methods: ['POST'] },
  { name: 'issueLimitedAccessToken', route: 'sts/v1.0/issueLimitedAccessToken', methods: ['POST'] },
  { name: 'wrapToken', route: 'WRAPv0.9', methods: ['POST'] },
  { name: 'openidConfiguration', route: '.well-known/openid-configuration', methods: ['GET'] },
  { name: 'jwks', route: '.well-known/jwks.json', methods: ['GET'] },
] as const;

const root = join(import.meta.dirname, '..');
const readJson = async (file: string): Promise<Record<string, unknown>> =>
  JSON.parse(await readFile(join(root, file), 'utf8')) as Record<string, unknown>;

let files: FunctionFile[];
const registered: { name: string; options: unknown }[] = [];
/** Every call the function files make on `app`, in order: what the worker sees while it loads the app. */
const appCalls: string[] = [];

beforeAll(async () => {
  // Record what each file hands to app.http (outside the worker the package only warns and skips).
  vi.spyOn(azureFunctions.app, 'http').mockImplementation((name, options) => {
    appCalls.push(`http ${name}`);
    registered.push({ name, options });
  });
  vi.spyOn(azureFunctions.app, 'setup').mockImplementation((options) => {
    appCalls.push(`setup ${JSON.stringify(options)}`);
  });
  files = await importFunctionFiles();
});
afterAll(() => vi.restoreAllMocks());

describe('function registrations', () => {
  it('has exactly one file per expected function, named after it', () => {
    expect(files.map((f) => f.file).sort()).toEqual(EXPECTED.map((e) => e.name).sort());
  });

  it.each(EXPECTED)('$name: route $route, methods $methods, anonymous', (expected) => {
    const file = files.find((f) => f.file === expected.name);
    expect(file, `functions/${expected.name}.ts`).toBeDefined();
    const { definition } = file as FunctionFile;
    expect({ name: definition.name, route: definition.route, methods: definition.methods, authLevel: definition.authLevel }).toEqual({
      name: expected.name,
      route: expected.route,
      methods: [...expected.methods],
      authLevel: 'anonymous',
    });
    expect(typeof definition.handler).toBe('function');
  });

  it('registers every exported definition with app.http, under its own name, unchanged', () => {
    expect(registered.map((r) => r.name).sort()).toEqual(EXPECTED.map((e) => e.name).sort());
    for (const { definition } of files) {
      expect(registered.find((r) => r.name === definition.name)?.options).toBe(definition);
    }
  });
});

describe('HTTP streaming', () => {
  it('is switched on with app.setup once, before any function registers (the library refuses it later)', () => {
    expect(appCalls[0]).toBe('setup {"enableHttpStream":true}');
    expect(appCalls.filter((call) => call.startsWith('setup '))).toHaveLength(1);
    expect(appCalls.slice(1).sort()).toEqual(EXPECTED.map((e) => `http ${e.name}`).sort());
  });
});

describe('app wiring read by the Functions host', () => {
  it('package.json main points at the compiled file of every function', async () => {
    const manifest = await readJson('package.json');
    const build = await readJson('tsconfig.build.json');
    const main = manifest.main as string;
    const compilerOptions = ((await readJson('tsconfig.json')).compilerOptions ?? {}) as { outDir?: string; rootDir?: string };
    // The build keeps the source layout under outDir: functions/x.ts -> dist/functions/x.js.
    expect(compilerOptions).toMatchObject({ outDir: 'dist', rootDir: '.' });
    expect(build.include).toEqual(expect.arrayContaining(['functions/**/*.ts']));
    const pattern = new RegExp(`^${main.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
    for (const { file } of files) expect(`dist/functions/${file}.js`).toMatch(pattern);
    expect('dist/shared/config.js').not.toMatch(pattern);
  });

  it('host.json: version 2.0, no /api route prefix, extension bundle [4.*, 5.0.0)', async () => {
    const host = await readJson('host.json');
    expect(host.version).toBe('2.0');
    expect(host.extensions).toMatchObject({ http: { routePrefix: '' } });
    expect(host.extensionBundle).toEqual({ id: 'Microsoft.Azure.Functions.ExtensionBundle', version: '[4.*, 5.0.0)' });
  });
});
