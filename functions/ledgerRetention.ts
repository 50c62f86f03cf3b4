import { app } from '../shared/functionsApp.js';
import { defineLedgerRetentionTimer } from '../shared/app/retentionTimer.js';

/**
 * Timer `ledgerRetention` (hourly, minute 7 UTC): drops the issuance ledger's hour tables whose rows are all older
 * than `STS_LEDGER_RETENTION_HOURS` (docs/ledger.md, "Retention"). The Functions host runs it on one instance at
 * a time (a lease in host storage, AzureWebJobsStorage); the local host runs it too.
 */
export const definition = defineLedgerRetentionTimer();

app.timer(definition.name, { schedule: definition.schedule, handler: definition.handler });
