import type { InvocationContext, Timer } from '@azure/functions';
import { registerAppLifecycle } from '../appLifecycle.js';
import { describeError } from '../logging/redact.js';
import { getAzureCredential } from '../secrets/azureCredential.js';
import { getServices, type StsServices } from '../services.js';
import { runLedgerRetention, type RetentionRunResult } from '../ledger/ledgerRetention.js';
import { openLedgerTableService, type LedgerTableService } from '../ledger/ledgerTableService.js';

/**
 * When retention runs: second 0 of minute 7 of every hour (NCRONTAB, UTC). Hourly, because each table holds one
 * hour: a run drops the one hour that has just passed the retention period, so a row is gone at most about an
 * hour after it is `STS_LEDGER_RETENTION_HOURS` old. Minute 7, off the full hour when other jobs start.
 */
export const LEDGER_RETENTION_SCHEDULE = '0 7 * * * *';

/** What the timer function file exports: the same object it registers with `app.timer(...)`. */
export interface StsTimerDefinition {
  readonly name: string;
  /** NCRONTAB with seconds: `{second} {minute} {hour} {day} {month} {day of week}`. */
  readonly schedule: string;
  readonly handler: (timer: Timer, context: InvocationContext) => Promise<void>;
  /** The same run with `services` instead of the process's (local host, tests). */
  readonly runWith: (
    services: StsServices | Promise<StsServices>,
    log?: (line: string) => void,
  ) => Promise<RetentionRunResult | undefined>;
}

/**
 * The ledger retention timer: drops the hour tables past `STS_LEDGER_RETENTION_HOURS` (ledgerRetention.ts),
 * yielding to issuance through the ledger's `isSaturated`. Nothing to do with the ledger off.
 */
export function defineLedgerRetentionTimer(): StsTimerDefinition {
  registerAppLifecycle();
  // One table-service client per set of services (the process's, or a host's own).
  const opened = new WeakMap<StsServices, Promise<LedgerTableService>>();
  const serviceFor = (services: StsServices): Promise<LedgerTableService> => {
    let service = opened.get(services);
    if (!service) {
      const { ledger } = services.config;
      const clientId =
        services.config.secretStore.kind === 'keyVault' ? services.config.secretStore.clientId : undefined;
      service = openLedgerTableService(ledger, () => getAzureCredential({ clientId, tokenTimeoutMs: 10_000 }));
      void service.catch(() => opened.delete(services));
      opened.set(services, service);
    }
    return service;
  };

  const runWith = async (
    pending: StsServices | Promise<StsServices>,
    log: (line: string) => void = (line) => console.log(line),
  ) => {
    const services = await pending;
    const { ledger: settings } = services.config;
    if (settings.mode === 'off') return undefined;
    const ledger = services.ledger;
    const result = await runLedgerRetention({
      service: await serviceFor(services),
      retentionHours: settings.retentionHours,
      now: services.clock,
      issuanceBusy: () => ledger.isSaturated?.() ?? false,
    });
    log(
      `ledger retention (${settings.retentionHours} h): dropped ${result.dropped.length} hour table(s)` +
        `${result.dropped.length > 0 ? ` (${result.dropped[0]} .. ${result.dropped[result.dropped.length - 1]})` : ''}, ` +
        `${result.expiredLeft} left for the next run, ${result.waitsForIssuance} wait(s) for issuance, ${result.operations} table operation(s)`,
    );
    return result;
  };

  return {
    name: 'ledgerRetention',
    schedule: LEDGER_RETENTION_SCHEDULE,
    runWith,
    handler: async (_timer, context) => {
      try {
        await runWith(getServices(), (line) => context.log(line));
      } catch (error) {
        // Logged, not thrown: the next hourly run tries again, and `audit` shows any table left past the period.
        context.warn(`ledger retention failed: ${describeError(error)}`);
      }
    },
  };
}
