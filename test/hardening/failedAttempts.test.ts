import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { CredentialDirectory } from '../../shared/credentials/credentialDirectory.js';
import { CachedSecretStore } from '../../shared/secrets/cachedSecretStore.js';
import { FailedAttemptLimiter, ipKey } from '../../shared/security/failedAttemptLimiter.js';
import { createServices, type StsServices } from '../../shared/services.js';
import { createMixedRealityAccount } from '../../tools/sts/credentials/provisioning.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';
import {
  closeLoopbackClients,
  countedServices,
  countingStore,
  expectFlowErrorShape,
  flowRequest,
  invokeInProcess,
  loopbackClient,
  sendHttp,
  TOKEN_FLOWS,
  WRAP_SCOPE,
  type ClientRequest,
} from './hardeningSupport.js';

/**
 * Failed-attempt limits that can never be turned against a key holder (docs/failed-attempts.md): a request
 * with the right key is never refused by them, whatever was sent before it from any address; every refusal
 * counts (missing, malformed, mismatched, unknown, wrong); unknown ids create no counters, and a flood of new
 * addresses cannot erase an existing block. Distinct loopback source addresses stand in for distinct clients;
 * time is an injected clock.
 */

const START = new Date('2026-03-01T09:30:00.000Z');
let nowMs = START.getTime();
const clock = (): Date => new Date(nowMs);
/** A fresh limiter window for the next test (counters are per window). */
const nextWindow = (): void => {
  nowMs += 3_600_000;
};

let credentials: TestCredentials;
beforeAll(async () => {
  credentials = await createTestCredentials({ clock: () => START });
});
afterAll(async () => {
  await closeLoopbackClients();
  await credentials.remove();
});

describe('FailedAttemptLimiter', () => {
  const limits = { perClientIp: 3, perCredential: 5, windowSeconds: 60, maxTrackedKeys: 100 };

  it('answers 429 for an address only past its limit, until the window ends, and reports only the first of those', () => {
    let t = 0;
    const limiter = new FailedAttemptLimiter(limits, () => new Date(t));
    for (let i = 0; i < 3; i += 1)
      expect(limiter.recordRefusal({ clientIp: '203.0.113.7' })).toEqual({ retryAfterSeconds: 0, report: true });
    t = 20_500;
    expect(limiter.recordRefusal({ clientIp: '203.0.113.7' })).toEqual({ retryAfterSeconds: 40, report: true });
    expect(limiter.recordRefusal({ clientIp: '203.0.113.7' })).toEqual({ retryAfterSeconds: 40, report: false });
    expect(limiter.recordRefusal({ clientIp: '203.0.113.8' }).retryAfterSeconds).toBe(0); // another client
    expect(limiter.stats().unreported).toBe(1);
    t = 60_000;
    expect(limiter.recordRefusal({ clientIp: '203.0.113.7' }).retryAfterSeconds).toBe(0);
  });

  it('counts an existing credential from every address, ids compared case-insensitively', () => {
    const limiter = new FailedAttemptLimiter(limits, () => new Date(0));
    for (let i = 0; i < 5; i += 1)
      limiter.recordRefusal({ clientIp: `198.51.100.${i}`, existingCredentialId: 'Contoso/Owner' });
    expect(
      limiter.recordRefusal({ clientIp: '192.0.2.99', existingCredentialId: 'contoso/owner' }).retryAfterSeconds,
    ).toBe(60);
    expect(
      limiter.recordRefusal({ clientIp: '192.0.2.98', existingCredentialId: 'contoso/other' }).retryAfterSeconds,
    ).toBe(0);
  });

  it('keeps no counter for a missing address: clients the platform cannot tell apart never share one', () => {
    const limiter = new FailedAttemptLimiter(limits, () => new Date(0));
    for (let i = 0; i < 50; i += 1) expect(limiter.recordRefusal({ clientIp: undefined }).retryAfterSeconds).toBe(0);
    expect(limiter.stats().trackedKeys).toBe(0);
  });

  it('counts IPv6 clients per /64 and IPv4-mapped addresses as IPv4', () => {
    expect(ipKey('2001:db8:1:2:aaaa::1')).toBe(ipKey('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(ipKey('2001:db8:1:2::1')).not.toBe(ipKey('2001:db8:1:3::1'));
    expect(ipKey('::ffff:192.0.2.1')).toBe(ipKey('192.0.2.1'));
    expect(ipKey('2001:DB8:0:0:1::1')).toBe(ipKey('2001:db8::1:0:0:1'));
    expect(ipKey('not an ip'.repeat(100))?.length).toBeLessThanOrEqual(80);
    const limiter = new FailedAttemptLimiter(limits, () => new Date(0));
    for (let i = 0; i < 4; i += 1) limiter.recordRefusal({ clientIp: `2001:db8:1:2::${i + 1}` });
    expect(limiter.clientIpRetryAfter('2001:db8:1:2::ffff')).toBe(60);
  });

  it('at its bound, new keys share an overflow counter: running blocks are never evicted, expired ones make room', () => {
    let t = 0;
    const limiter = new FailedAttemptLimiter(limits, () => new Date(t));
    for (let i = 0; i < 4; i += 1)
      limiter.recordRefusal({ clientIp: '192.0.2.1', existingCredentialId: 'contoso/owner' });
    for (let i = 0; i < 50_000; i += 1) {
      limiter.recordRefusal({
        clientIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
        existingCredentialId: `x`.repeat(1_000) + i,
      });
    }
    expect(limiter.stats().trackedKeys).toBe(100);
    expect(limiter.clientIpRetryAfter('192.0.2.1')).toBe(60); // still blocked
    for (let i = 0; i < 5; i += 1)
      limiter.recordRefusal({ clientIp: '192.0.2.2', existingCredentialId: 'contoso/owner' });
    expect(limiter.credentialRetryAfter('contoso/owner')).toBe(60);
    t = 60_000; // every window ended: the table empties from the front as new keys arrive
    expect(limiter.recordRefusal({ clientIp: '192.0.2.1' }).retryAfterSeconds).toBe(0);
    expect(limiter.stats().trackedKeys).toBe(1);
  });
});

/** The attacks of docs/failed-attempts.md, over HTTP against the local host, from distinct loopback addresses. */
describe('over HTTP: no stream of requests without the key makes the right key fail', () => {
  const PER_IP = 20;
  const PER_CREDENTIAL = 50;
  let host: TestHost;
  let services: StsServices;
  beforeAll(async () => {
    ({ services } = await countedServices(credentials, clock, {
      STS_FAILED_ATTEMPTS_PER_WINDOW: String(PER_IP),
      STS_FAILED_ATTEMPTS_PER_CREDENTIAL: String(PER_CREDENTIAL),
      STS_FAILED_ATTEMPTS_TRACKED_KEYS: '100',
    }));
    host = await startTestHost({ services });
  });
  afterAll(async () => {
    await host.close();
  });
  const send = (from: string, req: ClientRequest) => sendHttp(host.url, req, loopbackClient(from));

  it('account lockout: keyless, malformed, mismatched and wrong requests from one address are counted and answered 429, the owner still gets tokens from anywhere', async () => {
    nextWindow();
    const { accountId } = credentials.mixedReality.account;
    const path = `/accounts/${accountId}/token`;
    const attacks: Array<Record<string, string>> = [
      {},
      { authorization: 'Basic x' },
      { authorization: `Bearer ${accountId}` },
      { authorization: `Bearer ${randomUUID()}:k` },
      { authorization: `Bearer ${accountId}:wrong` },
    ];
    const statuses: number[] = [];
    for (let i = 0; i < 100; i += 1) {
      statuses.push(
        (await send('127.0.1.1', { method: 'GET', path, headers: attacks[i % attacks.length] ?? {} })).status,
      );
    }
    expect(statuses.slice(0, PER_IP).every((status) => status === 401)).toBe(true);
    expect(statuses.slice(PER_IP).every((status) => status === 429)).toBe(true);
    const blocked = await send('127.0.1.1', { method: 'GET', path, headers: {} });
    expectFlowErrorShape('mixedRealityToken', blocked, 429);
    expect(Number(blocked.headers.get('retry-after'))).toBe(60);

    // The owner, from another address and from the attacker's own, with the right key: a token every time.
    for (const from of ['127.0.1.2', '127.0.1.1']) {
      for (let i = 0; i < 3; i += 1)
        expect((await send(from, flowRequest('mixedRealityToken', credentials))).status).toBe(200);
    }
    // Another address's wrong key is a plain 401: the address, not the account, is over its limit.
    expect((await send('127.0.1.3', flowRequest('mixedRealityToken', credentials, 'stale'))).status).toBe(401);
  });

  it('WRAP issuer lockout: 5 addresses × 20 wrong passwords for OWNER / owner never refuse the right password', async () => {
    nextWindow();
    const wrongFor = (name: string) => ({
      ...flowRequest('wrapToken', credentials),
      body: new URLSearchParams({
        wrap_name: name,
        wrap_password: `wrong-${randomUUID()}`,
        wrap_scope: WRAP_SCOPE,
      }).toString(),
    });
    const statuses = new Map<number, number>();
    for (let a = 0; a < 5; a += 1) {
      for (let i = 0; i < 20; i += 1) {
        const status = (await send(`127.0.2.${a + 1}`, wrongFor(i % 4 === 3 ? 'OWNER' : 'owner'))).status;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    }
    // 'owner' exists: its 75 wrong passwords count per credential, the 25 past its limit (50) answer 429 from
    // every address; 'OWNER' is another, unknown issuer name (names are case-sensitive): no counter, 401.
    expect(Object.fromEntries(statuses)).toEqual({ 401: 75, 429: 25 });
    expect(services.failedAttempts.credentialRetryAfter('contoso/owner')).toBe(60);
    expect((await send('127.0.2.6', wrongFor('owner'))).status).toBe(429);
    for (const from of ['127.0.2.1', '127.0.2.5', '127.0.2.6']) {
      const answer = await send(from, flowRequest('wrapToken', credentials));
      expect(answer.status).toBe(200);
      expect(answer.text).toMatch(/^wrap_access_token=/);
    }
  });

  it('counters cannot be wiped: random account ids create no counters, and a flood of new addresses leaves an existing block standing', async () => {
    nextWindow();
    for (let i = 0; i < 300; i += 1) {
      const accountId = randomUUID();
      await send('127.0.3.1', { method: 'GET', path: `/accounts/${accountId}/token`, headers: {} });
    }
    expect(services.failedAttempts.stats().trackedKeys).toBe(1); // only the address (earlier windows ended)
    expect((await send('127.0.3.1', flowRequest('mixedRealityToken', credentials, 'wrong'))).status).toBe(429);

    // 300 more addresses (the table holds 100 counters) each send a keyless request for a random id.
    for (let i = 0; i < 300; i += 1) {
      const accountId = randomUUID();
      await send(`127.0.${4 + Math.floor(i / 250)}.${(i % 250) + 1}`, {
        method: 'GET',
        path: `/accounts/${accountId}/token`,
        headers: {},
      });
    }
    expect(services.failedAttempts.stats().trackedKeys).toBeLessThanOrEqual(100);
    expect(services.failedAttempts.stats().overflowed).toBeGreaterThan(0);
    expect((await send('127.0.3.1', flowRequest('mixedRealityToken', credentials, 'wrong'))).status).toBe(429); // still blocked
    expect((await send('127.0.3.1', flowRequest('mixedRealityToken', credentials))).status).toBe(200);
  });

  it.each(TOKEN_FLOWS)(
    'shared address: a stale key on one device behind a NAT never refuses the right %s key of another',
    async (flow) => {
      nextWindow();
      const nat = '127.0.9.9';
      for (let i = 0; i < PER_IP + 25; i += 1) await send(nat, flowRequest(flow, credentials, `stale-${i}`));
      expectFlowErrorShape(flow, await send(nat, flowRequest(flow, credentials, 'stale')), 429);
      for (let i = 0; i < 3; i += 1) expect((await send(nat, flowRequest(flow, credentials))).status).toBe(200);
    },
  );

  it('a client that made 25 deliberate mistakes from one address then gets its WRAP token', async () => {
    nextWindow();
    for (let i = 0; i < 25; i += 1) await send('127.0.10.1', flowRequest('wrapToken', credentials, `mistake-${i}`));
    expect((await send('127.0.10.1', flowRequest('wrapToken', credentials))).status).toBe(200);
  });
});

describe('refusals over a limit are logged and ledgered once per window, not once per request', () => {
  it('200 wrong keys from one address: 20 + 1 refusal lines, then silence until the window ends', async () => {
    nextWindow();
    const { services } = await countedServices(credentials, clock, { STS_FAILED_ATTEMPTS_PER_WINDOW: '20' });
    const recorded: string[] = [];
    const ledgered: StsServices = {
      ...services,
      ledger: { record: async (entry) => void recorded.push(`${entry.status}`), close: async () => {} },
    };
    const lines: string[] = [];
    for (let i = 0; i < 200; i += 1) {
      await invokeInProcess('mixedRealityToken', flowRequest('mixedRealityToken', credentials, `wrong-${i}`), {
        services: ledgered,
        clientIp: '203.0.113.5',
        log: (line) => lines.push(line),
      });
    }
    expect(lines.filter((line) => line.includes('refused 401'))).toHaveLength(20);
    expect(lines.filter((line) => line.includes('refused 429'))).toHaveLength(1);
    expect(recorded).toEqual([...Array.from({ length: 20 }, () => '401'), '429']);
    nowMs += 60_000;
    await invokeInProcess('mixedRealityToken', flowRequest('mixedRealityToken', credentials, 'again'), {
      services: ledgered,
      clientIp: '203.0.113.5',
      log: (line) => lines.push(line),
    });
    expect(lines.filter((line) => line.includes('refused 401'))).toHaveLength(21);
  });

  it('with no client address, refusals are never turned into 429 and the right key always works', async () => {
    nextWindow();
    const { services } = await countedServices(credentials, clock, { STS_FAILED_ATTEMPTS_PER_WINDOW: '5' });
    for (let i = 0; i < 30; i += 1)
      expect(
        (await invokeInProcess('issueToken', flowRequest('issueToken', credentials, `wrong-${i}`), { services }))
          .status,
      ).toBe(401);
    expect((await invokeInProcess('issueToken', flowRequest('issueToken', credentials), { services })).status).toBe(
      200,
    );
  });
});

describe('vault work for unknown ids stays bounded by the negative cache and the read budget', () => {
  it('one address flooding unknown ids cannot take the last quarter of the read budget: other clients still get their cold records', async () => {
    nextWindow();
    const config = loadConfig({
      STS_ISSUER: 'https://sts.test.example/',
      STS_LEDGER_MODE: 'off',
      STS_LOCAL_STORE_PATH: credentials.storePath,
      STS_VAULT_READS_PER_SECOND: '100',
      STS_VAULT_READS_PER_CLIENT_PER_SECOND: '10',
    });
    const base = await createServices(config, clock);
    const vault = countingStore(base.secrets);
    const cache = new CachedSecretStore(vault, config.secretCache, clock);
    const host = await startTestHost({
      services: { ...base, secrets: cache, credentials: new CredentialDirectory(cache) },
    });
    try {
      const accounts = [];
      for (let i = 0; i < 25; i += 1)
        accounts.push(
          await createMixedRealityAccount(credentials.store, { accountDomain: 'westus2.mixedreality.azure.com' }),
        );
      const statuses = new Map<number, number>();
      for (let i = 0; i < 500; i += 1) {
        const accountId = randomUUID();
        const answer = await sendHttp(
          host.url,
          {
            method: 'GET',
            path: `/accounts/${accountId}/token`,
            headers: { authorization: `Bearer ${accountId}:k${i}` },
          },
          loopbackClient('127.0.40.1'),
        );
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      }
      // All in one simulated second: its own share (10), then the budget down to the reserved quarter (75 in all).
      expect(vault.reads).toBe(75);
      expect(statuses.get(503)).toBe(425);
      // 25 other clients, each with a record nobody read yet, in the same second: every one is served.
      for (const [i, account] of accounts.entries()) {
        const answer = await sendHttp(
          host.url,
          {
            method: 'GET',
            path: `/accounts/${account.accountId}/token`,
            headers: { authorization: `Bearer ${account.accountId}:${account.keys[0]}` },
          },
          loopbackClient(`127.0.41.${i + 1}`),
        );
        expect(answer.status).toBe(200);
      }
    } finally {
      await host.close();
    }
  });

  it('2,000 unknown account ids in one second from one address: vault reads stay within the budget, a warm key still works', async () => {
    nextWindow();
    const config = loadConfig({
      STS_ISSUER: 'https://sts.test.example/',
      STS_LEDGER_MODE: 'off',
      STS_LOCAL_STORE_PATH: credentials.storePath,
      STS_VAULT_READS_PER_SECOND: '50',
      STS_VAULT_READS_PER_CLIENT_PER_SECOND: '50',
      STS_FAILED_ATTEMPTS_PER_WINDOW: '20',
    });
    const base = await createServices(config, clock);
    const vault = countingStore(base.secrets);
    // The Key Vault configuration: the cache in front of the store, with its negative cache and read budget.
    const cache = new CachedSecretStore(vault, config.secretCache, clock);
    const services: StsServices = { ...base, secrets: cache, credentials: new CredentialDirectory(cache) };
    expect(
      (
        await invokeInProcess('mixedRealityToken', flowRequest('mixedRealityToken', credentials), {
          services,
          clientIp: '198.51.100.1',
        })
      ).status,
    ).toBe(200);

    const statuses = new Map<number, number>();
    for (let i = 0; i < 2_000; i += 1) {
      const accountId = randomUUID();
      const answer = await invokeInProcess(
        'mixedRealityToken',
        {
          method: 'GET',
          path: `/accounts/${accountId}/token`,
          headers: { authorization: `Bearer ${accountId}:k${i}` },
          params: { accountId },
        },
        { services, clientIp: '203.0.113.66' },
      );
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    }
    expect(vault.reads).toBeLessThanOrEqual(50);
    expect([...statuses.keys()].sort()).toEqual([401, 429, 503]);
    expect(
      (
        await invokeInProcess('mixedRealityToken', flowRequest('mixedRealityToken', credentials), {
          services,
          clientIp: '203.0.113.66',
        })
      ).status,
    ).toBe(200);
    expect(services.failedAttempts.stats().trackedKeys).toBe(1);
  });
});
