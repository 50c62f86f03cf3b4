import type { HttpHandler, HttpMethod, HttpResponseInit } from '@azure/functions';
import { registerAppLifecycle } from '../appLifecycle.js';
import { describeError } from '../logging/redact.js';
import { securityHeaders } from '../http/responseHeaders.js';
import { getServices, type StsServices } from '../services.js';
import { createHealthProbe, healthRecord, type HealthProbe, type HealthReport } from './healthProbe.js';

/** The route of the health endpoint: `GET /health` (the host's route prefix is empty, host.json). */
export const HEALTH_ROUTE = 'health';

/** What `functions/health.ts` exports and registers: the shape the local host and the tests serve. */
export interface HealthFunctionDefinition {
  readonly name: 'health';
  readonly route: string;
  readonly methods: HttpMethod[];
  readonly authLevel: 'anonymous';
  readonly handler: HttpHandler;
  readonly handlerFor: (services: StsServices | Promise<StsServices>) => HttpHandler;
}

/** Seconds a client should wait before asking an unhealthy instance again. */
const RETRY_AFTER_SECONDS = 10;

/** The body: states and ages only (docs/operations.md, "Health endpoint"). */
function bodyOf(report: HealthReport, now: Date): string {
  return JSON.stringify({
    status: report.status,
    checkedSecondsAgo: Math.max(0, Math.floor((now.getTime() - report.checkedAt.getTime()) / 1000)),
    checks: {
      vault: report.vault,
      signingKey: { status: report.signingKey, ageSeconds: report.signingKeyAgeSeconds },
      ledger: report.ledger,
      entraAuthority: report.entraAuthority,
    },
  });
}

function answer(status: number, body: string, extra: Record<string, string> = {}): HttpResponseInit {
  return {
    status,
    headers: {
      ...securityHeaders(),
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(body)),
      ...extra,
    },
    body,
  };
}

function healthHandler(servicesOf: () => Promise<StsServices>): HttpHandler {
  const probes = new WeakMap<StsServices, HealthProbe>();
  return async (_request, context) => {
    try {
      const services = await servicesOf();
      let probe = probes.get(services);
      if (!probe) probes.set(services, (probe = createHealthProbe(services)));
      const { report, fresh } = await probe.report();
      // One record per evaluation (at most one per cache period), not per request.
      if (fresh) context.info(healthRecord(report));
      const body = bodyOf(report, services.clock());
      return report.status === 'healthy'
        ? answer(200, body)
        : answer(503, body, { 'Retry-After': String(RETRY_AFTER_SECONDS) });
    } catch (error) {
      context.error(`health failed: ${describeError(error)}`);
      return answer(503, JSON.stringify({ status: 'unhealthy' }), { 'Retry-After': String(RETRY_AFTER_SECONDS) });
    }
  };
}

/** The health function's definition, answering with the process's services or the ones given. */
export function defineHealthFunction(): HealthFunctionDefinition {
  registerAppLifecycle();
  return {
    name: 'health',
    route: HEALTH_ROUTE,
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: healthHandler(getServices),
    handlerFor: (services) => healthHandler(() => Promise.resolve(services)),
  };
}
