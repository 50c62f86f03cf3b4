import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig, type LedgerAddressMode } from '../../../shared/config.js';
import { canonicalAddress } from '../../../shared/http/clientAddress.js';
import { LEDGER_ADDRESS_KEY_SECRET, storedAddress } from '../../../shared/ledger/ledgerAddress.js';
import { retentionStatement, type RetentionStatement } from '../../../shared/ledger/ledgerRetention.js';
import { openLedgerTableService } from '../../../shared/ledger/ledgerTableService.js';
import { openAdminSecretStore } from '../adminSecretStore.js';
import type { StoredLedgerEntry } from '../../../shared/ledger/ledgerRows.js';
import { openLedgerTable } from '../../../shared/ledger/ledgerTable.js';
import { MAX_QUERY_HOURS, queryLedger, type LedgerQuery } from '../ledger/queryLedger.js';
import { getAzureCredential } from '../../../shared/secrets/azureCredential.js';
import { attachLocalAzurite, LOCAL_AZURITE_DATA_DIR, type AttachedAzurite } from '../../localAzurite.js';
import { UsageError, type StsCommand } from '../command.js';

const OUTCOMES: readonly StoredLedgerEntry['outcome'][] = ['issued', 'refused', 'upstream', 'abandoned'];
/**
 * Clock difference tolerated between this app's instances and the table service when judging a late commit: an
 * `issued` row the service stamped later than its `AnswerBy` plus this was committed after its client was
 * answered 503 (docs/ledger.md#issued).
 */
export const LATE_COMMIT_TOLERANCE_MS = 2_000;
const DURATION = /^(\d{1,6})([smhd])$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** Whole days a query may span; with partial first and last hours it stays within MAX_QUERY_HOURS. */
const MAX_RANGE_DAYS = Math.floor((MAX_QUERY_HOURS - 1) / 24);

const usage = `Usage: npm run sts -- audit --credential <id> [--since 1h] [--until <time>] [--outcome issued|refused|upstream|abandoned] [--limit 100] [--json]
       npm run sts -- audit --client-ip <ip> ...
       npm run sts -- audit --retention

Lists issuance-ledger rows, newest first: every token issued and every attempt refused (401/403/429).
OUTCOME "abandoned": a token minted but answered 503 (its row's commit was not known in time); "issued (late)":
committed after its client was answered, so not delivered either; "refused xN": N refusals of one client
address in one window, aggregated (the credential shown is the first one tried).

  --credential <id>   the credential (account id, resource name, issuer) the rows name
  --client-ip <ip>    instead: refusals that proved no credential (aggregated per address), by client IP
  --since <when>      start of the range: a duration ago (90s, 30m, 1h, 7d) or an ISO time; default 1h
  --until <when>      end of the range, same forms; default now
  --outcome <o>       only issued, refused, upstream or abandoned rows
  --limit <n>         at most n rows (1-10000); default 100
  --json              one JSON object per line instead of a table
  --retention         only the retention statement (also printed after every query)

--client-ip takes the full address: it is turned into what the rows store (STS_LEDGER_CLIENT_ADDRESS: its
/24 or /48 for truncated, its keyed hash for keyed-hash, read with the key from the secret store).
After the rows, the retention statement: STS_LEDGER_RETENTION_HOURS, the oldest hour the ledger still holds (no
row older than that can exist), and any hour table past the period that the removal has not dropped yet.

The table is the app's: STS_LEDGER_CONNECTION_STRING, or STS_LEDGER_TABLE_URL with your Azure identity
(role "Storage Table Data Reader" or higher), table STS_LEDGER_TABLE (default "issuance"). With neither set,
the local ledger that \`npm start\` keeps in .azurite/ is read (through its running Azurite, or a temporary one).`;

/** `npm run sts -- audit`: who obtained which token, when, from where; and who was refused. */
export const command: StsCommand = {
  name: 'audit',
  summary: 'List issuance-ledger rows of a credential (or client IP) over a time range',
  usage,
  async run(args) {
    const retentionOnly = args.length === 1 && args[0] === '--retention';
    const query = retentionOnly ? undefined : parseAuditArgs(args, new Date());
    let local: AttachedAzurite | undefined;
    try {
      const env: Record<string, string | undefined> = { ...process.env };
      if (!env.STS_LEDGER_CONNECTION_STRING?.trim() && !env.STS_LEDGER_TABLE_URL?.trim()) {
        if (!(await isFolder(LOCAL_AZURITE_DATA_DIR))) {
          console.error(
            'No ledger configured: set STS_LEDGER_CONNECTION_STRING or STS_LEDGER_TABLE_URL (no local .azurite/ ledger found either).',
          );
          return 1;
        }
        local = await attachLocalAzurite(LOCAL_AZURITE_DATA_DIR);
        env.STS_LEDGER_CONNECTION_STRING = local.connectionString;
      }
      const config = loadConfig({ ...env, STS_LEDGER_MODE: 'best-effort' });
      const clientId = config.secretStore.kind === 'keyVault' ? config.secretStore.clientId : undefined;
      const credential = () => getAzureCredential({ clientId, tokenTimeoutMs: 15_000 });
      if (query) {
        const table = await openLedgerTable(config.ledger, credential);
        const stored =
          query.clientIp === undefined
            ? query
            : { ...query, clientIp: await storedClientIp(query.clientIp, config.ledger.clientAddress, env) };
        let rows: StoredLedgerEntry[];
        try {
          rows = await queryLedger(table, stored);
        } catch (error) {
          if ((error as { statusCode?: unknown }).statusCode !== 404) throw error;
          rows = []; // the table is created with the first row: none written yet
        }
        if (query.json) for (const row of rows) console.log(JSON.stringify(toJson(row)));
        else console.log(renderTable(rows));
        const subject =
          query.credentialId !== undefined
            ? `credential ${safe(query.credentialId)}`
            : `client IP ${safe(query.clientIp ?? '')}${stored.clientIp !== query.clientIp ? ` (stored as ${safe(stored.clientIp ?? '')})` : ''}`;
        console.error(
          `${rows.length} row(s) for ${subject}, ${query.since.toISOString()} to ${query.until.toISOString()}, newest first.`,
        );
      }
      const service = await openLedgerTableService(config.ledger, credential);
      const tables = await service.listPeriodTables();
      console.error(
        describeRetention(
          retentionStatement(tables, new Date(), config.ledger.retentionHours),
          config.ledger.retentionHours,
        ),
      );
      return 0;
    } finally {
      await local?.release();
    }
  },
};

/**
 * What the rows store for the address an operator typed: itself (`full`), its network (`truncated`; a network
 * typed as `a.b.c.0/24` or `x:y:z::/48` is taken as it is) or its keyed hash (`keyed-hash`, key from the store).
 */
async function storedClientIp(
  typed: string,
  mode: LedgerAddressMode,
  env: Record<string, string | undefined>,
): Promise<string> {
  if (mode === 'full' || typed.includes('/')) return typed;
  const address = canonicalAddress(typed);
  if (address === undefined) throw new UsageError(`--client-ip must be an IP address (got "${safe(typed)}")`);
  if (mode === 'truncated') return storedAddress(address, 'truncated') ?? address;
  const secret = await openAdminSecretStore(env).store.getSecret(LEDGER_ADDRESS_KEY_SECRET);
  if (!secret)
    throw new Error(
      `STS_LEDGER_CLIENT_ADDRESS is keyed-hash but the secret ${LEDGER_ADDRESS_KEY_SECRET} does not exist`,
    );
  return storedAddress(address, 'keyed-hash', secret.value) ?? address;
}

/** The retention statement `audit` ends with. */
export function describeRetention(statement: RetentionStatement, retentionHours: number): string {
  const period = `Retention: ${retentionHours} h (STS_LEDGER_RETENTION_HOURS)`;
  if (statement.oldestPossibleRow === undefined)
    return `${period}. The ledger holds no hour table: no row of any age exists.`;
  const oldest = `no row older than ${statement.oldestPossibleRow.toISOString()} can exist (the start of the oldest hour table)`;
  if (statement.expiredTables === 0) {
    return `${period}: ${oldest}; no hour table is past the period, so no row is more than one hour older than the period.`;
  }
  return (
    `${period}: ${oldest}. ${statement.expiredTables} hour table(s) are past the period (rows older than ` +
    `${statement.cutoff.toISOString()}): the removal (timer function ledgerRetention, hourly) has not dropped them yet.`
  );
}

/** Parses the command line; every mistake is a {@link UsageError}. */
export function parseAuditArgs(args: readonly string[], now: Date): LedgerQuery & { readonly json: boolean } {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        credential: { type: 'string' },
        'client-ip': { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        outcome: { type: 'string' },
        limit: { type: 'string' },
        json: { type: 'boolean' },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const credential = typeof values.credential === 'string' ? values.credential : undefined;
  const clientIp = typeof values['client-ip'] === 'string' ? values['client-ip'] : undefined;
  if ((credential === undefined) === (clientIp === undefined))
    throw new UsageError('give exactly one of --credential or --client-ip');
  if (credential === '' || clientIp === '') throw new UsageError('the credential or client IP must not be empty');

  const since = pointInTime('--since', typeof values.since === 'string' ? values.since : '1h', now);
  const until = pointInTime('--until', typeof values.until === 'string' ? values.until : 'now', now);
  if (since.getTime() > until.getTime()) throw new UsageError('--since is after --until');
  if (until.getTime() - since.getTime() > MAX_RANGE_DAYS * UNIT_MS.d)
    throw new UsageError(`the range may cover at most ${MAX_RANGE_DAYS} days`);

  let outcome: StoredLedgerEntry['outcome'] | undefined;
  if (typeof values.outcome === 'string') {
    outcome = OUTCOMES.find((o) => o === values.outcome);
    if (!outcome) throw new UsageError(`--outcome must be one of ${OUTCOMES.join(', ')}`);
  }
  let limit = 100;
  if (typeof values.limit === 'string') {
    if (!/^\d{1,5}$/.test(values.limit) || Number(values.limit) < 1 || Number(values.limit) > 10_000) {
      throw new UsageError('--limit must be a whole number from 1 to 10000');
    }
    limit = Number(values.limit);
  }
  const range = { since, until, outcome, limit, json: values.json === true };
  return credential !== undefined ? { ...range, credentialId: credential } : { ...range, clientIp: clientIp as string };
}

function pointInTime(option: string, text: string, now: Date): Date {
  if (text === 'now') return now;
  const duration = DURATION.exec(text);
  if (duration) return new Date(now.getTime() - Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS]);
  if (/^\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+)?(?:Z|[+-]\d{2}:\d{2})?$/.test(text) && !Number.isNaN(Date.parse(text)))
    return new Date(text);
  throw new UsageError(
    `${option} must be a duration such as 30m, 1h, 7d, or an ISO time such as 2026-03-01T09:00:00Z (got "${safe(text)}")`,
  );
}

const COLUMNS = [
  'TIME',
  'FLOW',
  'OUTCOME',
  'STATUS',
  'CREDENTIAL',
  'SLOT',
  'REASON/SOURCE',
  'CLIENT IP',
  'JTI',
  'EXP',
] as const;

function renderTable(rows: readonly StoredLedgerEntry[]): string {
  const cells = rows.map((row) => [
    row.time.toISOString(),
    row.flow,
    outcomeCell(row),
    String(row.status),
    cell(row.credentialId, 40),
    // An Entra caller presents no key: `entra` here, its principal in the row (`--json` prints it).
    row.keySlot !== undefined ? String(row.keySlot) : row.principal ? 'entra' : '-',
    cell(row.reason ?? row.source, 24),
    cell(row.clientIp, 39),
    cell(row.jti, 36),
    row.expiresAt ? row.expiresAt.toISOString() : '-',
  ]);
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...cells.map((line) => line[i]?.length ?? 0)));
  const line = (values: readonly string[]): string =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(COLUMNS), ...cells.map(line)].join('\n');
}

function toJson(row: StoredLedgerEntry): Record<string, unknown> {
  const {
    partitionKey: _partitionKey,
    rowKey: _rowKey,
    committedAt: _committedAt,
    answerBy: _answerBy,
    ...entry
  } = row;
  return {
    ...entry,
    time: row.time.toISOString(),
    expiresAt: row.expiresAt?.toISOString(),
    lastTime: row.lastTime?.toISOString(),
    ...(isLateCommit(row) ? { late: true } : {}),
  };
}

/**
 * An `issued` row the table service stamped after the latest moment its token could have been answered: its
 * client got a 503, and its `abandoned` mark was lost (the instance stopped first).
 */
export function isLateCommit(row: StoredLedgerEntry): boolean {
  if (row.outcome !== 'issued' || !row.committedAt || !row.answerBy) return false;
  return row.committedAt.getTime() > row.answerBy.getTime() + LATE_COMMIT_TOLERANCE_MS;
}

function outcomeCell(row: StoredLedgerEntry): string {
  if (row.count !== undefined) return `${row.outcome} x${row.count}`;
  return isLateCommit(row) ? `${row.outcome} (late)` : row.outcome;
}

/** A value from the ledger as a table cell: bounded, and with control characters (terminal escapes) neutralised. */
function cell(value: string | undefined, width: number): string {
  if (value === undefined || value === '') return '-';
  const clean = safe(value);
  return clean.length > width ? `${clean.slice(0, width - 1)}…` : clean;
}

function safe(value: string): string {
  // eslint-disable-next-line no-control-regex -- replacing control characters is the point (terminal safety)
  return value.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

async function isFolder(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
