import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { credentialKinds, keyedCredentialKinds, type KeyedCredentialKind } from '../credentials/credentialKinds.js';
import { ProvisioningError } from '../credentials/provisioningError.js';
import { openAdminSecretStore, type AdminSecretStore } from '../adminSecretStore.js';
import { UsageError } from '../command.js';

/**
 * What the credential commands share (this file registers no command): strict option parsing that turns
 * every mistake into a {@link UsageError} (exit 2 with the usage), the store chosen by the environment, and
 * output as text or, with `--json`, one JSON document.
 */

type StrictConfig<T extends ParseArgsOptionsConfig> = {
  args: string[];
  options: T;
  strict: true;
  allowPositionals: false;
};
type ParsedOptions<T extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<StrictConfig<T>>>['values'];

/** `--json`: print one JSON document instead of text. */
export const JSON_FLAG = { json: { type: 'boolean' } } as const satisfies ParseArgsOptionsConfig;

/** Parses `args` strictly against `options`: unknown options, missing values and stray words are usage errors. */
export function parseOptions<T extends ParseArgsOptionsConfig>(args: readonly string[], options: T): ParsedOptions<T> {
  try {
    return parseArgs<StrictConfig<T>>({ args: [...args], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message.replace(/\s+/g, ' ') : String(error));
  }
}

/** Requires an option that `parseArgs` cannot require itself. */
export function required<T>(value: T | undefined, flag: string): T {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

/** Runs `work` against the store; invalid input found by provisioning becomes a usage error. */
export async function withAdminStore<T>(work: (admin: AdminSecretStore) => Promise<T>): Promise<T> {
  try {
    return await work(openAdminSecretStore(process.env));
  } catch (error) {
    if (error instanceof ProvisioningError) throw new UsageError(error.message);
    throw error;
  }
}

/** Prints `document` as JSON (with `--json`) or the text lines. */
export function report(json: boolean | undefined, document: unknown, lines: readonly string[]): void {
  console.log(json ? JSON.stringify(document, null, 2) : lines.join('\n'));
}

/** `label   value` lines, aligned. */
export function table(rows: ReadonlyArray<readonly [string, string]>, indent = '  '): string[] {
  const width = Math.max(0, ...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${indent}${label.padEnd(width)}  ${value}`);
}

type CredentialFlags = {
  readonly [K in KeyedCredentialKind as (typeof credentialKinds)[K]['flag']]: { readonly type: 'string' };
};

/** The flags that name one credential (one per kind in `credentialKinds.ts`), shared by the credential commands. */
export const CREDENTIAL_FLAGS = Object.fromEntries(
  keyedCredentialKinds.map((kind) => [credentialKinds[kind].flag, { type: 'string' }]),
) as CredentialFlags satisfies ParseArgsOptionsConfig;

/** `(--account <guid> | --cognitive <name> | --wrap-issuer <namespace>/<name>)`: for usage lines. */
export const CREDENTIAL_CHOICE = `(${keyedCredentialKinds.map((kind) => `--${credentialKinds[kind].flag} ${credentialKinds[kind].flagValue}`).join(' | ')})`;

/** One usage line per credential flag. */
export const CREDENTIAL_USAGE = keyedCredentialKinds
  .map(
    (kind) =>
      `  ${`--${credentialKinds[kind].flag} ${credentialKinds[kind].flagValue}`.padEnd(33)}${credentialKinds[kind].noun}`,
  )
  .join('\n');
