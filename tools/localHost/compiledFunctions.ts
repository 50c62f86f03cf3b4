import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HttpFunctionLike } from './localHost.js';
import type { TimerFunctionLike } from './localTimers.js';
import { projectRoot } from './projectPaths.js';

/**
 * Finds the compiled function files the way the Functions worker does (package.json `main`, a path or a glob:
 * `dist/functions/*.js` in the repository's build, `dist/app.js` in the deployment artifact), imports each
 * and collects every function definition it exports: a file of `functions/` exports its one `definition`, the
 * artifact's `dist/app.js` exports them all, each under its function's name. Importing also runs the files'
 * `app.http(...)` (or `app.timer(...)`), which outside the Functions worker only registers in test mode.
 *
 * @example
 * const definitions = await importCompiledDefinitions(); // [{ name: 'issueToken', route: 'sts/v1.0/issueToken', … }, …]
 */
export async function importCompiledDefinitions(root: string = projectRoot): Promise<HttpFunctionLike[]> {
  return (await importCompiledApp(root)).http;
}

/** Every compiled function: the HTTP ones (served) and the timer ones (run on their schedule, localTimers.ts). */
export interface CompiledApp {
  readonly http: HttpFunctionLike[];
  readonly timers: TimerFunctionLike[];
}

/** As {@link importCompiledDefinitions}, with the timer functions too. */
export async function importCompiledApp(root: string = projectRoot): Promise<CompiledApp> {
  const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { main?: unknown };
  if (typeof manifest.main !== 'string' || manifest.main === '') throw new Error('package.json has no "main"');
  const files = await expandMain(root, manifest.main);
  if (files.length === 0) {
    throw new Error(`package.json "main" (${manifest.main}) matches no file: run \`npm run build\` first`);
  }
  const http: HttpFunctionLike[] = [];
  const timers: TimerFunctionLike[] = [];
  for (const file of files) {
    const module = (await withoutTestModeWarnings(() => import(pathToFileURL(file).href))) as Record<string, unknown>;
    let found = 0;
    for (const value of new Set(Object.values(module))) {
      if (isHttpFunctionLike(value)) http.push(value);
      else if (isTimerFunctionLike(value)) timers.push(value);
      else continue;
      found += 1;
    }
    if (found === 0) {
      throw new Error(
        `${relative(root, file)} exports no function definition (name, route, methods, authLevel, handler; or name, schedule, handler)`,
      );
    }
  }
  return { http, timers };
}

/** True for an object shaped like a timer function's `definition`: a name, an NCRONTAB schedule and a handler. */
export function isTimerFunctionLike(value: unknown): value is TimerFunctionLike {
  if (!value || typeof value !== 'object') return false;
  const d = value as Record<string, unknown>;
  return (
    typeof d.name === 'string' && typeof d.schedule === 'string' && typeof d.handler === 'function' && !('route' in d)
  );
}

/**
 * Graceful shutdown of the compiled app's services (ledger flush, upstream pools), as the Functions host's
 * `appTerminate` hook does in Azure: the `closeServices` that a `main` module exports (the artifact's
 * `dist/app.js`), else the compiled composition root's, `dist/shared/services.js` (the repository's build).
 */
export async function closeCompiledServices(root: string = projectRoot): Promise<void> {
  const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { main?: unknown };
  const mainFiles =
    typeof manifest.main === 'string' && manifest.main !== '' ? await expandMain(root, manifest.main) : [];
  for (const file of mainFiles) {
    const module = (await withoutTestModeWarnings(() => import(pathToFileURL(file).href))) as {
      closeServices?: unknown;
    };
    if (typeof module.closeServices === 'function') {
      await (module.closeServices as () => Promise<void>)();
      return;
    }
  }
  const module = (await import(pathToFileURL(join(root, 'dist', 'shared', 'services.js')).href)) as {
    closeServices?: () => Promise<void>;
  };
  await module.closeServices?.();
}

/**
 * Outside the Functions worker, `app.http(...)` warns that `@azure/functions` is in test mode and skips the
 * registration, once per function, and `app.setup({ enableHttpStream: true })` logs "HTTP streaming enabled." at
 * debug level. That is expected here (the local host serves the exported definitions and always hands the body
 * over), so those lines, and only those, are not printed.
 */
export async function withoutTestModeWarnings<T>(work: () => Promise<T>): Promise<T> {
  const { warn, debug } = console;
  console.warn = (...args: unknown[]) => {
    const first = typeof args[0] === 'string' ? args[0] : '';
    if (
      /^WARNING: (Failed to detect the Azure Functions runtime|Skipping call to register (function|appTerminate hook))/.test(
        first,
      )
    )
      return;
    warn(...args);
  };
  console.debug = (...args: unknown[]) => {
    if (args.length === 1 && args[0] === 'HTTP streaming enabled.') return;
    debug(...args);
  };
  try {
    return await work();
  } finally {
    console.warn = warn;
    console.debug = debug;
  }
}

/** Supports what `main` holds in practice: one file (`dist/app.js`), or a `*` in the file-name part (`dist/functions/*.js`). */
async function expandMain(root: string, main: string): Promise<string[]> {
  const full = join(root, main);
  if (!main.includes('*')) return [full];
  if (dirname(main).includes('*')) throw new Error(`package.json "main" (${main}): only the file name may contain "*"`);
  const pattern = new RegExp(`^${basename(main).split('*').map(escapeRegExp).join('[^/]*')}$`);
  const folder = dirname(full);
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return [];
  }
  return names
    .filter((name) => pattern.test(name))
    .sort()
    .map((name) => join(folder, name));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** True for an object shaped like a function `definition` (the checks `importCompiledDefinitions` applies). */
export function isHttpFunctionLike(value: unknown): value is HttpFunctionLike {
  if (!value || typeof value !== 'object') return false;
  const d = value as Record<string, unknown>;
  return (
    typeof d.name === 'string' &&
    typeof d.route === 'string' &&
    Array.isArray(d.methods) &&
    d.methods.every((m) => typeof m === 'string') &&
    typeof d.authLevel === 'string' &&
    typeof d.handler === 'function'
  );
}
