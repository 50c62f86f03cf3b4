import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAuditArgs } from '../../tools/sts/commands/audit.js';
import { UsageError } from '../../tools/sts/command.js';
import type { LedgerEntry } from '../../shared/ledger/ledger.js';
import { openLedgerTable } from '../../shared/ledger/ledgerTable.js';
import { abandonedRowOf, toLedgerRow } from '../../shared/ledger/ledgerRows.js';
import { TableLedger } from '../../shared/ledger/tableLedger.js';
import { startAzuriteFixture, type AzuriteFixture } from '../support/azuriteFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';
import { addressForm, LEDGER_ADDRESS_KEY_SECRET } from '../../shared/ledger/ledgerAddress.js';

// `npm run sts -- audit` as an operator runs it (a child process through tsx), reading what the ledger wrote
// to a real Azurite.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TSX_CLI = join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist', 'cli.mjs');
const TABLE = 'auditcli';
const NOW = Date.now();
const minutesAgo = (minutes: number) => new Date(NOW - minutes * 60_000);

let azurite: AzuriteFixture;
const written: LedgerEntry[] = [
  {
    time: minutesAgo(5),
    flow: 'issueToken',
    outcome: 'issued',
    status: 200,
    requestId: randomUUID(),
    clientIp: '203.0.113.7',
    credentialId: 'speech-prod',
    keySlot: 2,
    audience: 'urn:ms.speechservices.eastus',
    jti: randomUUID(),
    expiresAt: new Date(minutesAgo(5).getTime() + 600_000),
  },
  {
    time: minutesAgo(20),
    flow: 'issueToken',
    outcome: 'refused',
    status: 401,
    requestId: randomUUID(),
    clientIp: '198.51.100.9',
    credentialId: 'speech-prod',
    reason: 'wrong_key',
  },
  {
    time: minutesAgo(50),
    flow: 'issueLimitedAccessToken',
    outcome: 'issued',
    status: 200,
    requestId: randomUUID(),
    clientIp: '203.0.113.7',
    credentialId: 'speech-prod',
    keySlot: 1,
    jti: randomUUID(),
    featureFlags: ['Face.Identification'],
  },
  // Outside a one-hour window:
  {
    time: minutesAgo(130),
    flow: 'issueToken',
    outcome: 'issued',
    status: 200,
    requestId: randomUUID(),
    credentialId: 'speech-prod',
    keySlot: 1,
  },
  // Another credential, and a refusal that named none:
  {
    time: minutesAgo(3),
    flow: 'issueToken',
    outcome: 'issued',
    status: 200,
    requestId: randomUUID(),
    credentialId: 'speech-other',
    keySlot: 1,
  },
  {
    time: minutesAgo(4),
    flow: 'wrapToken',
    outcome: 'refused',
    status: 429,
    requestId: randomUUID(),
    clientIp: '192.0.2.66',
    reason: 'rate_limited',
  },
];

const truncatedRefusal: LedgerEntry = {
  time: minutesAgo(6),
  flow: 'issueToken',
  outcome: 'refused',
  status: 401,
  requestId: randomUUID(),
  clientIp: '198.18.7.99',
  reason: 'unknown_credential',
};

const hashedRefusal: LedgerEntry = {
  ...truncatedRefusal,
  requestId: randomUUID(),
  clientIp: '192.0.2.201',
  time: minutesAgo(7),
};
let keyStore: TestCredentials | undefined;

beforeAll(async () => {
  azurite = await startAzuriteFixture();
  const ledger = new TableLedger({
    mode: 'required',
    openTable: () =>
      openLedgerTable({ tableName: TABLE, connectionString: azurite.connectionString }, () =>
        Promise.reject(new Error('unused')),
      ),
  });
  await Promise.all(written.map((entry) => ledger.record(entry)));
  // Three refusals of made-up ids from one address: one aggregated row.
  for (const id of ['made-up-1', 'made-up-2', 'made-up-3'])
    await ledger.record({ ...madeUp, requestId: randomUUID(), credentialId: id });
  await ledger.close();
  // Rows as an outage leaves them: an abandoned one, and an issued one committed long after its AnswerBy (its
  // mark lost with its instance).
  const table = await openLedgerTable({ tableName: TABLE, connectionString: azurite.connectionString }, () =>
    Promise.reject(new Error('unused')),
  );
  // One transaction each: the two rows are a minute apart, so an hour may begin between them (another partition).
  await table.submitTransaction(
    [abandonedRowOf({ ...toLedgerRow(abandoned, 0), AnswerBy: new Date(abandoned.time.getTime() + 4_000) })],
    AbortSignal.timeout(10_000),
  );
  await table.submitTransaction(
    [{ ...toLedgerRow(late, 0), AnswerBy: new Date(late.time.getTime() + 4_000) }],
    AbortSignal.timeout(10_000),
  );
  // A credential-less refusal written as STS_LEDGER_CLIENT_ADDRESS=truncated stores it: under its /24.
  const truncating = new TableLedger({
    mode: 'required',
    openTable: () =>
      openLedgerTable({ tableName: TABLE, connectionString: azurite.connectionString }, () =>
        Promise.reject(new Error('unused')),
      ),
    addressForm: addressForm('truncated'),
  });
  await truncating.record(truncatedRefusal);
  await truncating.close();
  // And one written as keyed-hash, with the key from an embedded store the CLI reads too.
  keyStore = await createTestCredentials();
  await keyStore.store.setSecret(LEDGER_ADDRESS_KEY_SECRET, 'an-address-key-of-at-least-32-characters');
  const hashing = new TableLedger({
    mode: 'required',
    openTable: () =>
      openLedgerTable({ tableName: TABLE, connectionString: azurite.connectionString }, () =>
        Promise.reject(new Error('unused')),
      ),
    addressForm: addressForm('keyed-hash', keyStore.store),
  });
  await hashing.record(hashedRefusal);
  await hashing.close();
});

const madeUp: LedgerEntry = {
  time: minutesAgo(2),
  flow: 'mixedRealityToken',
  outcome: 'refused',
  status: 401,
  requestId: randomUUID(),
  clientIp: '192.0.2.99',
  reason: 'unknown_credential',
};
const abandoned: LedgerEntry = {
  time: minutesAgo(7),
  flow: 'mixedRealityToken',
  outcome: 'issued',
  status: 200,
  requestId: randomUUID(),
  credentialId: 'outage-account',
  keySlot: 1,
  jti: randomUUID(),
};
const late: LedgerEntry = { ...abandoned, time: minutesAgo(8), requestId: randomUUID(), jti: randomUUID() };
afterAll(async () => {
  await azurite?.dispose();
  await keyStore?.remove();
});

interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function audit(...args: string[]): Promise<CliResult> {
  return auditWith({}, ...args);
}

function auditWith(settings: Record<string, string>, ...args: string[]): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [TSX_CLI, 'tools/sts/main.ts', 'audit', ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        STS_LEDGER_CONNECTION_STRING: azurite.connectionString,
        STS_LEDGER_TABLE: TABLE,
        STS_LEDGER_MODE: 'required',
        // The rows above were written with full addresses.
        STS_LEDGER_CLIENT_ADDRESS: 'full',
        ...settings,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`audit did not finish in time; stderr: ${stderr}`));
    }, 45_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

describe('npm run sts -- audit', () => {
  it('prints the rows of a credential in the last hour as a table, newest first', async () => {
    const result = await audit('--credential', 'speech-prod', '--since', '1h');
    expect(result.stderr).toContain('3 row(s) for credential speech-prod');
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^TIME\s+FLOW\s+OUTCOME\s+STATUS\s+CREDENTIAL\s+SLOT\s+REASON\/SOURCE\s+CLIENT IP\s+JTI\s+EXP$/,
    );
    expect(lines).toHaveLength(4);
    const [first, second, third] = written;
    expect(lines[1]?.split(/\s{2,}/)).toEqual([
      first?.time.toISOString(),
      'issueToken',
      'issued',
      '200',
      'speech-prod',
      '2',
      '-',
      '203.0.113.7',
      first?.jti,
      first?.expiresAt?.toISOString(),
    ]);
    expect(lines[2]?.split(/\s{2,}/)).toEqual([
      second?.time.toISOString(),
      'issueToken',
      'refused',
      '401',
      'speech-prod',
      '-',
      'wrong_key',
      '198.51.100.9',
      '-',
      '-',
    ]);
    expect(lines[3]).toContain(third?.time.toISOString());
    expect(lines[3]).toContain('issueLimitedAccessToken');
  });

  it('filters by outcome and range, and prints JSON lines on request', async () => {
    const result = await audit('--credential', 'speech-prod', '--since', '3h', '--outcome', 'issued', '--json');
    expect(result.code).toBe(0);
    const rows = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rows.map((row) => row.requestId)).toEqual(
      [written[0], written[2], written[3]].map((entry) => entry?.requestId),
    );
    expect(rows[1]).toMatchObject({
      flow: 'issueLimitedAccessToken',
      featureFlags: ['Face.Identification'],
      keySlot: 1,
    });
  });

  it('honours --limit and --until', async () => {
    const limited = await audit('--credential', 'speech-prod', '--since', '3h', '--limit', '1', '--json');
    expect(
      limited.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { requestId: string }).requestId),
    ).toEqual([written[0]?.requestId]);
    const earlier = await audit('--credential', 'speech-prod', '--since', '3h', '--until', '30m', '--json');
    expect(
      earlier.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { requestId: string }).requestId),
    ).toEqual([written[2], written[3]].map((entry) => entry?.requestId));
  });

  it('finds refusals that named no credential by client IP', async () => {
    const result = await audit('--client-ip', '192.0.2.66', '--json');
    expect(result.code).toBe(0);
    const rows = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rows).toEqual([
      expect.objectContaining({ flow: 'wrapToken', outcome: 'refused', status: 429, reason: 'rate_limited' }),
    ]);
  });

  it('shows what an outage left: abandoned rows, issued rows committed too late, and aggregated refusals with their count', async () => {
    const outage = await audit('--credential', 'outage-account', '--json');
    expect(outage.code).toBe(0);
    const rows = outage.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rows).toEqual([
      expect.objectContaining({
        requestId: abandoned.requestId,
        outcome: 'abandoned',
        status: 503,
        reason: 'ledger_deadline',
        jti: abandoned.jti,
      }),
      expect.objectContaining({ requestId: late.requestId, outcome: 'issued', late: true }),
    ]);
    expect(rows[0]).not.toHaveProperty('late');
    const table = await audit('--credential', 'outage-account');
    expect(table.stdout).toMatch(/mixedRealityToken\s+abandoned\s+503/);
    expect(table.stdout).toMatch(/mixedRealityToken\s+issued \(late\)\s+200/);
    const onlyAbandoned = await audit('--credential', 'outage-account', '--outcome', 'abandoned', '--json');
    expect(onlyAbandoned.stdout.trim().split('\n')).toHaveLength(1);

    const crowd = await audit('--client-ip', '192.0.2.99', '--json');
    expect(
      crowd.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    ).toEqual([
      expect.objectContaining({
        outcome: 'refused',
        reason: 'unknown_credential',
        count: 3,
        distinctCredentials: 3,
        credentialId: 'made-up-1',
      }),
    ]);
    expect((await audit('--client-ip', '192.0.2.99')).stdout).toMatch(/refused x3\s+401/);
  });

  it('with truncated addresses, finds a full address by the /24 the rows store', async () => {
    const result = await auditWith({ STS_LEDGER_CLIENT_ADDRESS: 'truncated' }, '--client-ip', '198.18.7.5', '--json');
    expect(result.code).toBe(0);
    const rows = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rows).toEqual([
      expect.objectContaining({
        requestId: truncatedRefusal.requestId,
        clientIp: '198.18.7.0/24',
        reason: 'unknown_credential',
      }),
    ]);
    expect(result.stderr).toContain('client IP 198.18.7.5 (stored as 198.18.7.0/24)');
  });

  it('with keyed-hash addresses, finds a full address by its hash under the key in the secret store', async () => {
    const settings = { STS_LEDGER_CLIENT_ADDRESS: 'keyed-hash', STS_LOCAL_STORE_PATH: keyStore?.storePath ?? '' };
    const result = await auditWith(settings, '--client-ip', '192.0.2.201', '--json');
    expect(result.code).toBe(0);
    const rows = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rows).toEqual([
      expect.objectContaining({
        requestId: hashedRefusal.requestId,
        clientIp: expect.stringMatching(/^hmac:[\w-]{22}$/),
      }),
    ]);
    expect(result.stdout).not.toContain('192.0.2.201');
    // Another address of the same /24 is another hash: nothing found.
    const other = await auditWith(settings, '--client-ip', '192.0.2.202', '--json');
    expect(other.stdout.trim()).toBe('');
  });

  it('ends with the retention statement: the oldest row that can exist, and tables past the period if any', async () => {
    const oldestHour = new Date(Math.floor(minutesAgo(130).getTime() / 3_600_000) * 3_600_000).toISOString();
    const kept = await audit('--retention');
    expect(kept.code).toBe(0);
    expect(kept.stderr).toContain(
      `Retention: 720 h (STS_LEDGER_RETENTION_HOURS): no row older than ${oldestHour} can exist`,
    );
    expect(kept.stderr).toContain('no hour table is past the period');

    // With a 1 h period the table of the row written 130 minutes ago is past it, and the removal has not run.
    const overdue = await auditWith({ STS_LEDGER_RETENTION_HOURS: '1' }, '--credential', 'speech-prod');
    expect(overdue.code).toBe(0);
    expect(overdue.stderr).toMatch(
      /Retention: 1 h .*: no row older than .* can exist .*\. \d+ hour table\(s\) are past the period/,
    );
  });

  it('answers a usage mistake with exit code 2 and the usage text', async () => {
    const result = await audit('--since', '1h');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('give exactly one of --credential or --client-ip');
    expect(result.stderr).toContain('Usage: npm run sts -- audit');
  });
});

describe('audit arguments', () => {
  const now = new Date('2026-03-01T09:30:00.000Z');

  it('reads durations and ISO times', () => {
    expect(
      parseAuditArgs(['--credential', 'x', '--since', '90m', '--until', '2026-03-01T09:00:00Z'], now),
    ).toMatchObject({
      credentialId: 'x',
      since: new Date('2026-03-01T08:00:00.000Z'),
      until: new Date('2026-03-01T09:00:00.000Z'),
      limit: 100,
      json: false,
    });
  });

  it.each([
    [['--credential', 'x', '--since', 'yesterday'], /--since must be a duration/],
    [['--credential', 'x', '--outcome', 'granted'], /--outcome must be one of issued, refused, upstream/],
    [['--credential', 'x', '--limit', '0'], /--limit must be a whole number/],
    [['--credential', 'x', '--since', '1h', '--until', '2h'], /--since is after --until/],
    [['--credential', 'x', '--since', '200d'], /at most 92 days/],
    [['--credential', 'x', '--client-ip', '1.2.3.4'], /exactly one/],
    [['--credential', 'x', '--bogus'], /Unknown option/],
  ])('refuses %j', (args, message) => {
    expect(() => parseAuditArgs(args, now)).toThrow(UsageError);
    expect(() => parseAuditArgs(args, now)).toThrow(message);
  });
});
