/**
 * Defaults that make a local run work with nothing configured. They only fill settings that are unset, and
 * each returns the one-line notice to print, or undefined when it changed nothing.
 */

/**
 * With no ledger storage configured (neither `STS_LEDGER_CONNECTION_STRING` nor `STS_LEDGER_TABLE_URL`) and no
 * explicit `STS_LEDGER_MODE`, runs with the issuance ledger off instead of refusing to start.
 */
export function disableLedgerWhenUnconfigured(env: Record<string, string | undefined>): string | undefined {
  const configured = [env.STS_LEDGER_CONNECTION_STRING, env.STS_LEDGER_TABLE_URL, env.STS_LEDGER_MODE].some((v) =>
    v?.trim(),
  );
  if (configured) return undefined;
  env.STS_LEDGER_MODE = 'off';
  return 'Issuance ledger: off for this local run (set STS_LEDGER_CONNECTION_STRING or STS_LEDGER_TABLE_URL to record issuances).';
}

/** The retention of a local run when none is set: a day, so a developer's ledger never grows from day to day. */
export const LOCAL_LEDGER_RETENTION_HOURS = '24';

/**
 * With no `STS_LEDGER_RETENTION_HOURS` set, keeps local ledger rows 24 hours instead of the 30 days of a deployment:
 * the ledger under `.azurite/` then holds at most a day and an hour of rows, however many runs there were.
 */
export function shortenLedgerRetentionLocally(env: Record<string, string | undefined>): string | undefined {
  if (env.STS_LEDGER_RETENTION_HOURS?.trim() || env.STS_LEDGER_MODE?.trim() === 'off') return undefined;
  env.STS_LEDGER_RETENTION_HOURS = LOCAL_LEDGER_RETENTION_HOURS;
  return `Issuance ledger: rows are kept ${LOCAL_LEDGER_RETENTION_HOURS} h locally (STS_LEDGER_RETENTION_HOURS; 720 h unless set in Azure), trimmed at start and hourly.`;
}
