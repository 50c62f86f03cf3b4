import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import azureFunctions from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { flowCatalogue } from '../shared/flowCatalogue.js';
import { buildDiscoveryDocument } from '../shared/tokens/discoveryDocument.js';
import {
  importFunctionFiles,
  importTimerFiles,
  startTestHost,
  type FunctionFile,
  type TimerFunctionFile,
} from './support/localHostFixture.js';

/**
 * Every function's registration against ONE expected table, written here by hand from the real APIs (not
 * read from the flow catalogue, so a wrong declaration fails): the routes, their methods, anonymous auth (no
 * client sends a function key), the correlation header and error body shape each API answers with, where
 * the discovery document lists it, and the app wiring the Functions host reads (package.json `main`, host.json).
 */
const EXPECTED = [
  {
    name: 'mixedRealityToken',
    route: 'accounts/{accountId}/token',
    methods: ['GET'],
    correlationHeader: 'ms-cv',
    errorShape: 'mixedReality',
    discovery: { member: 'mixed_reality_token_endpoint', url: 'https://sts.test.example/accounts/{accountId}/token' },
  },
  {
    name: 'issueToken',
    route: 'sts/v1.0/issueToken',
    methods: ['POST'],
    correlationHeader: 'apim-request-id',
    errorShape: 'cognitive',
    discovery: { member: 'cognitive_services_token_endpoint', url: 'https://sts.test.example/sts/v1.0/issueToken' },
  },
  {
    name: 'issueLimitedAccessToken',
    route: 'sts/v1.0/issueLimitedAccessToken',
    methods: ['POST'],
    correlationHeader: 'apim-request-id',
    errorShape: 'cognitive',
    discovery: {
      member: 'limited_access_token_endpoint',
      url: 'https://sts.test.example/sts/v1.0/issueLimitedAccessToken',
    },
  },
  {
    name: 'wrapToken',
    route: 'WRAPv0.9',
    methods: ['POST'],
    correlationHeader: 'request-id',
    errorShape: 'wrap',
    discovery: { member: 'wrap_token_endpoint', url: 'https://contoso-sb.test.example/WRAPv0.9' },
  },
  {
    name: 'openidConfiguration',
    route: '.well-known/openid-configuration',
    methods: ['GET'],
    correlationHeader: 'x-ms-request-id',
    errorShape: 'oauthJson',
  },
  {
    name: 'jwks',
    route: '.well-known/jwks.json',
    methods: ['GET'],
    correlationHeader: 'x-ms-request-id',
    errorShape: 'oauthJson',
  },
] as const;

/** Functions that are not token flows (not in the flow catalogue): the operator's health endpoint. */
const OPERATIONS = [{ name: 'health', route: 'health', methods: ['GET'] }] as const;
const ALL_NAMES = [...EXPECTED.map((e) => e.name), ...OPERATIONS.map((o) => o.name)].sort();

/** What a client sees of each error body shape. */
const ERROR_BODY: Record<string, (answer: { body: string; headers: Headers }) => void> = {
  mixedReality: ({ body, headers }) => {
    expect(body).toBe('');
    expect(headers.get('www-authenticate')).toMatch(/^Invalid (token|request): /);
  },
  cognitive: ({ body }) =>
    expect(JSON.parse(body)).toEqual({ error: { code: expect.any(String), message: expect.any(String) } }),
  wrap: ({ body }) => expect(body).toMatch(/^Error:Code:\d{3}:SubCode:T0:Detail:.* :TraceID:[0-9a-f-]{36}:TimeStamp:/),
};

const root = join(import.meta.dirname, '..');
const readJson = async (file: string): Promise<Record<string, unknown>> =>
  JSON.parse(await readFile(join(root, file), 'utf8')) as Record<string, unknown>;

let files: FunctionFile[];
let timerFiles: TimerFunctionFile[];
const registered: { name: string; options: unknown }[] = [];
const registeredTimers: { name: string; options: { schedule: string; handler: unknown } }[] = [];
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
  vi.spyOn(azureFunctions.app, 'timer').mockImplementation((name, options) => {
    appCalls.push(`timer ${name}`);
    registeredTimers.push({ name, options });
  });
  files = await importFunctionFiles();
  timerFiles = await importTimerFiles();
});
afterAll(() => vi.restoreAllMocks());

describe('function registrations', () => {
  it('has exactly one file per expected function, named after it', () => {
    expect(files.map((f) => f.file).sort()).toEqual(ALL_NAMES);
  });

  it.each([...EXPECTED, ...OPERATIONS])('$name: route $route, methods $methods, anonymous', (expected) => {
    const file = files.find((f) => f.file === expected.name);
    expect(file, `functions/${expected.name}.ts`).toBeDefined();
    const { definition } = file as FunctionFile;
    expect({
      name: definition.name,
      route: definition.route,
      methods: definition.methods,
      authLevel: definition.authLevel,
    }).toEqual({
      name: expected.name,
      route: expected.route,
      // OPTIONS on every flow's route, for browser preflights (docs/cors.md); /health is for operators only.
      methods: 'errorShape' in expected ? [...expected.methods, 'OPTIONS'] : [...expected.methods],
      authLevel: 'anonymous',
    });
    expect(typeof definition.handler).toBe('function');
  });

  it('registers every exported definition with app.http, under its own name, unchanged', () => {
    expect(registered.map((r) => r.name).sort()).toEqual(ALL_NAMES);
    for (const { definition } of files) {
      expect(registered.find((r) => r.name === definition.name)?.options).toBe(definition);
    }
  });
});

describe('timer functions', () => {
  it('ledgerRetention: hourly at minute 7 (UTC), registered with app.timer with its own handler', () => {
    expect(timerFiles.map((f) => [f.file, f.definition.name, f.definition.schedule])).toEqual([
      ['ledgerRetention', 'ledgerRetention', '0 7 * * * *'],
    ]);
    expect(registeredTimers.map((r) => [r.name, r.options.schedule])).toEqual([['ledgerRetention', '0 7 * * * *']]);
    expect(registeredTimers[0]?.options.handler).toBe(timerFiles[0]?.definition.handler);
  });
});

describe('the flow catalogue', () => {
  it("declares exactly the expected functions, and each with its API's error shape", () => {
    expect(Object.keys(flowCatalogue).sort()).toEqual(EXPECTED.map((e) => e.name).sort());
    for (const expected of EXPECTED)
      expect(flowCatalogue[expected.name].errorShape, expected.name).toBe(expected.errorShape);
  });

  it('the discovery document lists every token endpoint, under its member, on its configured host', () => {
    const document = buildDiscoveryDocument({
      issuer: 'https://sts.test.example/',
      wrapIssuer: 'https://contoso-sb.test.example',
    });
    const endpoints = Object.fromEntries(
      Object.entries(document).filter(([member]) => member.endsWith('_token_endpoint')),
    );
    expect(endpoints).toEqual(
      Object.fromEntries(EXPECTED.flatMap((e) => ('discovery' in e ? [[e.discovery.member, e.discovery.url]] : []))),
    );
  });

  it("each function answers with its API's correlation header; a token request without a credential is refused in its shape", async () => {
    const host = await startTestHost({ env: { STS_ISSUER: 'https://sts.test.example/' } });
    try {
      for (const expected of EXPECTED) {
        const path = expected.route.replace('{accountId}', '3f616cd1-c82e-4d20-9118-29717f9b97f9');
        const response = await fetch(`${host.url}/${path}`, { method: expected.methods[0] });
        const answer = { body: await response.text(), headers: response.headers };
        expect(
          response.headers.get(expected.correlationHeader),
          `${expected.name}: ${expected.correlationHeader}`,
        ).toBeTruthy();
        for (const other of ['ms-cv', 'apim-request-id', 'request-id', 'x-ms-request-id']) {
          if (other !== expected.correlationHeader)
            expect(response.headers.get(other), `${expected.name}: no ${other}`).toBeNull();
        }
        const checkBody = ERROR_BODY[expected.errorShape];
        if (checkBody) {
          expect(response.status, expected.name).toBeGreaterThanOrEqual(400);
          checkBody(answer);
        }
      }
    } finally {
      await host.close();
    }
  });
});

describe('HTTP streaming', () => {
  it('is switched on with app.setup once, before any function registers (the library refuses it later)', () => {
    expect(appCalls[0]).toBe('setup {"enableHttpStream":true}');
    expect(appCalls.filter((call) => call.startsWith('setup '))).toHaveLength(1);
    expect(appCalls.slice(1).sort()).toEqual(
      [...ALL_NAMES.map((name) => `http ${name}`), 'timer ledgerRetention'].sort(),
    );
  });
});

describe('app wiring read by the Functions host', () => {
  it('package.json main points at the compiled file of every function', async () => {
    const manifest = await readJson('package.json');
    const build = await readJson('tsconfig.build.json');
    const main = manifest.main as string;
    const compilerOptions = ((await readJson('tsconfig.json')).compilerOptions ?? {}) as {
      outDir?: string;
      rootDir?: string;
    };
    // The build keeps the source layout under outDir: functions/x.ts -> dist/functions/x.js.
    expect(compilerOptions).toMatchObject({ outDir: 'dist', rootDir: '.' });
    expect(build.include).toEqual(expect.arrayContaining(['functions/**/*.ts']));
    const pattern = new RegExp(
      `^${main
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]*')}$`,
    );
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
