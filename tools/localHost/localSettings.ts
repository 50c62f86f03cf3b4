import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { projectRoot } from './projectPaths.js';

/** `local.settings.json` as Core Tools reads it (git-ignored; copy `local.settings.sample.json`). */
export const localSettingsPath = join(projectRoot, 'local.settings.json');

export interface AppliedLocalSettings {
  /** False when there is no `local.settings.json`. */
  readonly found: boolean;
  /** Names copied into the environment (values are never reported). */
  readonly applied: readonly string[];
  /** `Host.LocalHttpPort`, when set. */
  readonly localHttpPort: number | undefined;
}

/**
 * Copies `Values` from `local.settings.json` into `env` the way `func start` does: a variable already set in
 * the environment wins. Throws with the file name when the file exists but is not valid JSON.
 *
 * @example
 * await applyLocalSettings(process.env); // { found: true, applied: ['STS_ISSUER', …], localHttpPort: 7071 }
 */
export async function applyLocalSettings(
  env: Record<string, string | undefined>,
  path: string = localSettingsPath,
): Promise<AppliedLocalSettings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { found: false, applied: [], localHttpPort: undefined };
  }
  let parsed: { Values?: Record<string, unknown>; Host?: { LocalHttpPort?: unknown } };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new Error(`${path} is not valid JSON`);
  }
  const applied: string[] = [];
  for (const [name, value] of Object.entries(parsed.Values ?? {})) {
    if (
      env[name] !== undefined ||
      (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
    )
      continue;
    env[name] = String(value);
    applied.push(name);
  }
  const port = parsed.Host?.LocalHttpPort;
  return { found: true, applied, localHttpPort: typeof port === 'number' && Number.isInteger(port) ? port : undefined };
}
