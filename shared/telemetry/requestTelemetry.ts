import { hostname } from 'node:os';
import type { LedgerAddressMode } from '../config.js';
import type { DependencyUnavailableError, StsError } from '../errors.js';
import type { FlowName } from '../flowCatalogue.js';
import { truncatedAddress } from '../ledger/ledgerAddress.js';

/**
 * One telemetry record per request, written through the Functions host's logger (the function's
 * `context.info`), so it reaches Application Insights as a trace with no SDK in the app: the host already
 * sends every log line there. The record is the message itself, `sts.request {json}`, because the Node.js
 * worker forwards a message and no custom properties; a query reads it with
 * `traces | where message startswith "sts.request " | extend r = parse_json(substring(message, 12))`.
 * Why the host logger and not an exporter in the app: it adds no module to a cold start, where the Application
 * Insights OpenTelemetry exporter alone adds about 210 ms (docs/operations.md, "How telemetry is sent").
 *
 * Never in a record: a key, a token, a request header or body. The credential id is the public identifier
 * (account id, resource name, issuer name), the principal is `<tenant id>/<object id>`, both as the ledger
 * keeps them (docs/ledger.md).
 */

/** The message prefix every record starts with (the workbook and alerts select on it). */
export const REQUEST_TELEMETRY_PREFIX = 'sts.request ';

/**
 * The record's fields, in the order they are written. infra/ queries may name only these
 * (`npm run test:infra` checks it); a test captures a real record and checks it has exactly these keys.
 */
export const REQUEST_TELEMETRY_FIELDS = [
  'flow',
  'outcome',
  'reason',
  'status',
  'durationMs',
  'credentialId',
  'principal',
  'clientIp',
  'instance',
] as const;

export type RequestTelemetryField = (typeof REQUEST_TELEMETRY_FIELDS)[number];

/**
 * What became of a request: a token issued; a public document served (discovery); refused (4xx but 429);
 * limited (429); unavailable (503, a dependency could not answer); failed (500, a defect).
 */
export type RequestOutcome = 'issued' | 'served' | 'refused' | 'limited' | 'unavailable' | 'failed';

/** Every value `outcome` takes, for the same check. */
export const REQUEST_OUTCOMES: readonly RequestOutcome[] = [
  'issued',
  'served',
  'refused',
  'limited',
  'unavailable',
  'failed',
];

/**
 * `reason` of an unavailable request: the dependency, and `:throttled` when Key Vault answered 429 or
 * `:budget` when this instance's vault read budget was spent (docs/key-vault.md).
 */
export const UNAVAILABLE_REASONS = [
  'secret-store',
  'secret-store:throttled',
  'secret-store:budget',
  'ledger',
  'upstream',
  'entra-authority',
] as const;

/** What the wrapper learns about a request while serving it; filled in place, read once at the end. */
export interface RequestFacts {
  clientIp: string | undefined;
  credentialId: string | undefined;
  principal: string | undefined;
  /** Set when the request was refused: the flow's own refusal, before the failed-attempt limits. */
  refusal: StsError | undefined;
  /** Set when a dependency could not answer. */
  unavailable: DependencyUnavailableError | undefined;
  issued: boolean;
}

/**
 * The client address as a record keeps it: as much as the ledger keeps (`STS_LEDGER_CLIENT_ADDRESS`,
 * docs/ledger.md "Client addresses"), so telemetry never holds more of it than the audit trail. `keyed-hash`
 * needs a key from the vault, which the per-request path does not read: the record then keeps the /24 or /48.
 */
export function telemetryAddress(address: string | undefined, mode: LedgerAddressMode): string | undefined {
  if (address === undefined || mode === 'full') return address;
  return truncatedAddress(address);
}

export const newRequestFacts = (): RequestFacts => ({
  clientIp: undefined,
  credentialId: undefined,
  principal: undefined,
  refusal: undefined,
  unavailable: undefined,
  issued: false,
});

/** This instance, once per process: the platform's instance id (shortened), else the host name. */
export const telemetryInstance = (process.env.WEBSITE_INSTANCE_ID ?? process.env.CONTAINER_NAME ?? hostname()).slice(
  0,
  16,
);

function outcomeOf(status: number, facts: RequestFacts): RequestOutcome {
  if (status === 429) return 'limited';
  if (status === 503) return 'unavailable';
  if (status >= 500) return 'failed';
  if (status >= 400) return 'refused';
  return facts.issued ? 'issued' : 'served';
}

/**
 * Refusal reasons that say the credential's record was found, so its id is a real credential's. Any other
 * refusal's "credential id" is text the client sent (an unknown account id, a WRAP issuer name), which may be
 * anything, a key pasted into the wrong field included: it is never written to telemetry.
 */
const FOUND_CREDENTIAL_REASONS: ReadonlySet<string> = new Set([
  'wrong_key',
  'credential_disabled',
  'principal_not_allowed',
  'scope_not_allowed',
  'feature_not_allowed',
]);

function unavailableReason(error: DependencyUnavailableError): string {
  if (error.dependency !== 'secret-store') return error.dependency;
  return error.condition === undefined ? 'secret-store' : `secret-store:${error.condition}`;
}

/** The record of one request (exported for tests; the wrapper calls {@link emitRequestTelemetry}). */
export function requestRecord(
  flow: FlowName,
  status: number,
  durationMs: number,
  facts: RequestFacts,
): Record<RequestTelemetryField, unknown> {
  const refusal = facts.refusal;
  const outcome = outcomeOf(status, facts);
  let reason: string | undefined = refusal?.reason;
  if (facts.unavailable) reason = unavailableReason(facts.unavailable);
  else if (outcome === 'limited') reason = 'rate_limited'; // the failed-attempt limits answered, not the flow
  const credentialId = refusal
    ? FOUND_CREDENTIAL_REASONS.has(refusal.reason)
      ? refusal.credentialId
      : undefined
    : facts.credentialId;
  return {
    flow,
    outcome,
    reason,
    status,
    durationMs: Math.round(durationMs * 10) / 10,
    credentialId,
    principal: refusal ? refusal.principal : facts.principal,
    clientIp: facts.clientIp,
    instance: telemetryInstance,
  };
}

/**
 * Writes the record of one request to `log` (the invocation's `context.info`). Small and flat: one object of
 * nine short fields and one JSON.stringify per request. Never throws.
 */
export function emitRequestTelemetry(
  log: (message: string) => void,
  flow: FlowName,
  status: number,
  durationMs: number,
  facts: RequestFacts,
): void {
  try {
    log(REQUEST_TELEMETRY_PREFIX + JSON.stringify(requestRecord(flow, status, durationMs, facts)));
  } catch {
    // Telemetry never changes an answer.
  }
}
