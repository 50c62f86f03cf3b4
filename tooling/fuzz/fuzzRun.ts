import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { startLocalAzurite, type LocalAzurite } from '../../tools/localAzurite.js';
import { loadConfig } from '../../shared/config.js';
import {
  describeRequest,
  nextFuzzRequest,
  refusedOnSize,
  servedByAFunction,
  TOKEN_ROUTES,
  type FuzzRequest,
  type RouteName,
} from './fuzzCases.js';
import { LeakScanner } from './leakScanner.js';
import { startHostChild, type HostChild } from '../load/localHostChild.js';
import { Random } from './random.js';
import { sendRaw, serializeRequest } from './rawHttp.js';

/**
 * One fuzz run against a local host child: bounded in count and in time, loopback only. Every response is
 * classified and scanned; the host's stdout and stderr are scanned at the end, when every issued token is
 * known. A finding is anything the goals forbid: a 5xx, a hang (no answer within the per-request timeout),
 * a crash (the host exits, or writes an error), a token issued without a valid credential, a key or another
 * request's token in a response or a log line.
 */

export interface FuzzOptions {
  readonly requests: number;
  readonly durationMs: number;
  readonly concurrency: number;
  readonly seed: number;
  readonly timeoutMs: number;
  /** `off` (default) or a ledger mode, with a temporary Azurite. */
  readonly ledger: 'off' | 'best-effort' | 'required';
  /**
   * Raise the failed-attempt limits out of reach. Off by default: the limits never refuse a right key, so the
   * valid requests of a run reach the flows with the limits in force, as in Azure.
   */
  readonly relaxLimits: boolean;
  /** Progress lines. */
  readonly progress: (line: string) => void;
}

/** Transport errors of a write the server cut short. */
const BROKEN_WRITE: ReadonlySet<string> = new Set(['EPIPE', 'ECONNRESET', 'UND_ERR_SOCKET']);
/** The answers to a request refused on its size before it was read whole. */
const SIZE_REFUSALS: ReadonlySet<number> = new Set([413, 414, 431]);

export type Outcome = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'closed' | 'timeout' | 'error';

export interface Finding {
  readonly kind:
    | 'server error'
    | 'hang'
    | 'crash'
    | 'error log'
    | 'unexpected stderr'
    | 'auth bypass'
    | 'cacheable token'
    | 'leak in response'
    | 'leak in log'
    | 'dropped';
  readonly detail: string;
  readonly request?: string;
}

export interface FuzzReport {
  readonly seed: number;
  readonly requests: number;
  readonly durationMs: number;
  readonly byOutcome: Readonly<Record<string, number>>;
  readonly byRoute: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly byStatus: Readonly<Record<string, number>>;
  readonly byTransport: Readonly<Record<string, number>>;
  readonly tokensIssued: number;
  readonly logLines: number;
  readonly findings: readonly Finding[];
  readonly findingCounts: Readonly<Record<string, number>>;
  readonly hostExit: string;
}

/** Source addresses for raw sends: many loopback clients, so no single one runs out of ports. */
const RAW_SOURCES = Array.from({ length: 32 }, (_, i) => `127.0.0.${i + 2}`);
/** Lines the host may write to stderr that are not errors. */
const BENIGN_STDERR = [
  /Discarding the body of the incoming (GET|HEAD) request/i,
  /ExperimentalWarning/i,
  /--trace-warnings/,
];
/** Host stdout lines that mean something went wrong inside. */
const ERROR_STDOUT = [/^\[error\]/, /local host: request .* failed/, /did not answer within/, /Unhandled/i];
/** Findings listed in the report per kind (all are counted). */
const FINDINGS_KEPT_PER_KIND = 8;

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const random = new Random(options.seed);
  // Source addresses come from their own generator, so the request sequence depends on the seed alone.
  const sources = new Random(options.seed ^ 0x5bd1e995);
  const stdout: string[] = [];
  const stderr: string[] = [];
  let azurite: LocalAzurite | undefined;
  let azuriteDir: string | undefined;
  const env: Record<string, string> = {};
  if (options.relaxLimits) {
    env.STS_FAILED_ATTEMPTS_PER_WINDOW = '100000';
    env.STS_FAILED_ATTEMPTS_PER_CREDENTIAL = '100000';
  }
  if (options.ledger !== 'off') {
    azuriteDir = await mkdtemp(join(tmpdir(), 'sts-fuzz-azurite-'));
    azurite = await startLocalAzurite({ dataDir: azuriteDir, startTimeoutMs: 60_000 });
    env.STS_LEDGER_MODE = options.ledger;
    env.STS_LEDGER_CONNECTION_STRING = azurite.connectionString;
  }

  let host: HostChild | undefined;
  try {
    host = await startHostChild({ env, onLine: (stream, line) => (stream === 'stdout' ? stdout : stderr).push(line) });
    const running = host;
    options.progress(`local host child pid ${running.pid} on ${running.url}; seed ${options.seed}`);
    const { credentials } = running;
    // The limits the host child runs with (it inherits this environment).
    const sizeSettings = Object.entries(process.env).filter(([name]) => name.startsWith('STS_MAX_'));
    const { limits } = loadConfig({
      ...Object.fromEntries(sizeSettings),
      STS_LOCAL_STORE_PATH: 'unused',
      STS_LEDGER_MODE: 'off',
    });
    const scanner = new LeakScanner([
      ...running.secretValues.map((value) => ({ value, label: 'a stored key or signing key' })),
    ]);

    const findings: Finding[] = [];
    const findingCounts: Record<string, number> = {};
    const addFinding = (finding: Finding): void => {
      findingCounts[finding.kind] = (findingCounts[finding.kind] ?? 0) + 1;
      if ((findingCounts[finding.kind] ?? 0) <= FINDINGS_KEPT_PER_KIND) findings.push(finding);
    };
    const byOutcome: Record<string, number> = {};
    const byRoute: Record<string, Record<string, number>> = {};
    const byStatus: Record<string, number> = {};
    const byTransport: Record<string, number> = { undici: 0, raw: 0 };
    const count = (route: RouteName, outcome: Outcome, status: number | undefined): void => {
      byOutcome[outcome] = (byOutcome[outcome] ?? 0) + 1;
      const row = (byRoute[route] ??= {});
      row[outcome] = (row[outcome] ?? 0) + 1;
      if (status !== undefined) byStatus[String(status)] = (byStatus[String(status)] ?? 0) + 1;
    };

    const pool = new Pool(running.url, {
      connections: options.concurrency,
      pipelining: 1,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 4_000,
    });
    const authority = `127.0.0.1:${running.port}`;
    const started = Date.now();
    let issued = 0;
    let completed = 0;
    let crashed = false;
    let lastProgress = started;

    const exchange = async (request: FuzzRequest, index: number): Promise<void> => {
      const describe = (): string => `#${index} ${describeRequest(request)}`;
      let status: number | undefined;
      let outcome: Outcome;
      let text: string;
      if (request.needsRaw) {
        byTransport.raw = (byTransport.raw ?? 0) + 1;
        const answer = await sendRaw(running.port, serializeRequest(request, authority), {
          timeoutMs: options.timeoutMs,
          localAddress: sources.pick(RAW_SOURCES),
          method: request.method,
        });
        status = answer.status;
        text = `${answer.head}\r\n\r\n${answer.body.toString('latin1')}`;
        outcome =
          answer.outcome === 'response' && status !== undefined
            ? classOf(status)
            : answer.outcome === 'response'
              ? 'closed'
              : answer.outcome;
        if (answer.outcome === 'error')
          addFinding({ kind: 'dropped', detail: `socket error ${answer.error ?? ''}`, request: describe() });
      } else {
        byTransport.undici = (byTransport.undici ?? 0) + 1;
        try {
          const response = await pool.request({
            path: request.target,
            method: request.method,
            headers: request.headers.flat(),
            body: request.body.length > 0 || request.method === 'POST' ? request.body : null,
            signal: AbortSignal.timeout(options.timeoutMs + 1_000),
          });
          status = response.statusCode;
          const body = Buffer.from(await response.body.arrayBuffer());
          text = `${Object.entries(response.headers)
            .map(([name, value]) => `${name}: ${String(value)}`)
            .join('\r\n')}\r\n\r\n${body.toString('utf8')}`;
          outcome = classOf(status);
        } catch (error) {
          const name = (error as { code?: string; name?: string }).code ?? (error as Error).name;
          text = '';
          outcome = /Timeout|Abort/i.test(name) ? 'timeout' : 'error';
          if (outcome === 'error' && BROKEN_WRITE.has(name) && refusedOnSize(request, limits)) {
            // Refused on its size while undici was still writing: the same bytes sent raw must get the refusal
            // itself (413, 414 or 431), else this is a dropped request after all.
            const raw = await sendRaw(running.port, serializeRequest(request, authority), {
              timeoutMs: options.timeoutMs,
              method: request.method,
            });
            status = raw.status;
            text = `${raw.head}\r\n\r\n${raw.body.toString('latin1')}`;
            if (status !== undefined && (SIZE_REFUSALS.has(status) || (status === 404 && !servedByAFunction(request))))
              outcome = classOf(status);
          }
          if (outcome === 'error') addFinding({ kind: 'dropped', detail: `undici ${name}`, request: describe() });
        }
      }
      count(request.route, outcome, status);

      if (outcome === '5xx') addFinding({ kind: 'server error', detail: `status ${status}`, request: describe() });
      if (outcome === 'timeout')
        addFinding({ kind: 'hang', detail: `no answer within ${options.timeoutMs} ms`, request: describe() });

      const own = status === 200 && TOKEN_ROUTES.has(request.route) ? tokenIn(request.route, text) : undefined;
      if (own && request.credentialIntact === false) {
        addFinding({ kind: 'auth bypass', detail: `200 with a token for a broken credential`, request: describe() });
      }
      if (own && !/^cache-control:.*no-store/im.test(text.slice(0, text.indexOf('\r\n\r\n')))) {
        addFinding({
          kind: 'cacheable token',
          detail: 'a token response without Cache-Control: no-store',
          request: describe(),
        });
      }
      for (const leak of scanner.scan(text, own))
        addFinding({ kind: 'leak in response', detail: leak.detail, request: describe() });
      if (own) {
        scanner.registerIssued(own);
        issued += 1;
      }
    };

    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < options.requests && Date.now() - started < options.durationMs && !crashed) {
        const index = next;
        next += 1;
        const request = nextFuzzRequest(random, credentials);
        await exchange(request, index);
        completed += 1;
        if (running.exitStatus() !== undefined && !crashed) {
          crashed = true;
          addFinding({
            kind: 'crash',
            detail: `the host exited (${running.exitStatus()}) during the run`,
            request: `#${index} ${describeRequest(request)}`,
          });
        }
        if (Date.now() - lastProgress > 10_000) {
          lastProgress = Date.now();
          const seconds = (lastProgress - started) / 1000;
          options.progress(
            `  ${completed} requests in ${seconds.toFixed(0)} s (${Math.round(completed / seconds)}/s), findings: ${Object.values(findingCounts).reduce((a, b) => a + b, 0)}`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, () => worker()));
    const durationMs = Date.now() - started;
    await pool.close();

    // Let the last log lines arrive, then stop the host gracefully: a clean exit is part of "no crash".
    await new Promise((resolve) => setTimeout(resolve, 500));
    const alive = running.exitStatus() === undefined;
    if (!alive && !crashed) addFinding({ kind: 'crash', detail: `the host exited (${running.exitStatus()})` });
    await running.stop();
    const hostExit = running.exitStatus() ?? 'unknown';
    if (alive && hostExit !== 'exit code 0')
      addFinding({ kind: 'crash', detail: `the host did not shut down cleanly (${hostExit})` });

    for (const line of stdout) {
      if (ERROR_STDOUT.some((pattern) => pattern.test(line)))
        addFinding({ kind: 'error log', detail: line.slice(0, 200) });
      for (const leak of scanner.scan(line)) addFinding({ kind: 'leak in log', detail: `${leak.detail} (stdout)` });
    }
    for (const line of stderr) {
      if (line.trim() === '') continue;
      if (!BENIGN_STDERR.some((pattern) => pattern.test(line)))
        addFinding({ kind: 'unexpected stderr', detail: line.slice(0, 200) });
      for (const leak of scanner.scan(line)) addFinding({ kind: 'leak in log', detail: `${leak.detail} (stderr)` });
    }

    return {
      seed: options.seed,
      requests: completed,
      durationMs,
      byOutcome,
      byRoute,
      byStatus,
      byTransport,
      tokensIssued: issued,
      logLines: stdout.length + stderr.length,
      findings,
      findingCounts,
      hostExit,
    };
  } finally {
    if (host && host.exitStatus() === undefined) await host.stop();
    await azurite?.stop();
    if (azuriteDir) await rm(azuriteDir, { recursive: true, force: true });
  }
}

function classOf(status: number): Outcome {
  return `${Math.floor(status / 100)}xx` as Outcome;
}

/** The token a 200 of a token route carries (the value a client would use), or undefined. */
function tokenIn(route: RouteName, response: string): string | undefined {
  const body = response.slice(response.indexOf('\r\n\r\n') + 4);
  switch (route) {
    case 'mixedRealityToken':
      return /"AccessToken":"([^"]+)"/.exec(body)?.[1];
    case 'issueToken':
    case 'issueLimitedAccessToken':
      return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(body.trim()) ? body.trim() : undefined;
    case 'wrapToken':
      return /^wrap_access_token=([^&]+)&wrap_access_token_expires_in=\d+$/.exec(body.trim())?.[1];
    default:
      return undefined;
  }
}
