import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialDirectory } from '../../shared/credentials/credentialDirectory.js';
import { DependencyUnavailableError } from '../../shared/errors.js';
import type { SecretStore } from '../../shared/secrets/secretStore.js';
import type { StsServices } from '../../shared/services.js';
import {
  REQUEST_OUTCOMES,
  REQUEST_TELEMETRY_FIELDS,
  REQUEST_TELEMETRY_PREFIX,
  UNAVAILABLE_REASONS,
} from '../../shared/telemetry/requestTelemetry.js';
import { startFlowHarness, type FlowHarness } from '../flows/flowHarness.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';

/**
 * One telemetry record per request, as the handler writes it through the host's logger (docs/operations.md):
 * captured from the local host's log over real HTTP, parsed as a query in Application Insights would.
 */

type TelemetryRecord = Record<string, unknown>;

let harness: FlowHarness;
const hosts: TestHost[] = [];

beforeAll(async () => {
  harness = await startFlowHarness();
});
afterAll(async () => {
  await Promise.all(hosts.map((host) => host.close()));
  await harness.close();
});

async function hostWith(services: StsServices): Promise<TestHost> {
  const host = await startTestHost({ services });
  hosts.push(host);
  return host;
}

/** Sends one Mixed Reality token request and returns its status and the one record the request wrote. */
async function mixedReality(
  host: TestHost,
  key: string,
  forwardedFor: string,
): Promise<{ status: number; record: TelemetryRecord }> {
  const { accountId } = harness.credentials.mixedReality.account;
  const before = host.logLines.length;
  const response = await request(`${host.url}/accounts/${accountId}/token`, {
    headers: { authorization: `Bearer ${accountId}:${key}`, 'x-forwarded-for': forwardedFor },
  });
  await response.body.text();
  const records = host.logLines
    .slice(before)
    .map((line) => line.indexOf(REQUEST_TELEMETRY_PREFIX))
    .filter((at) => at >= 0);
  expect(records, 'one record per request').toHaveLength(1);
  const line = host.logLines.slice(before).find((l) => l.includes(REQUEST_TELEMETRY_PREFIX)) ?? '';
  return {
    status: response.statusCode,
    record: JSON.parse(
      line.slice(line.indexOf(REQUEST_TELEMETRY_PREFIX) + REQUEST_TELEMETRY_PREFIX.length),
    ) as TelemetryRecord,
  };
}

describe('request telemetry (one record per request, through the host logger)', () => {
  it('an issued token: flow, outcome, status, duration, credential, client address, instance; no key', async () => {
    const host = await hostWith(harness.services);
    const key = harness.credentials.mixedReality.account.keys[0];
    const { status, record } = await mixedReality(host, key, '203.0.113.9');
    expect(status).toBe(200);
    expect(Object.keys(record).every((k) => (REQUEST_TELEMETRY_FIELDS as readonly string[]).includes(k))).toBe(true);
    expect(record).toMatchObject({
      flow: 'mixedRealityToken',
      outcome: 'issued',
      status: 200,
      credentialId: harness.credentials.mixedReality.account.accountId,
      clientIp: '127.0.0.0/24',
    });
    expect(typeof record.durationMs).toBe('number');
    expect(typeof record.instance).toBe('string');
    expect(JSON.stringify(record)).not.toContain(key);
  });

  it('a wrong key: refused, with the refusal reason and the credential; never the key that was tried', async () => {
    const host = await hostWith(harness.services);
    const { status, record } = await mixedReality(
      host,
      'wrong-key-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      '203.0.113.10',
    );
    expect(status).toBe(401);
    expect(record).toMatchObject({
      outcome: 'refused',
      status: 401,
      reason: 'wrong_key',
      credentialId: harness.credentials.mixedReality.account.accountId,
      clientIp: '127.0.0.0/24',
    });
    expect(JSON.stringify(record)).not.toContain('wrong-key-');
  });

  it('the client address: as much as the ledger keeps (truncated by default, full when the ledger keeps it full)', async () => {
    const fullHarness = await startFlowHarness({ STS_LEDGER_CLIENT_ADDRESS: 'full' });
    try {
      const host = await hostWith(fullHarness.services);
      const { accountId } = fullHarness.credentials.mixedReality.account;
      const before = host.logLines.length;
      const response = await request(`${host.url}/accounts/${accountId}/token`, {
        headers: { authorization: `Bearer ${accountId}:${fullHarness.credentials.mixedReality.account.keys[0]}` },
      });
      await response.body.text();
      const line = host.logLines.slice(before).find((l) => l.includes(REQUEST_TELEMETRY_PREFIX)) ?? '';
      expect(line).toContain('"clientIp":"127.0.0.1"');
    } finally {
      await fullHarness.close();
    }
  });

  it('an unknown credential: refused; the id the client sent is not written (it may be a key)', async () => {
    const host = await hostWith(harness.services);
    const key = harness.credentials.wrap.owner.keys[0];
    const before = host.logLines.length;
    // A stored key pasted into wrap_name: the name is unknown, and must not reach the telemetry.
    const body = new URLSearchParams({
      wrap_name: key,
      wrap_password: 'x',
      wrap_scope: 'http://contoso.servicebus.windows.net/',
    }).toString();
    const response = await request(`${host.url}/WRAPv0.9/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    await response.body.text();
    const line = host.logLines.slice(before).find((l) => l.includes(REQUEST_TELEMETRY_PREFIX)) ?? '';
    const record = JSON.parse(
      line.slice(line.indexOf(REQUEST_TELEMETRY_PREFIX) + REQUEST_TELEMETRY_PREFIX.length),
    ) as TelemetryRecord;
    expect(record).toMatchObject({ flow: 'wrapToken', outcome: 'refused', reason: 'unknown_credential' });
    expect(record.credentialId).toBeUndefined();
    expect(line).not.toContain(key);
  });

  it('vault throttling and a ledger that cannot commit: unavailable, the dependency as reason', async () => {
    const throttledStore: SecretStore = {
      getSecret: () =>
        Promise.reject(
          new DependencyUnavailableError('secret-store', 2, 'Key Vault throttled the request (429)', {
            condition: 'throttled',
          }),
        ),
      getFreshSecret: () =>
        Promise.reject(
          new DependencyUnavailableError('secret-store', 2, 'Key Vault throttled the request (429)', {
            condition: 'throttled',
          }),
        ),
      getSecretVersions: () =>
        Promise.reject(
          new DependencyUnavailableError('secret-store', 2, 'Key Vault throttled the request (429)', {
            condition: 'throttled',
          }),
        ),
    };
    const throttled = await hostWith({ ...harness.services, credentials: new CredentialDirectory(throttledStore) });
    const vault = await mixedReality(throttled, 'any', '203.0.113.11');
    expect(vault.status).toBe(503);
    expect(vault.record).toMatchObject({ outcome: 'unavailable', status: 503, reason: 'secret-store:throttled' });

    const ledgerDown = await hostWith({
      ...harness.services,
      ledger: {
        record: () => Promise.reject(new DependencyUnavailableError('ledger', 5, 'table unreachable')),
        close: async () => {},
      },
    });
    const ledger = await mixedReality(ledgerDown, harness.credentials.mixedReality.account.keys[0], '203.0.113.12');
    expect(ledger.status).toBe(503);
    expect(ledger.record).toMatchObject({ outcome: 'unavailable', reason: 'ledger' });
  });

  it('every value a query may select on is one the module declares', () => {
    expect(REQUEST_OUTCOMES).toEqual(expect.arrayContaining(['issued', 'refused', 'limited', 'unavailable']));
    expect(UNAVAILABLE_REASONS).toContain('secret-store:throttled');
  });
});
