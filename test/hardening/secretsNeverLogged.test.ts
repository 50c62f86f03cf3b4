import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeakScanner } from '../../tooling/fuzz/leakScanner.js';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { CredentialDirectory } from '../../shared/credentials/credentialDirectory.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { type StsServices } from '../../shared/services.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';
import {
  countedServices,
  flowRequest,
  invokeInProcess,
  sendHttp,
  TOKEN_FLOWS,
  WRAP_SCOPE,
  type Answer,
  type ClientRequest,
  type TokenFlow,
} from './hardeningSupport.js';

/**
 * Secrets never logged (issue #8 §6): every line written during a run over all four flows, successes and
 * every kind of failure, is captured (the local host's log, the raw `context.log/warn/error` of the handlers
 * as Azure would record them, anything on console, stdout or stderr) and scanned for every stored key,
 * password, subscription key and signing key, every key a client presented (right or wrong), and every token
 * issued during the run, whole or truncated.
 */

const NOW = new Date('2026-03-01T09:30:00.000Z');
let credentials: TestCredentials;
const captured: string[] = [];
const issued: string[] = [];
const presented = new Set<string>();
let restoreCapture: () => void;

/** Records everything written to console, stdout and stderr (and still writes it). */
function captureProcessOutput(): () => void {
  const originals = { stdout: process.stdout.write.bind(process.stdout), stderr: process.stderr.write.bind(process.stderr) };
  const consoleOriginals = { log: console.log, info: console.info, warn: console.warn, error: console.error, debug: console.debug };
  const record = (chunk: unknown): void => {
    captured.push(typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk));
  };
  process.stdout.write = ((chunk: unknown, ...rest: never[]) => {
    record(chunk);
    return originals.stdout(chunk as string, ...rest);
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown, ...rest: never[]) => {
    record(chunk);
    return originals.stderr(chunk as string, ...rest);
  }) as typeof process.stderr.write;
  for (const level of Object.keys(consoleOriginals) as (keyof typeof consoleOriginals)[]) {
    console[level] = (...args: unknown[]) => {
      record(args.map((a) => (a instanceof Error ? `${a.name}: ${a.message}\n${a.stack ?? ''}` : String(a))).join(' '));
      consoleOriginals[level](...args);
    };
  }
  return () => {
    process.stdout.write = originals.stdout;
    process.stderr.write = originals.stderr;
    Object.assign(console, consoleOriginals);
  };
}

/** Every request of the run: per flow, each key slot, and every way of failing we can provoke. */
function scenarios(flow: TokenFlow): Array<{ label: string; request: ClientRequest }> {
  const valid = flowRequest(flow, credentials);
  const keys: Record<TokenFlow, readonly [string, string]> = {
    mixedReality: credentials.mixedReality.account.keys,
    issueToken: credentials.cognitive.speech.keys,
    limitedAccessToken: credentials.cognitive.isvFace.keys,
    wrap: credentials.wrap.owner.keys,
  };
  const [first, second] = keys[flow];
  const nearMiss = `${first.slice(0, -2)}${first.at(-2) === 'A' ? 'B' : 'A'}${first.at(-1)}`;
  presented.add(nearMiss);
  const list: Array<{ label: string; request: ClientRequest }> = [
    { label: 'key 1', request: valid },
    { label: 'key 2', request: flowRequest(flow, credentials, second) },
    { label: 'a key one character off', request: flowRequest(flow, credentials, nearMiss) },
    { label: 'another credential’s key', request: flowRequest(flow, credentials, credentials.mixedReality.disabled.keys[0]) },
    { label: 'a body over the limit', request: { ...valid, method: 'POST', body: `${valid.body ?? ''}${'&x=1'.repeat(5_000)}` } },
    { label: 'a URL over the limit', request: { ...valid, path: `${valid.path}${valid.path.includes('?') ? '&' : '?'}pad=${first}${'a'.repeat(3_000)}` } },
  ];
  switch (flow) {
    case 'mixedReality': {
      const { accountId } = credentials.mixedReality.account;
      const disabled = credentials.mixedReality.disabled;
      list.push(
        { label: 'disabled account', request: { method: 'GET', path: `/accounts/${disabled.accountId}/token`, headers: { authorization: `Bearer ${disabled.accountId}:${disabled.keys[0]}` }, params: { accountId: disabled.accountId } } },
        { label: 'key in a Basic header', request: { ...valid, headers: { authorization: `Basic ${Buffer.from(`${accountId}:${first}`).toString('base64')}` } } },
        { label: 'id mismatch', request: { ...valid, headers: { authorization: `Bearer 00000000-0000-0000-0000-000000000000:${first}` } } },
        { label: 'no colon', request: { ...valid, headers: { authorization: `Bearer ${first}` } } },
      );
      break;
    }
    case 'issueToken':
    case 'limitedAccessToken':
      list.push(
        { label: 'key in the query', request: { ...valid, path: `${valid.path}${valid.path.includes('?') ? '&' : '?'}Subscription-Key=${encodeURIComponent(first)}`, headers: { 'content-type': 'application/json' } } },
        { label: 'wrong key in the query', request: { ...valid, path: `${valid.path}${valid.path.includes('?') ? '&' : '?'}subscription-key=${nearMiss}`, headers: {} } },
        { label: 'disabled resource', request: flowRequest(flow, credentials, credentials.cognitive.disabled.keys[0]) },
        { label: 'two keys in one header', request: { ...valid, headers: { ...valid.headers, 'ocp-apim-subscription-key': `${first}, ${second}` } } },
      );
      if (flow === 'limitedAccessToken') {
        list.push(
          { label: 'a body echoing the key', request: { ...valid, body: JSON.stringify({ targetAzureResourceId: first, featureFlags: [second] }) } },
          { label: 'a flag it may not grant', request: { ...valid, body: JSON.stringify({ targetAzureResourceId: credentials.cognitive.speech.resourceId, featureFlags: [first] }) } },
          { label: 'not JSON', request: { ...valid, body: `{${first}` } },
        );
      }
      break;
    case 'wrap': {
      const form = (fields: Record<string, string>): string => new URLSearchParams(fields).toString();
      list.push(
        { label: 'disabled issuer', request: { ...valid, body: form({ wrap_name: 'retired', wrap_password: credentials.wrap.disabled.keys[0], wrap_scope: WRAP_SCOPE }) } },
        { label: 'scope not allowed', request: { ...valid, body: form({ wrap_name: 'orders-listener', wrap_password: credentials.wrap.listener.keys[0], wrap_scope: `${WRAP_SCOPE}billing` }) } },
        { label: 'password repeated', request: { ...valid, body: `${valid.body ?? ''}&wrap_password=${encodeURIComponent(second)}` } },
        { label: 'key as the scope', request: { ...valid, body: form({ wrap_name: 'owner', wrap_password: first, wrap_scope: first }) } },
        { label: 'key as the name', request: { ...valid, body: form({ wrap_name: first, wrap_password: first, wrap_scope: WRAP_SCOPE }) } },
      );
      break;
    }
  }
  return list;
}

function collectIssued(flow: TokenFlow, answer: Answer): void {
  if (answer.status !== 200) return;
  if (flow === 'mixedReality') issued.push((JSON.parse(answer.text) as { AccessToken: string }).AccessToken);
  else if (flow === 'wrap') issued.push(/^wrap_access_token=([^&]+)&/.exec(answer.text)?.[1] ?? '');
  else issued.push(answer.text);
}

beforeAll(async () => {
  credentials = await createTestCredentials({ clock: () => NOW });
  restoreCapture = captureProcessOutput();
});
afterAll(async () => {
  restoreCapture();
  await credentials.remove();
});

describe('over HTTP through the local host', () => {
  let host: TestHost;
  beforeAll(async () => {
    // A low IP limit, so the run also produces 429s.
    const { services } = await countedServices(credentials, () => NOW, { STS_FAILED_ATTEMPTS_PER_WINDOW: '40' });
    host = await startTestHost({ services });
  });
  afterAll(async () => {
    await host.close();
    captured.push(...host.logLines);
  });

  it.each(TOKEN_FLOWS)('%s: every scenario answered', async (flow) => {
    const statuses = new Set<number>();
    for (const { request } of scenarios(flow)) {
      const answer = await sendHttp(host.url, request);
      statuses.add(answer.status);
      collectIssued(flow, answer);
    }
    expect(statuses.has(200)).toBe(true);
    expect([...statuses].some((s) => s >= 400)).toBe(true);
  });

  it('keeps failing until the IP limit answers 429', async () => {
    let last: Answer | undefined;
    for (let i = 0; i < 60 && last?.status !== 429; i += 1) last = await sendHttp(host.url, flowRequest('mixedReality', credentials, `guess-${i}`));
    expect(last?.status).toBe(429);
  });
});

describe('in process, the raw handler log (what Azure records, before any masking)', () => {
  const rawLog: string[] = [];
  afterAll(() => {
    captured.push(...rawLog);
  });

  it.each(TOKEN_FLOWS)('%s: every scenario, with the vault failing and the ledger failing too', async (flow) => {
    const { services } = await countedServices(credentials, () => NOW);
    for (const { request } of scenarios(flow)) collectIssued(flow, await invokeInProcess(flow, request, { services, clientIp: '198.51.100.7', log: (l) => rawLog.push(l) }));

    // Secret-store failures carry the secret's name (derived from the presented key for Cognitive) in their cause.
    const failingStore = {
      getSecret: async (name: string) => {
        throw new DependencyUnavailableError('secret-store', 5, `Key Vault answered 503 for ${name}`);
      },
      getFreshSecret: async (name: string) => {
        throw new DependencyUnavailableError('secret-store', 5, `Key Vault answered 503 for ${name}`);
      },
      getSecretVersions: services.secrets.getSecretVersions.bind(services.secrets),
    };
    const vaultDown: StsServices = { ...services, credentials: new CredentialDirectory(failingStore) };
    const down = await invokeInProcess(flow, flowRequest(flow, credentials), { services: vaultDown, log: (l) => rawLog.push(l) });
    expect(down.status).toBe(503);

    const ledgerDown: StsServices = {
      ...services,
      ledger: {
        record: async (entry) => {
          throw new DependencyUnavailableError('ledger', 5, `table write failed for ${entry.credentialId ?? '?'} ${entry.jti ?? ''}`);
        },
        close: async () => {},
      },
    };
    expect((await invokeInProcess(flow, flowRequest(flow, credentials), { services: ledgerDown, log: (l) => rawLog.push(l) })).status).toBe(503);
    expect((await invokeInProcess(flow, flowRequest(flow, credentials, 'wrong'), { services: ledgerDown, log: (l) => rawLog.push(l) })).status).toBe(401);
  });
});

describe('the scan', () => {
  it('captured the run: request lines, refusals, outages and the 429s', () => {
    const all = captured.join('\n');
    expect(all).toMatch(/GET \/accounts\/[0-9a-f-]{36}\/token 200 /);
    expect(all).toMatch(/refused 401 ERR_STS_INVALID_CREDENTIALS/);
    expect(all).toMatch(/refused 429 ERR_STS_RATE_LIMITED/);
    expect(all).toMatch(/refused 413/);
    expect(all).toMatch(/unavailable: secret-store/);
    expect(all).toMatch(/unavailable: ledger|ledger: refusal not recorded/);
    expect(issued.filter(Boolean).length).toBeGreaterThanOrEqual(4 * 2 * 2);
  });

  it('finds no key, password, subscription key, signing key or issued token in any captured line', async () => {
    const stored: string[] = [];
    const records = [
      credentials.mixedReality.account,
      credentials.mixedReality.disabled,
      credentials.cognitive.speech,
      credentials.cognitive.isvFace,
      credentials.cognitive.disabled,
      credentials.wrap.owner,
      credentials.wrap.listener,
      credentials.wrap.disabled,
    ];
    for (const record of records) stored.push(...record.keys);
    stored.push(credentials.wrap.namespace.signingKey);
    const signingKey = JSON.parse((await credentials.store.getSecret(vaultLayout.signingKey))?.value ?? '{}') as Record<string, unknown>;
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) if (typeof signingKey[member] === 'string') stored.push(signingKey[member] as string);
    expect(stored.length).toBeGreaterThan(17);

    const scanner = new LeakScanner([
      ...stored.map((value) => ({ value, label: 'a stored key' })),
      ...[...presented].map((value) => ({ value, label: 'a presented key' })),
    ]);
    for (const token of issued.filter(Boolean)) scanner.registerIssued(token);
    const leaks = captured.flatMap((line) => scanner.scan(line).map((leak) => `${leak.detail}: ${line.slice(0, 120)}`));
    expect(leaks).toEqual([]);
  });
});
