/**
 * Defaults that make a local run work with nothing configured. They only fill settings that are unset, and
 * each returns the one-line notice to print, or undefined when it changed nothing.
 */

/**
 * With no ledger storage configured (neither `STS_LEDGER_CONNECTION_STRING` nor `STS_LEDGER_TABLE_URL`) and no
 * explicit `STS_LEDGER_MODE`, runs with the issuance ledger off instead of refusing to start.
 */
export function disableLedgerWhenUnconfigured(env: Record<string, string | undefined>): string | undefined {
  const configured = [env.STS_LEDGER_CONNECTION_STRING, env.STS_LEDGER_TABLE_URL, env.STS_LEDGER_MODE].some((v) => v?.trim());
  if (configured) return undefined;
  env.STS_LEDGER_MODE = 'off';
  return 'Issuance ledger: off for this local run (set STS_LEDGER_CONNECTION_STRING or STS_LEDGER_TABLE_URL to record issuances).';
}
