import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { LedgerMode } from '../../shared/config.js';

/**
 * Option parsing shared by the bounded load scripts (`npm run fuzz`, `npm run soak`): the command line with
 * `--ledger` and `--help`, numeric options checked against their range, and the ledger mode.
 */

/** What a run's command line said, or the exit code to stop with (usage printed, or help asked for). */
export type RunArguments =
  | { readonly values: Readonly<Record<string, string | boolean | undefined>>; readonly ledger: LedgerMode }
  | { readonly exitCode: number };

/**
 * Parses `argv` with the script's own `options` plus `--ledger` and `--help`: a malformed line prints the
 * error and `usage` (exit 2), `--help` prints `usage` (exit 0).
 *
 * @example
 * const parsed = readRunArguments(argv, { minutes: { type: 'string' } }, USAGE);
 * if ('exitCode' in parsed) return parsed.exitCode;
 */
export function readRunArguments(
  argv: readonly string[],
  options: NonNullable<ParseArgsConfig['options']>,
  usage: string,
): RunArguments {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { ...options, ledger: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }) as { values: Record<string, string | boolean | undefined> });
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${usage}`);
    return { exitCode: 2 };
  }
  if (values.help) {
    console.log(usage);
    return { exitCode: 0 };
  }
  const ledger = ledgerModeOption(values.ledger);
  if (ledger === undefined) {
    console.error(`--ledger must be off, best-effort or required\n\n${usage}`);
    return { exitCode: 2 };
  }
  return { values, ledger };
}

/** Reads `--<name>` as a number within [min, max], or the fallback when absent; throws a RangeError naming the option. */
export function numberOption(
  values: Readonly<Record<string, unknown>>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`--${name} must be a number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  }
  return value;
}

/** Reads `--ledger` (default `off`), or undefined when it is not a ledger mode. */
export function ledgerModeOption(raw: unknown): LedgerMode | undefined {
  const mode = raw ?? 'off';
  return mode === 'off' || mode === 'best-effort' || mode === 'required' ? mode : undefined;
}
