import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  isHttpFunctionLike,
  isTimerFunctionLike,
  withoutTestModeWarnings,
} from '../../tools/localHost/compiledFunctions.js';
import type { StsTimerDefinition } from '../../shared/app/retentionTimer.js';
import { startLocalHost, type HttpFunctionLike, type LocalHostOptions } from '../../tools/localHost/localHost.js';
import { ensureLocalTlsCertificate } from '../../tools/localHost/tlsCertificate.js';
import { loadConfig } from '../../shared/config.js';
import type { StsFunctionDefinition } from '../../shared/app/stsFunction.js';
import { createServices, type StsServices } from '../../shared/services.js';

/**
 * The app served over real HTTP(S) on a free loopback port, for integration tests: the local host with every
 * function definition imported from the TypeScript sources (`functions/*.ts`, no build needed).
 *
 * Each definition is served bound to the host's own services (`definition.handlerFor`), created from `env`
 * (or ready-made `services`, e.g. on a frozen clock), so the process environment and the process's services
 * are never touched and several test hosts may run at once.
 */

export interface TestHostOptions {
  /**
   * Settings for the handlers, as in app settings, on top of the test defaults: ledger off and an empty
   * embedded store in a temp folder (pass `STS_LOCAL_STORE_PATH` to use a store you provisioned).
   */
  readonly env?: Record<string, string>;
  /** Ready-made services (ignores `env`), e.g. `createServices(config, () => frozenNow)`. */
  readonly services?: StsServices | Promise<StsServices>;
  /** What to serve; default every definition in `functions/`. */
  readonly definitions?: readonly StsFunctionDefinition[];
  /** Serve TLS with the local host's self-signed certificate; trust it with the returned `ca`. */
  readonly https?: boolean;
  /** Limits and the like, passed to the local host. */
  readonly host?: Omit<LocalHostOptions, 'definitions' | 'port' | 'https' | 'log'>;
}

export interface TestHost {
  /** e.g. `http://127.0.0.1:54321`. */
  readonly url: string;
  /** Every line the host logged (request lines and handler log lines), for assertions. */
  readonly logLines: readonly string[];
  /** The certificate to trust (undici: `new Agent({ connect: { ca } })`) when `https` was asked for. */
  readonly ca: string | undefined;
  /** Stops the host, removes the temp store. */
  close(): Promise<void>;
}

export const TEST_HOST_DEFAULT_ENV = { STS_LEDGER_MODE: 'off' } as const;

const functionsFolder = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'functions');

/** One imported function file: its name (without `.ts`) and the `definition` it exports. */
export interface FunctionFile {
  readonly file: string;
  readonly definition: StsFunctionDefinition;
}

/** One imported timer function file. */
export interface TimerFunctionFile {
  readonly file: string;
  readonly definition: StsTimerDefinition;
}

/** Imports every `functions/*.ts` and returns each HTTP file's exported `definition`, sorted by file name. */
export async function importFunctionFiles(): Promise<FunctionFile[]> {
  return (await importAllFunctionFiles()).http;
}

/** Imports every `functions/*.ts` and returns each timer file's exported `definition`, sorted by file name. */
export async function importTimerFiles(): Promise<TimerFunctionFile[]> {
  return (await importAllFunctionFiles()).timers;
}

async function importAllFunctionFiles(): Promise<{ http: FunctionFile[]; timers: TimerFunctionFile[] }> {
  const names = (await readdir(functionsFolder))
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .sort();
  const http: FunctionFile[] = [];
  const timers: TimerFunctionFile[] = [];
  for (const name of names) {
    const module = (await withoutTestModeWarnings(() => import(pathToFileURL(join(functionsFolder, name)).href))) as {
      definition?: unknown;
    };
    if (isStsFunctionDefinition(module.definition))
      http.push({ file: basename(name, '.ts'), definition: module.definition });
    else if (isStsTimerDefinition(module.definition))
      timers.push({ file: basename(name, '.ts'), definition: module.definition });
    else throw new Error(`functions/${name} does not export a function definition`);
  }
  return { http, timers };
}

/**
 * Starts the app on a free port.
 *
 * @example
 * const host = await startTestHost({ env: { STS_LOCAL_STORE_PATH: credentials.storePath } });
 * const response = await request(`${host.url}/sts/v1.0/issueToken`, { method: 'POST', headers: { … } });
 * await host.close();
 */
export async function startTestHost(options: TestHostOptions = {}): Promise<TestHost> {
  let tempStore: string | undefined;
  try {
    let services: StsServices;
    if (options.services) {
      services = await options.services;
    } else {
      const env: Record<string, string> = { ...TEST_HOST_DEFAULT_ENV, ...options.env };
      if (!env.STS_LOCAL_STORE_PATH) {
        tempStore = await mkdtemp(join(tmpdir(), 'sts-test-host-'));
        env.STS_LOCAL_STORE_PATH = join(tempStore, 'secrets.json');
      }
      services = await createServices(loadConfig(env));
    }

    const definitions: HttpFunctionLike[] = (
      options.definitions ?? (await importFunctionFiles()).map((f) => f.definition)
    ).map((definition) => ({ ...definition, handler: definition.handlerFor(services) }));
    const logLines: string[] = [];
    const running = await startLocalHost({
      ...options.host,
      definitions,
      host: '127.0.0.1',
      port: 0,
      https: options.https ?? false,
      log: (line) => logLines.push(line),
    });
    const ca = options.https ? (await ensureLocalTlsCertificate()).cert : undefined;

    let closed = false;
    return {
      url: running.url,
      logLines,
      ca,
      async close() {
        if (closed) return;
        closed = true;
        try {
          await running.close();
        } finally {
          if (tempStore) await rm(tempStore, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    if (tempStore) await rm(tempStore, { recursive: true, force: true });
    throw error;
  }
}

/** A timer definition made by `defineLedgerRetentionTimer`: runnable with services of its own. */
function isStsTimerDefinition(value: unknown): value is StsTimerDefinition {
  return isTimerFunctionLike(value) && typeof (value as { runWith?: unknown }).runWith === 'function';
}

/** A function definition made by `defineStsFunction`: servable, and bindable to services of its own. */
function isStsFunctionDefinition(value: unknown): value is StsFunctionDefinition {
  return isHttpFunctionLike(value) && typeof (value as { handlerFor?: unknown }).handlerFor === 'function';
}
