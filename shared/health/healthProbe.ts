import { SingleFlightCache, type Cached } from '../caching/singleFlightCache.js';
import type { StsConfig } from '../config.js';
import { vaultLayout } from '../credentials/vaultLayout.js';
import { fetchAuthorityDocument } from '../entra/authorityDocuments.js';
import { hourBucketOf, partitionKeyOf } from '../ledger/ledgerRows.js';
import { openLedgerTable, type LedgerTable } from '../ledger/ledgerTable.js';
import { withTimeout } from '../outbound/withTimeout.js';
import { getAzureCredential } from '../secrets/azureCredential.js';
import type { SecretStore } from '../secrets/secretStore.js';
import { telemetryInstance } from '../telemetry/requestTelemetry.js';

/**
 * What `GET /health` checks (docs/operations.md, "Health endpoint"), each with the app's own identity:
 *
 * - `vault`: the secret store answers a read of the signing key, past every cache (in Azure: Key Vault with the
 *   managed identity);
 * - `signingKey`: the signing key exists, and how old its current version is;
 * - `ledger`: one probe row is written to the current hour's ledger table (subject `health`, one row per
 *   instance and hour, overwritten each time, never a token's row; dropped with its hour's table); `off` when
 *   the ledger is off;
 * - `entraAuthority`: each authority's discovery document names it, when keyless callers are configured.
 *
 * The answer is cached per instance for {@link HEALTH_CACHE_MS} and one evaluation runs at a time, so probing
 * costs at most one vault read, one table write and one GET per configured authority per instance per period,
 * whatever the request rate. It carries states and ages only: no secret, credential id, URL or setting.
 */
export const HEALTH_CACHE_MS = 10_000;

/** Each dependency's state; `off` / `not-configured` count as healthy. */
export type CheckState = 'up' | 'down' | 'missing' | 'off' | 'not-configured';

export interface HealthReport {
  readonly status: 'healthy' | 'unhealthy';
  readonly checkedAt: Date;
  readonly vault: CheckState;
  readonly signingKey: CheckState;
  /** Seconds since the current signing key version was created; undefined when it could not be read. */
  readonly signingKeyAgeSeconds: number | undefined;
  readonly ledger: CheckState;
  readonly entraAuthority: CheckState;
}

/** The prefix of the telemetry record each evaluation writes (the workbook and the key-age alert read it). */
export const HEALTH_TELEMETRY_PREFIX = 'sts.health ';

/** The fields of that record; infra/ queries may name only these (checked by `npm run test:infra`). */
export const HEALTH_TELEMETRY_FIELDS = [
  'status',
  'vault',
  'signingKey',
  'signingKeyAgeSeconds',
  'ledger',
  'entraAuthority',
  'instance',
] as const;

/** Each check's own time limit; the whole evaluation takes at most about this long. */
const CHECK_TIMEOUT_MS = 3_000;

export interface HealthProbeDependencies {
  readonly config: StsConfig;
  readonly secrets: SecretStore;
  readonly clock: () => Date;
  /** Opens the ledger table (default: the configured table with the app's identity). */
  readonly openTable?: () => Promise<LedgerTable>;
  /** GETs the authority's discovery document (default: over https, bounded). */
  readonly fetchDocument?: (url: string, timeoutMs: number) => Promise<unknown>;
}

export interface HealthProbe {
  /** The cached report, or a fresh one when it is older than {@link HEALTH_CACHE_MS}; `fresh` says which. */
  report(): Promise<{ readonly report: HealthReport; readonly fresh: boolean }>;
}

/** Bounds one check by {@link CHECK_TIMEOUT_MS} (the signal goes to the work; the wait ends either way). */
function bounded<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  return withTimeout(work, CHECK_TIMEOUT_MS, () => new Error('timed out'));
}

/** Creates the probe of one set of services. */
export function createHealthProbe(deps: HealthProbeDependencies): HealthProbe {
  const { config, secrets, clock } = deps;
  let table: Promise<LedgerTable> | undefined;
  const openTable =
    deps.openTable ??
    (() => {
      const clientId = config.secretStore.kind === 'keyVault' ? config.secretStore.clientId : undefined;
      return openLedgerTable(config.ledger, () => getAzureCredential({ clientId, tokenTimeoutMs: CHECK_TIMEOUT_MS }));
    });
  const fetchDocument = deps.fetchDocument ?? fetchAuthorityDocument;

  const vaultAndKey = async (
    now: Date,
  ): Promise<Pick<HealthReport, 'vault' | 'signingKey' | 'signingKeyAgeSeconds'>> => {
    try {
      const key = await bounded(() => secrets.getFreshSecret(vaultLayout.signingKey));
      if (!key) return { vault: 'up', signingKey: 'missing', signingKeyAgeSeconds: undefined };
      const ageSeconds = Math.max(0, Math.floor((now.getTime() - key.createdOn.getTime()) / 1000));
      return { vault: 'up', signingKey: 'up', signingKeyAgeSeconds: ageSeconds };
    } catch {
      return { vault: 'down', signingKey: 'down', signingKeyAgeSeconds: undefined };
    }
  };

  const ledger = async (now: Date): Promise<CheckState> => {
    if (config.ledger.mode === 'off') return 'off';
    try {
      await bounded(async (signal) => {
        // Opened and created if missing once (Bicep creates it in Azure), as the ledger itself does.
        table ??= openTable()
          .then(async (opened) => {
            await opened.ensureExists(signal);
            return opened;
          })
          .catch((error: unknown) => {
            table = undefined;
            throw error;
          });
        const opened = await table;
        await opened.submitTransaction(
          [
            {
              partitionKey: partitionKeyOf('health', hourBucketOf(now), 0),
              rowKey: telemetryInstance,
              Time: now,
              Flow: 'health',
              Outcome: 'probe',
              Status: 200,
              RequestId: 'health',
            },
          ],
          signal,
        );
      });
      return 'up';
    } catch {
      return 'down';
    }
  };

  const authorityAnswers = async (authority: string): Promise<boolean> => {
    try {
      const discovery = await fetchDocument(
        `${authority.replace(/\/+$/, '')}/.well-known/openid-configuration`,
        CHECK_TIMEOUT_MS,
      );
      const issuer =
        typeof discovery === 'object' && discovery !== null ? (discovery as { issuer?: unknown }).issuer : undefined;
      return issuer === authority;
    } catch {
      return false;
    }
  };

  // Every configured authority (one per tenant) must answer; one that does not is `down` for the whole check.
  const entraAuthority = async (): Promise<CheckState> => {
    const authorities = config.entra?.authorities ?? [];
    if (authorities.length === 0) return 'not-configured';
    const answers = await Promise.all(authorities.map(authorityAnswers));
    return answers.every(Boolean) ? 'up' : 'down';
  };

  const evaluate = async (): Promise<HealthReport> => {
    const now = clock();
    const [key, ledgerState, entraState] = await Promise.all([vaultAndKey(now), ledger(now), entraAuthority()]);
    const states = [key.vault, key.signingKey, ledgerState, entraState];
    const healthy = states.every((state) => state === 'up' || state === 'off' || state === 'not-configured');
    return {
      status: healthy ? 'healthy' : 'unhealthy',
      checkedAt: now,
      ...key,
      ledger: ledgerState,
      entraAuthority: entraState,
    };
  };

  // The report, in the shared single-flight cache: fresh for HEALTH_CACHE_MS from its check, one evaluation at a time.
  const reports = new SingleFlightCache<'report', HealthReport>({ maxEntries: 1, now: () => clock().getTime() });
  const evaluated = async (): Promise<Cached<HealthReport>> => {
    const report = await evaluate();
    const untilMs = report.checkedAt.getTime() + HEALTH_CACHE_MS;
    return { value: report, freshUntilMs: untilMs, staleUntilMs: untilMs };
  };
  return {
    async report() {
      const held = reports.peek('report');
      if (held && clock().getTime() < held.freshUntilMs) return { report: held.value, fresh: false };
      const joining = reports.loading('report');
      return { report: await reports.refresh('report', evaluated), fresh: !joining };
    },
  };
}

/** The telemetry record of one evaluation (states and the key's age, nothing else). */
export function healthRecord(report: HealthReport): string {
  const record: Record<(typeof HEALTH_TELEMETRY_FIELDS)[number], unknown> = {
    status: report.status,
    vault: report.vault,
    signingKey: report.signingKey,
    signingKeyAgeSeconds: report.signingKeyAgeSeconds,
    ledger: report.ledger,
    entraAuthority: report.entraAuthority,
    instance: telemetryInstance,
  };
  return HEALTH_TELEMETRY_PREFIX + JSON.stringify(record);
}
