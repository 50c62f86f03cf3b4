import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createUpstreamClient,
  type UpstreamClient,
  type UpstreamClientOptions,
  type UpstreamRequest,
} from '../../shared/upstream/upstreamClient.js';
import { UpstreamError } from '../../shared/upstream/upstreamErrors.js';
import { startUpstreamStub, type UpstreamStub } from '../support/upstreamStub.js';
import { loopbackHostPolicy } from './loopbackHostPolicy.js';
import { untrustedTls, upstreamTestTls, type UpstreamTestTls } from './upstreamTestTls.js';

const cognitiveKey = 'c0ffee00c0ffee00c0ffee00c0ffee00';
let tls: UpstreamTestTls;
let stub: UpstreamStub;
const clients: UpstreamClient[] = [];
const logLines: string[] = [];

const newClient = (options: UpstreamClientOptions = {}): UpstreamClient => {
  const client = createUpstreamClient({
    testTrustedCa: tls.clientCa,
    backoffBaseMs: 20,
    backoffMaxMs: 100,
    log: (line) => logLines.push(line),
    hostPolicy: loopbackHostPolicy,
    ...options,
  });
  clients.push(client);
  return client;
};

const issueToken = (key = cognitiveKey): UpstreamRequest => ({
  url: new URL(`${stub.url}/sts/v1.0/issueToken`),
  method: 'POST',
  headers: { 'ocp-apim-subscription-key': key },
  body: '',
  label: 'issueToken',
  service: 'cognitive',
});

const failureOf = async (promise: Promise<unknown>): Promise<UpstreamError> => {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(UpstreamError);
  return error as UpstreamError;
};

beforeAll(async () => {
  tls = await upstreamTestTls();
  stub = await startUpstreamStub({
    tls: tls.server,
    credentials: {
      mixedReality: { accountId: '00000000-0000-0000-0000-000000000001', accountKey: 'unused' },
      cognitiveKey,
      wrap: { issuerName: 'owner', password: 'unused' },
    },
  });
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await stub.close();
  await tls.dispose();
});

beforeEach(() => {
  stub.setFault(undefined);
  stub.resetRecords();
});

afterEach(() => {
  expect(stub.internalErrors).toEqual([]);
});

describe('upstream client: success and keep-alive', () => {
  it('returns the 2xx answer with its body and a single attempt', async () => {
    const answer = await newClient().send(issueToken());
    expect(answer.status).toBe(200);
    expect(answer.attempts).toBe(1);
    expect(answer.headers['content-type']).toBe('application/jwt; charset=us-ascii');
    expect(answer.body).toBe(stub.issuedTokens[0]);
  });

  it('reuses keep-alive connections for sequential calls', async () => {
    const client = newClient();
    for (let i = 0; i < 20; i++) await client.send(issueToken());
    expect(stub.count()).toBe(20);
    // undici may open a second socket while the first is still finishing a response; never one per call.
    expect(stub.connectionCount()).toBeLessThanOrEqual(2);
  });

  it('bounds the connections per origin under concurrency', async () => {
    const client = newClient({ maxConnectionsPerOrigin: 3 });
    stub.setFault({ kind: 'slow', delayMs: 30 });
    const answers = await Promise.all(Array.from({ length: 30 }, () => client.send(issueToken())));
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(stub.count()).toBe(30);
    expect(stub.connectionCount()).toBeLessThanOrEqual(3);
  });
});

describe('upstream client: retries', () => {
  it('retries a 500 and succeeds', async () => {
    stub.failNext({ kind: 'status', status: 500 });
    const answer = await newClient().send(issueToken());
    expect(answer).toMatchObject({ status: 200, attempts: 2 });
    expect(stub.count()).toBe(2);
  });

  it('retries a reset connection and succeeds', async () => {
    stub.failNext({ kind: 'reset' });
    const before = logLines.length;
    const answer = await newClient().send(issueToken());
    expect(answer).toMatchObject({ status: 200, attempts: 2 });
    expect(stub.count()).toBe(2);
    expect(logLines.slice(before)).toEqual([
      expect.stringMatching(/attempt 1 failed: upstream connection error \((econnreset|socket)\)/),
    ]);
  });

  it('waits at least Retry-After before retrying a 429', async () => {
    stub.failNext({ kind: 'status', status: 429, retryAfter: '1' });
    const waits: Array<{ ms: number; sentBefore: number }> = [];
    const sleep = async (ms: number): Promise<void> => void waits.push({ ms, sentBefore: stub.count() });
    const answer = await newClient({ sleep }).send(issueToken());
    expect(answer.attempts).toBe(2);
    expect(waits).toEqual([{ ms: 1_000, sentBefore: 1 }]); // one wait of the full second, before the retry was sent
    expect(stub.count()).toBe(2);
  });

  it('gives up at once, passing Retry-After on, when it exceeds the time budget', async () => {
    stub.setFault({ kind: 'status', status: 429, retryAfter: '30' });
    const waits: number[] = [];
    const sleep = async (ms: number): Promise<void> => void waits.push(ms);
    const error = await failureOf(newClient({ totalBudgetMs: 2_000, sleep }).send(issueToken()));
    expect(waits).toEqual([]); // no wait at all
    expect(error).toMatchObject({ failure: 'status', status: 429, retryAfterSeconds: 30, attempts: 1 });
    expect(stub.count()).toBe(1);
  });

  it('stops after maxAttempts on a persistent 503', async () => {
    stub.setFault({ kind: 'status', status: 503 });
    const error = await failureOf(newClient({ maxAttempts: 3 }).send(issueToken()));
    expect(error).toMatchObject({ failure: 'status', status: 503, attempts: 3 });
    expect(stub.count()).toBe(3);
  });

  it.each([400, 401, 403, 404, 408, 413])('never retries a %i', async (status) => {
    stub.setFault({ kind: 'status', status });
    const error = await failureOf(newClient().send(issueToken()));
    expect(error).toMatchObject({ failure: 'status', status, attempts: 1 });
    expect(stub.count()).toBe(1);
  });

  it('a real 401 from a wrong key is final too', async () => {
    const error = await failureOf(newClient().send(issueToken('ffffffffffffffffffffffffffffffff')));
    expect(error).toMatchObject({ failure: 'status', status: 401, attempts: 1 });
    expect(stub.count()).toBe(1);
  });
});

describe('upstream client: timeouts and budget', () => {
  // The stub stalls far longer than any bound below and would then answer 200: a timeout can only come from the bound.
  it('times out a slow upstream per attempt, retries, and fails within the budget', async () => {
    stub.setFault({ kind: 'slow', delayMs: 60_000 });
    const error = await failureOf(newClient({ headersTimeoutMs: 200, maxAttempts: 2 }).send(issueToken()));
    expect(error).toMatchObject({ failure: 'timeout', attempts: 2 });
    expect(error.message).toContain('headers timeout');
    expect(stub.count()).toBe(2);
  });

  it('the total budget cuts a slow attempt short', async () => {
    stub.setFault({ kind: 'slow', delayMs: 60_000 });
    const error = await failureOf(newClient({ headersTimeoutMs: 50_000, totalBudgetMs: 300 }).send(issueToken()));
    expect(error).toMatchObject({ failure: 'timeout', attempts: 1 });
    expect(error.message).toContain('time budget exhausted');
  });

  it('a connection refused is retried, then reported', async () => {
    const error = await failureOf(
      newClient({ maxAttempts: 2 }).send({ ...issueToken(), url: new URL('https://127.0.0.1:1/sts/v1.0/issueToken') }),
    );
    expect(error).toMatchObject({ failure: 'connection', attempts: 2 });
  });
});

describe('upstream client: TLS and configuration', () => {
  it('refuses an upstream whose certificate it does not trust, without retrying', async () => {
    const strange = await untrustedTls();
    const other = await startUpstreamStub({ tls: strange.server, credentials: structuredClone(stub.credentials) });
    try {
      const error = await failureOf(
        newClient().send({ ...issueToken(), url: new URL(`${other.url}/sts/v1.0/issueToken`) }),
      );
      expect(error).toMatchObject({ failure: 'tls', attempts: 1 });
      expect(other.count()).toBe(0);
    } finally {
      await other.close();
      await strange.dispose();
    }
  });

  it('trusts a CA added the standard way, NODE_EXTRA_CA_CERTS, with no client option (and not without it)', async () => {
    const own = await untrustedTls();
    const other = await startUpstreamStub({ tls: own.server, credentials: structuredClone(stub.credentials) });
    const fixture = fileURLToPath(new URL('./fixtures/sendWithDefaultTrust.ts', import.meta.url));
    const run = async (extraCa: string | undefined) => {
      const env: NodeJS.ProcessEnv = { ...process.env, PROBE_SUBSCRIPTION_KEY: cognitiveKey };
      delete env.NODE_EXTRA_CA_CERTS;
      if (extraCa) env.NODE_EXTRA_CA_CERTS = extraCa;
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', fixture, `${other.url}/sts/v1.0/issueToken`],
        {
          env,
          timeout: 20_000,
        },
      );
      return JSON.parse(stdout.trim()) as unknown;
    };
    try {
      expect(await run(own.caPath)).toEqual({ status: 200 });
      expect(await run(undefined)).toEqual({ failure: 'tls' });
      expect(other.count()).toBe(1);
    } finally {
      await other.close();
      await own.dispose();
    }
  });

  it('refuses plain http', async () => {
    const error = await failureOf(
      newClient().send({ ...issueToken(), url: new URL('http://127.0.0.1:1/sts/v1.0/issueToken') }),
    );
    expect(error.failure).toBe('configuration');
  });

  it('refuses an answer larger than the limit', async () => {
    const error = await failureOf(newClient({ maxResponseBytes: 100 }).send(issueToken()));
    expect(error).toMatchObject({ failure: 'protocol', attempts: 1 });
  });
});

describe('upstream client: logs', () => {
  it('never writes the key or a token in a log line', async () => {
    const client = newClient();
    stub.failNext({ kind: 'status', status: 500 });
    stub.failNext({ kind: 'reset' });
    await client.send(issueToken());
    await failureOf(client.send(issueToken('0123456789abcdef0123456789abcdef')));
    expect(logLines.length).toBeGreaterThan(0);
    const secrets = [cognitiveKey, '0123456789abcdef0123456789abcdef', ...stub.issuedTokens];
    for (const line of logLines) {
      for (const secret of secrets) expect(line).not.toContain(secret);
    }
  });
});
