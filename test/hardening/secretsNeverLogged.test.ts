import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeakScanner } from '../../tooling/fuzz/leakScanner.js';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { CredentialDirectory } from '../../shared/credentials/credentialDirectory.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import type { StsServices } from '../../shared/services.js';
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
 * Secrets never logged (docs/hardening.md#secrets-never-logged): every line written during a run over all four flows, successes and
 * every kind of failure, is captured (the local host's log, the raw `context.log/warn/error` of the handlers
 * as Azure would record them, anything on console, stdout or stderr) and scanned for every stored key,
 * password, subscription key and signing key, every key a client presented (right or wrong), and every token
 * issued during the run, whole or truncated.
 *
 * Each `describe` block is one run, complete in itself: its `beforeAll` makes every request and captures
 * every line, its tests assert on that run alone, so blocks and tests pass in any order, or alone.
 */

const NOW = new Date('2026-03-01T09:30:00.000Z');
let credentials: TestCredentials;

beforeAll(async () => {
  credentials = await createTestCredentials({ clock: () => NOW });
});
afterAll(async () => {
  await credentials.remove();
});

/** What one run wrote and handed out: every captured line, every token issued, every wrong key presented. */
class Run {
  readonly captured: string[] = [];
  readonly issued: string[] = [];
  readonly presented = new Set<string>();
  /** The status of every scenario, per flow, in the order sent. */
  readonly statuses = new Map<TokenFlow, number[]>();

  answered(flow: TokenFlow, answer: Answer): void {
    this.statuses.set(flow, [...(this.statuses.get(flow) ?? []), answer.status]);
    if (answer.status !== 200) return;
    if (flow === 'mixedRealityToken')
      this.issued.push((JSON.parse(answer.text) as { AccessToken: string }).AccessToken);
    else if (flow === 'wrapToken') this.issued.push(/^wrap_access_token=([^&]+)&/.exec(answer.text)?.[1] ?? '');
    else this.issued.push(answer.text);
  }

  /** Every captured line that holds a stored key, a presented key or an issued token (none, we expect). */
  async leaks(): Promise<string[]> {
    const scanner = new LeakScanner([
      ...(await storedSecrets()).map((value) => ({ value, label: 'a stored key' })),
      ...[...this.presented].map((value) => ({ value, label: 'a presented key' })),
    ]);
    for (const token of this.issued.filter(Boolean)) scanner.registerIssued(token);
    return this.captured.flatMap((line) => scanner.scan(line).map((leak) => `${leak.detail}: ${line.slice(0, 120)}`));
  }
}

/** Every key, password and signing-key member in the test store. */
async function storedSecrets(): Promise<string[]> {
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
  const signingKey = JSON.parse((await credentials.store.getSecret(vaultLayout.signingKey))?.value ?? '{}') as Record<
    string,
    unknown
  >;
  for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'])
    if (typeof signingKey[member] === 'string') stored.push(signingKey[member]);
  return stored;
}

/** Records everything written to console, stdout and stderr into `lines` (and still writes it). */
function captureProcessOutput(lines: string[]): () => void {
  const originals = {
    stdout: process.stdout.write.bind(process.stdout),
    stderr: process.stderr.write.bind(process.stderr),
  };
  const consoleOriginals = {
    log: console.log,
    info: console.info,
    warn: console.warn,
    error: console.error,
    debug: console.debug,
  };
  const record = (chunk: unknown): void => {
    lines.push(typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk));
  };
  process.stdout.write = (chunk: unknown, ...rest: never[]) => {
    record(chunk);
    return originals.stdout(chunk as string, ...rest);
  };
  process.stderr.write = (chunk: unknown, ...rest: never[]) => {
    record(chunk);
    return originals.stderr(chunk as string, ...rest);
  };
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

/** Every request of a run: per flow, each key slot, and every way of failing we can provoke. */
function scenarios(flow: TokenFlow, run: Run): Array<{ label: string; request: ClientRequest }> {
  const valid = flowRequest(flow, credentials);
  const keys: Record<TokenFlow, readonly [string, string]> = {
    mixedRealityToken: credentials.mixedReality.account.keys,
    issueToken: credentials.cognitive.speech.keys,
    issueLimitedAccessToken: credentials.cognitive.isvFace.keys,
    wrapToken: credentials.wrap.owner.keys,
  };
  const [first, second] = keys[flow];
  const nearMiss = `${first.slice(0, -2)}${first.at(-2) === 'A' ? 'B' : 'A'}${first.at(-1)}`;
  run.presented.add(nearMiss);
  const list: Array<{ label: string; request: ClientRequest }> = [
    { label: 'key 1', request: valid },
    { label: 'key 2', request: flowRequest(flow, credentials, second) },
    { label: 'a key one character off', request: flowRequest(flow, credentials, nearMiss) },
    {
      label: 'another credential’s key',
      request: flowRequest(flow, credentials, credentials.mixedReality.disabled.keys[0]),
    },
    {
      label: 'a body over the limit',
      request: { ...valid, method: 'POST', body: `${valid.body ?? ''}${'&x=1'.repeat(5_000)}` },
    },
    {
      label: 'a URL over the limit',
      request: {
        ...valid,
        path: `${valid.path}${valid.path.includes('?') ? '&' : '?'}pad=${first}${'a'.repeat(3_000)}`,
      },
    },
  ];
  switch (flow) {
    case 'mixedRealityToken': {
      const { accountId } = credentials.mixedReality.account;
      const disabled = credentials.mixedReality.disabled;
      list.push(
        {
          label: 'disabled account',
          request: {
            method: 'GET',
            path: `/accounts/${disabled.accountId}/token`,
            headers: { authorization: `Bearer ${disabled.accountId}:${disabled.keys[0]}` },
            params: { accountId: disabled.accountId },
          },
        },
        {
          label: 'key in a Basic header',
          request: {
            ...valid,
            headers: { authorization: `Basic ${Buffer.from(`${accountId}:${first}`).toString('base64')}` },
          },
        },
        {
          label: 'id mismatch',
          request: { ...valid, headers: { authorization: `Bearer 00000000-0000-0000-0000-000000000000:${first}` } },
        },
        { label: 'no colon', request: { ...valid, headers: { authorization: `Bearer ${first}` } } },
      );
      break;
    }
    case 'issueToken':
    case 'issueLimitedAccessToken':
      list.push(
        {
          label: 'key in the query',
          request: {
            ...valid,
            path: `${valid.path}${valid.path.includes('?') ? '&' : '?'}Subscription-Key=${encodeURIComponent(first)}`,
            headers: { 'content-type': 'application/json' },
          },
        },
        {
          label: 'wrong key in the query',
          request: {
            ...valid,
            path: `${valid.path}${valid.path.includes('?') ? '&' : '?'}subscription-key=${nearMiss}`,
            headers: {},
          },
        },
        { label: 'disabled resource', request: flowRequest(flow, credentials, credentials.cognitive.disabled.keys[0]) },
        {
          label: 'two keys in one header',
          request: { ...valid, headers: { ...valid.headers, 'ocp-apim-subscription-key': `${first}, ${second}` } },
        },
      );
      if (flow === 'issueLimitedAccessToken') {
        list.push(
          {
            label: 'a body echoing the key',
            request: { ...valid, body: JSON.stringify({ targetAzureResourceId: first, featureFlags: [second] }) },
          },
          {
            label: 'a flag it may not grant',
            request: {
              ...valid,
              body: JSON.stringify({
                targetAzureResourceId: credentials.cognitive.speech.resourceId,
                featureFlags: [first],
              }),
            },
          },
          { label: 'not JSON', request: { ...valid, body: `{${first}` } },
        );
      }
      break;
    case 'wrapToken': {
      const form = (fields: Record<string, string>): string => new URLSearchParams(fields).toString();
      list.push(
        {
          label: 'disabled issuer',
          request: {
            ...valid,
            body: form({
              wrap_name: 'retired',
              wrap_password: credentials.wrap.disabled.keys[0],
              wrap_scope: WRAP_SCOPE,
            }),
          },
        },
        {
          label: 'scope not allowed',
          request: {
            ...valid,
            body: form({
              wrap_name: 'orders-listener',
              wrap_password: credentials.wrap.listener.keys[0],
              wrap_scope: `${WRAP_SCOPE}billing`,
            }),
          },
        },
        {
          label: 'password repeated',
          request: { ...valid, body: `${valid.body ?? ''}&wrap_password=${encodeURIComponent(second)}` },
        },
        {
          label: 'key as the scope',
          request: { ...valid, body: form({ wrap_name: 'owner', wrap_password: first, wrap_scope: first }) },
        },
        {
          label: 'key as the name',
          request: { ...valid, body: form({ wrap_name: first, wrap_password: first, wrap_scope: WRAP_SCOPE }) },
        },
      );
      break;
    }
  }
  return list;
}

describe('over HTTP through the local host', () => {
  const run = new Run();
  /** The answer that ended the run of wrong keys from one IP (at most 60 of them). */
  let lastGuess: Answer | undefined;

  beforeAll(async () => {
    const restoreCapture = captureProcessOutput(run.captured);
    let host: TestHost | undefined;
    try {
      // A low IP limit, so the run also produces 429s.
      const { services } = await countedServices(credentials, () => NOW, { STS_FAILED_ATTEMPTS_PER_WINDOW: '40' });
      host = await startTestHost({ services });
      for (const flow of TOKEN_FLOWS) {
        for (const { request } of scenarios(flow, run)) run.answered(flow, await sendHttp(host.url, request));
      }
      for (let i = 0; i < 60 && lastGuess?.status !== 429; i += 1) {
        lastGuess = await sendHttp(host.url, flowRequest('mixedRealityToken', credentials, `guess-${i}`));
      }
    } finally {
      await host?.close(); // before reading its log: every request line is written by then
      run.captured.push(...(host?.logLines ?? []));
      restoreCapture();
    }
  });

  it.each(TOKEN_FLOWS)('%s: every scenario answered, with tokens and with refusals', (flow) => {
    const statuses = run.statuses.get(flow) ?? [];
    expect(statuses).toHaveLength(scenarios(flow, new Run()).length);
    expect(statuses).toContain(200);
    expect(statuses.some((s) => s >= 400)).toBe(true);
  });

  it('keeps failing until the IP limit answers 429', () => {
    expect(lastGuess?.status).toBe(429);
  });

  it('captured the run: request lines, refusals, the 413s and the 429s', () => {
    const all = run.captured.join('\n');
    expect(all).toMatch(/GET \/accounts\/[0-9a-f-]{36}\/token 200 /);
    expect(all).toMatch(/refused 401 ERR_STS_INVALID_CREDENTIALS/);
    expect(all).toMatch(/refused 429 ERR_STS_RATE_LIMITED/);
    expect(all).toMatch(/refused 413/);
    expect(run.issued.filter(Boolean).length).toBeGreaterThanOrEqual(4 * 2);
  });

  it('finds no key, password, subscription key, signing key or issued token in any captured line', async () => {
    expect(await run.leaks()).toEqual([]);
  });
});

describe('in process, the raw handler log (what Azure records, before any masking)', () => {
  const run = new Run();
  /** Per flow: the answers with the vault down, with the ledger down, and to a wrong key with the ledger down. */
  const outages = new Map<TokenFlow, { vaultDown: number; ledgerDown: number; wrongKeyLedgerDown: number }>();

  beforeAll(async () => {
    const restoreCapture = captureProcessOutput(run.captured);
    const log = (line: string): void => void run.captured.push(line);
    try {
      for (const flow of TOKEN_FLOWS) {
        const { services } = await countedServices(credentials, () => NOW);
        for (const { request } of scenarios(flow, run))
          run.answered(flow, await invokeInProcess(flow, request, { services, clientIp: '198.51.100.7', log }));

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
        const vaultDownServices: StsServices = { ...services, credentials: new CredentialDirectory(failingStore) };
        const vaultDown = (
          await invokeInProcess(flow, flowRequest(flow, credentials), { services: vaultDownServices, log })
        ).status;

        const ledgerDown: StsServices = {
          ...services,
          ledger: {
            record: async (entry) => {
              throw new DependencyUnavailableError(
                'ledger',
                5,
                `table write failed for ${entry.credentialId ?? '?'} ${entry.jti ?? ''}`,
              );
            },
            close: async () => {},
          },
        };
        outages.set(flow, {
          vaultDown,
          ledgerDown: (await invokeInProcess(flow, flowRequest(flow, credentials), { services: ledgerDown, log }))
            .status,
          wrongKeyLedgerDown: (
            await invokeInProcess(flow, flowRequest(flow, credentials, 'wrong'), { services: ledgerDown, log })
          ).status,
        });
      }
    } finally {
      restoreCapture();
    }
  });

  it.each(TOKEN_FLOWS)(
    '%s: every scenario answered; 503 with the vault or the ledger down, and a wrong key still a 401',
    (flow) => {
      const statuses = run.statuses.get(flow) ?? [];
      expect(statuses).toHaveLength(scenarios(flow, new Run()).length);
      expect(statuses).toContain(200);
      expect(statuses.some((s) => s >= 400)).toBe(true);
      expect(outages.get(flow)).toEqual({ vaultDown: 503, ledgerDown: 503, wrongKeyLedgerDown: 401 });
    },
  );

  it('captured the run: refusals and both outages', () => {
    const all = run.captured.join('\n');
    expect(all).toMatch(/refused 401 ERR_STS_INVALID_CREDENTIALS/);
    expect(all).toMatch(/unavailable: secret-store/);
    expect(all).toMatch(/unavailable: ledger|ledger: refusal not recorded/);
    expect(run.issued.filter(Boolean).length).toBeGreaterThanOrEqual(4 * 2);
  });

  it('finds no key, password, subscription key, signing key or issued token in any captured line', async () => {
    expect(await run.leaks()).toEqual([]);
  });
});
