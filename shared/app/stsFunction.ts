import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpHandler, HttpMethod, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { registerAppLifecycle } from '../appLifecycle.js';
import { DependencyUnavailableError, serviceUnavailable, StsError } from '../errors.js';
import { flowDeclaration, type CorrelationHeader, type FlowName } from '../flowCatalogue.js';
import { disabledLedger, type IssuanceFacts, type LedgerEntry } from '../ledger/ledger.js';
import { describeError } from '../logging/redact.js';
import { ipKey } from '../security/failedAttemptLimiter.js';
import { refusalAfterLimits } from '../security/refusalAfterLimits.js';
import { requestLimitViolation } from '../security/requestLimits.js';
import { getServices, type StsServices } from '../services.js';
import {
  emitRequestTelemetry,
  newRequestFacts,
  telemetryAddress,
  type RequestFacts,
} from '../telemetry/requestTelemetry.js';
import { readBoundedBody } from '../http/boundedBody.js';
import { clientAddressOf } from '../http/clientAddress.js';
import { corsResponseHeaders, optionsAnswer } from '../http/cors.js';
import { renderError } from '../http/errorShapes.js';
import { newCorrelationVector, securityHeaders } from '../http/responseHeaders.js';

/** What a function file exports: the same object it registers with `app.http(...)`. */
export interface StsFunctionDefinition {
  readonly name: FlowName;
  readonly route: string;
  readonly methods: HttpMethod[];
  readonly authLevel: 'anonymous';
  /** The handler the Functions host calls: it answers with the process's services ({@link getServices}). */
  readonly handler: HttpHandler;
  /**
   * The same function answering with `services` instead of the process's: a host that composes its own
   * (a second STS instance in one process, a local host or benchmark with injected dependencies).
   *
   * @example
   * const handler = definition.handlerFor(await createServices(config, clock));
   * const response = await handler(request, context);
   */
  readonly handlerFor: (services: StsServices | Promise<StsServices>) => HttpHandler;
}

/** Everything a flow adapter gets besides the raw request. */
export interface FlowInvocation {
  readonly request: HttpRequest;
  readonly context: InvocationContext;
  readonly services: StsServices;
  readonly requestId: string;
  /** The client address under the configured rule (shared/http/clientAddress.ts); undefined when unknown. */
  readonly clientIp: string | undefined;
  readonly now: Date;
  /** The body, at most `limits.maxBodyBytes` (larger ⇒ 413 in the flow's shape). */
  readonly readBody: () => Promise<Buffer>;
}

/** A flow's answer: the response, and what the ledger records about the token it carries. */
export interface FlowOutcome {
  readonly response: HttpResponseInit;
  readonly issuance?: IssuanceFacts;
}

/**
 * A function file's part: its name in the flow catalogue (`shared/flowCatalogue.ts`), which declares its
 * route, methods, error shape, correlation header and whether it may be cached, and its handler.
 */
export interface StsFunctionSpec {
  readonly name: FlowName;
  readonly handle: (invocation: FlowInvocation) => Promise<FlowOutcome>;
}

/**
 * Defines an HTTP function with the behaviour every flow shares: request id and client address (one rule,
 * shared/http/clientAddress.ts), a bounded body whether sized or chunked, URL,
 * query and header limits (shared/security/requestLimits.ts), every refusal counted per client address and
 * existing credential after the credential was checked (docs/failed-attempts.md), typed errors rendered in
 * the flow's shape, dependency outages as 503 + `Retry-After`, the ledger row
 * committed before a token leaves, security and correlation headers and `Content-Length` on every response, and
 * any unexpected throw turned into a bare 500 carrying only the request id (never a silent hang under streaming).
 */
export function defineStsFunction(spec: StsFunctionSpec): StsFunctionDefinition {
  registerAppLifecycle();
  const { route, methods } = flowDeclaration(spec.name);
  return {
    name: spec.name,
    route,
    // OPTIONS too, so a browser's preflight reaches the app (docs/cors.md); an OPTIONS that is no preflight gets
    // the host's empty 404 all the same.
    methods: [...methods, 'OPTIONS'],
    authLevel: 'anonymous',
    handler: stsHandler(spec, getServices),
    handlerFor: (services) => stsHandler(spec, () => Promise.resolve(services)),
  };
}

/** The handler of {@link defineStsFunction}, taking its services from `servicesOf` on every request. */
function stsHandler(spec: StsFunctionSpec, servicesOf: () => Promise<StsServices>): HttpHandler {
  const declaration = flowDeclaration(spec.name);
  const flow: FlowOfHandler = { spec, declaration };

  // Under HTTP streaming a handler that throws sends the client nothing at all (the connection hangs until the
  // host times out), so nothing may escape: not a renderer, not the limiter, not the ledger's refusal path.
  // One async frame per request, and no closure but `readBody`: what a request needs travels as arguments.
  const handler: HttpHandler = async (request, context) => {
    const started = performance.now();
    const requestId = isGuid(context.invocationId) ? context.invocationId : randomUUID();
    const facts = newRequestFacts();
    let response: HttpResponseInit;
    let cors: Record<string, string> | undefined;
    try {
      let services: StsServices | undefined;
      try {
        services = await servicesOf();
      } catch (error) {
        context.error(`startup failed: ${describeError(error)}`);
      }
      if (!services) {
        response = finish(flow, requestId, undefined, { status: 500, body: '' });
      } else if (request.method === 'OPTIONS') {
        const answer = optionsAnswer(services.config.cors, request, spec.name, declaration.methods);
        response = answer.status === 404 ? withContentLength(answer) : finish(flow, requestId, undefined, answer);
      } else {
        cors = corsResponseHeaders(services.config.cors, request);
        const clientIp = clientAddressOf(request.headers, services.config.clientAddress);
        facts.clientIp = telemetryAddress(clientIp, services.config.ledger.clientAddress);
        const now = services.clock();
        try {
          // Sizes the client controls (URL, query, headers) are refused in the flow's shape before any parsing.
          const tooLarge = requestLimitViolation(request, services.config.limits);
          if (tooLarge) throw tooLarge;
          const maxBodyBytes = services.config.limits.maxBodyBytes;
          // Vault reads of this request count against this client's share of the read budget.
          const outcome = await spec.handle({
            request,
            context,
            services: attributedServices(services, ipKey(clientIp)),
            requestId,
            clientIp,
            now,
            readBody: () => readBoundedBody(request, maxBodyBytes),
          });
          if (outcome.issuance) {
            facts.issued = true;
            facts.credentialId = outcome.issuance.credentialId;
            facts.principal = outcome.issuance.principal;
          }
          // Required mode: rejects when the row cannot be committed, and then no token leaves. With the ledger
          // off there is nothing to record, so no row is built.
          if (outcome.issuance && services.ledger !== disabledLedger) {
            await services.ledger.record({
              ...outcome.issuance,
              time: now,
              flow: spec.name,
              outcome: 'issued',
              status: outcome.response.status ?? 200,
              requestId,
              clientIp,
            });
          }
          response = finish(flow, requestId, cors, outcome.response);
        } catch (error) {
          if (error instanceof StsError) {
            const refusal = { error, services, context, requestId, clientIp, now, facts };
            response = await refuse(flow, refusal, cors);
          } else if (error instanceof DependencyUnavailableError) {
            facts.unavailable = error;
            context.warn(`${spec.name} unavailable: ${error.dependency} ${describeError(error)}`);
            const rendered = renderError(declaration.errorShape, serviceUnavailable(error.retryAfterSeconds), {
              requestId,
              now,
            });
            response = finish(flow, requestId, cors, rendered);
          } else {
            context.error(`${spec.name} failed: ${describeError(error)}`);
            response = finish(flow, requestId, cors, { status: 500, body: '' });
          }
        }
      }
    } catch (error) {
      context.error(`${spec.name} failed: ${describeError(error)}`);
      const headers = { ...securityHeaders(), 'x-ms-request-id': requestId };
      response = withContentLength({ status: 500, headers, body: '' });
    }
    // One telemetry record per request (shared/telemetry/requestTelemetry.ts, docs/operations.md).
    const durationMs = performance.now() - started;
    emitRequestTelemetry((line) => context.info(line), spec.name, response.status ?? 200, durationMs, facts);
    return response;
  };

  return handler;
}

/** What a handler knows of its flow. */
interface FlowOfHandler {
  readonly spec: StsFunctionSpec;
  readonly declaration: ReturnType<typeof flowDeclaration>;
}

/**
 * The response as sent: security headers (unless it is a successful public document, which may be cached;
 * errors never are), the correlation header, the CORS headers of the request (`cors`, undefined before they
 * are known) and `Content-Length`.
 */
function finish(
  { declaration }: FlowOfHandler,
  requestId: string,
  cors: Record<string, string> | undefined,
  response: HttpResponseInit,
): HttpResponseInit {
  const headers = declaration.cacheable && (response.status ?? 200) < 400 ? {} : securityHeaders();
  addCorrelationHeader(headers, declaration.correlationHeader, requestId);
  if (cors) Object.assign(headers, cors);
  const own = response.headers as Record<string, string> | undefined;
  Object.assign(headers, own);
  // Only the flow's own headers can name Content-Type or Content-Length: the ones added here never do.
  return sized(response, headers, own);
}

/** A refused request: the flow's refusal and what the limits and the ledger need to know about it. */
interface Refusal {
  readonly error: StsError;
  readonly services: StsServices;
  readonly context: InvocationContext;
  readonly requestId: string;
  readonly clientIp: string | undefined;
  readonly now: Date;
  readonly facts: RequestFacts;
}

/**
 * The answer to a refused request. Counted only once the request was refused, so a right key is never refused
 * by the limits; over a limit, a refused credential answers 429 and only the first such answer per window is
 * recorded.
 */
async function refuse(
  flow: FlowOfHandler,
  { error: refusal, services, context, requestId, clientIp, now, facts }: Refusal,
  cors: Record<string, string> | undefined,
): Promise<HttpResponseInit> {
  const { spec, declaration } = flow;
  facts.refusal = refusal;
  const { error, report } = refusalAfterLimits(services.failedAttempts, refusal, clientIp);
  if (!report) return finish(flow, requestId, cors, renderError(declaration.errorShape, error, { requestId, now }));
  if (error.status === 401 || error.status === 403 || error.status === 429) {
    await recordBestEffort(services, context, {
      time: now,
      flow: spec.name,
      outcome: 'refused',
      status: error.status,
      requestId,
      clientIp,
      credentialId: error.credentialId,
      principal: error.principal,
      reason: error.reason,
    });
  }
  context.warn(`${spec.name} refused ${error.status} ${error.code} reason=${error.reason}`);
  return finish(flow, requestId, cors, renderError(declaration.errorShape, error, { requestId, now }));
}

/**
 * The services of one request: the same objects, but credential reads charged to `requester`'s share of the
 * vault read budget. A view over `services` (its prototype), so nothing else is copied or re-created.
 */
function attributedServices(services: StsServices, requester: string | undefined): StsServices {
  if (requester === undefined) return services;
  const credentials = services.credentials.attributedTo(requester);
  // A plain assignment shadows the prototype's property (about 30 ns, where Object.create's property
  // descriptors cost about 900 ns); services whose `credentials` cannot be shadowed that way (frozen) get those.
  const view = Object.create(services) as { credentials: typeof credentials };
  try {
    view.credentials = credentials;
  } catch {
    return Object.create(services, { credentials: { value: credentials, enumerable: true } }) as StsServices;
  }
  return view as unknown as StsServices;
}

/** How long a refusal waits for its ledger row before answering anyway (the write goes on behind it). */
const REFUSAL_RECORD_WAIT_MS = 500;

async function recordBestEffort(services: StsServices, context: InvocationContext, entry: LedgerEntry): Promise<void> {
  // A refusal is answered even when the ledger is down or slow: refusing to refuse would help an attacker,
  // and a dead table must not turn every 401 into a multi-second wait. The wait ends at the write's end or
  // after REFUSAL_RECORD_WAIT_MS, whichever is first; only the wait stops, never the write.
  const written = new AbortController();
  void services.ledger
    .record(entry)
    .catch((error: unknown) => context.warn(`ledger: refusal not recorded: ${describeError(error)}`))
    .finally(() => written.abort());
  await sleep(REFUSAL_RECORD_WAIT_MS, undefined, { signal: written.signal }).catch(() => undefined);
}

const BODILESS_STATUSES = new Set([204, 205, 304]);

/**
 * The response with `Content-Length` set by the app (a `jsonBody` becomes its JSON text), so both hosts send a
 * sized response: the Functions host passes the header through (RpcHttp and streaming alike) and would otherwise
 * answer `Transfer-Encoding: chunked` (docs/hosts.md). 204/205/304 carry neither body nor length.
 * `response.headers` must be a plain object of the caller's own: it is edited in place (one copy per response
 * is enough).
 */
function withContentLength(response: HttpResponseInit): HttpResponseInit {
  const headers = (response.headers ?? {}) as Record<string, string>;
  return sized(response, headers, headers);
}

/**
 * {@link withContentLength} with the response's headers already in `headers`, of which only those in
 * `mayNameContent` (the same object, or a part of it) can be a `Content-Length` or `Content-Type` in any case.
 */
function sized(
  response: HttpResponseInit,
  headers: Record<string, string>,
  mayNameContent: Record<string, string> | undefined,
): HttpResponseInit {
  const status = response.status ?? 200;
  let hasContentType = false;
  if (mayNameContent) {
    for (const name of Object.keys(mayNameContent)) {
      const lower = name.toLowerCase();
      if (lower === 'content-length') delete headers[name];
      else if (lower === 'content-type') hasContentType = true;
    }
  }
  if (BODILESS_STATUSES.has(status)) return { status, headers };
  let length: number;
  let body = response.body;
  if (response.jsonBody !== undefined) {
    body = JSON.stringify(response.jsonBody);
    if (!hasContentType) headers['Content-Type'] = 'application/json';
  }
  if (typeof body === 'string') length = Buffer.byteLength(body, 'utf8');
  else if (body instanceof Uint8Array) length = body.byteLength;
  else if (body === undefined || body === null) length = 0;
  else return { ...response, headers }; // a stream or form data has no length known up front: the host frames it
  headers['Content-Length'] = String(length);
  return response.cookies ? { status, headers, body, cookies: response.cookies } : { status, headers, body };
}

function addCorrelationHeader(
  headers: Record<string, string>,
  header: CorrelationHeader | undefined,
  requestId: string,
): void {
  if (!header) headers['x-ms-request-id'] = requestId;
  else headers[header.name] = header.value === 'correlationVector' ? newCorrelationVector() : requestId;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
function isGuid(value: string | undefined): value is string {
  return value !== undefined && GUID.test(value);
}
