import type { LedgerMode } from '../../shared/config.js';

/**
 * Option parsing shared by the bounded load scripts (`npm run fuzz`, `npm run soak`): numeric options
 * checked against their range, and the ledger mode.
 */

/** Reads `--<name>` as a number within [min, max], or the fallback when absent; throws a RangeError naming the option. */
export function numberOption(values: Readonly<Record<string, unknown>>, name: string, fallback: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`--${name} must be a number from ${min} to ${max} (got "${String(raw)}")`);
  }
  return value;
}

/** Reads `--ledger` (default `off`), or undefined when it is not a ledger mode. */
export function ledgerModeOption(raw: unknown): LedgerMode | undefined {
  const mode = raw ?? 'off';
  return mode === 'off' || mode === 'best-effort' || mode === 'required' ? mode : undefined;
}
