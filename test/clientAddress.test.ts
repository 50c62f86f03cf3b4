import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import azureFunctions, { type HttpResponseInit } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../shared/config.js';
import { canonicalAddress, clientAddressOf } from '../shared/http/clientAddress.js';
import { DEFAULT_CLIENT_ADDRESS_RULE } from '../shared/settings/clientAddressRule.js';
import { defineStsFunction } from '../shared/app/stsFunction.js';
import { createServices } from '../shared/services.js';

/**
 * The one client-address rule (docs/client-address.md): the entry the nearest trusted proxy wrote, counted from
 * the right of the configured header; forged entries to its left are never read; a missing or malformed address
 * is unknown, never a value the client picked.
 */

const { HttpRequest, InvocationContext } = azureFunctions;
const xff = (value: string | string[]) => {
  const headers = new Headers();
  for (const one of [value].flat()) headers.append('x-forwarded-for', one);
  return headers;
};

describe('clientAddressOf with the Azure default (X-Forwarded-For, one trusted hop)', () => {
  const rule = DEFAULT_CLIENT_ADDRESS_RULE;

  it('takes the entry App Service front end appended (ip:port), whatever the client put before it', () => {
    expect(clientAddressOf(xff('203.0.113.7:50412'), rule)).toBe('203.0.113.7');
    expect(clientAddressOf(xff('198.51.100.1, 10.0.0.1, 203.0.113.7:50412'), rule)).toBe('203.0.113.7');
  });

  it('takes the address HTTP streaming sets (a single entry, no port)', () => {
    expect(clientAddressOf(xff('203.0.113.7'), rule)).toBe('203.0.113.7');
  });

  it('reads repeated header fields as one list, as the host joins them, so a second forged field changes nothing', () => {
    expect(clientAddressOf(xff(['198.51.100.1', '203.0.113.7:1234']), rule)).toBe('203.0.113.7');
  });

  it('is unknown when the header is missing, empty, or its last entry is not an IP address', () => {
    expect(clientAddressOf(new Headers(), rule)).toBeUndefined();
    expect(clientAddressOf(xff(''), rule)).toBeUndefined();
    for (const last of [
      'unknown',
      '_hidden',
      'evil.example',
      '203.0.113.7, ',
      '999.1.1.1',
      '1.2.3.4:99999',
      `${'1'.repeat(3000)}`,
    ]) {
      expect(clientAddressOf(xff(`198.51.100.1, ${last}`), rule), last).toBeUndefined();
    }
  });

  it('gives one client one spelling: IPv6 lower-cased and unbracketed, IPv4-mapped IPv6 as IPv4', () => {
    expect(clientAddressOf(xff('[2001:DB8::1]:443'), rule)).toBe('2001:db8::1');
    expect(clientAddressOf(xff('2001:DB8::1'), rule)).toBe('2001:db8::1');
    expect(clientAddressOf(xff('::ffff:203.0.113.7'), rule)).toBe('203.0.113.7');
    expect(canonicalAddress('[::ffff:203.0.113.7]:80')).toBe('203.0.113.7');
  });
});

describe('clientAddressOf with another header or more trusted hops', () => {
  it('behind a second trusted proxy (two hops), takes the entry that proxy wrote, not the one the client forged', () => {
    const rule = { header: 'x-forwarded-for', trustedHops: 2 };
    expect(clientAddressOf(xff('198.51.100.66, 203.0.113.7, 10.1.2.3:5000'), rule)).toBe('203.0.113.7');
    // Fewer entries than trusted hops: someone skipped a proxy we rely on, so the address is unknown.
    expect(clientAddressOf(xff('203.0.113.7'), rule)).toBeUndefined();
  });

  it('reads the configured header (e.g. Front Door x-azure-clientip) and ignores X-Forwarded-For', () => {
    const rule = { header: 'x-azure-clientip', trustedHops: 1 };
    const headers = xff('198.51.100.1');
    headers.set('x-azure-clientip', '203.0.113.7');
    expect(clientAddressOf(headers, rule)).toBe('203.0.113.7');
    expect(clientAddressOf(xff('203.0.113.7'), rule)).toBeUndefined();
  });
});

describe('through the shared function wrapper', () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'sts-client-address-'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  // Called directly, so the catalogue route of the entry it borrows does not matter.
  const reportAddress = defineStsFunction({
    name: 'issueToken',
    handle: async ({ clientIp }) => ({ response: { jsonBody: { clientIp: clientIp ?? null } } }),
  });

  /** What the wrapper logged for the latest {@link seenWith} request, as the host receives it. */
  let logged: string[] = [];

  async function seenWith(env: Record<string, string>, headers: Record<string, string>): Promise<string | null> {
    const services = await createServices(
      loadConfig({ STS_LEDGER_MODE: 'off', STS_LOCAL_STORE_PATH: join(folder, 'secrets.json'), ...env }),
    );
    const request = new HttpRequest({ method: 'GET', url: 'https://sts.test.example/test/client-address', headers });
    logged = [];
    const context = new InvocationContext({
      functionName: 'issueToken',
      logHandler: (level, ...args) => logged.push(`[${level}] ${args.map(String).join(' ')}`),
    });
    const init = (await reportAddress.handlerFor(services)(request, context)) as HttpResponseInit;
    return (JSON.parse(init.body as string) as { clientIp: string | null }).clientIp;
  }

  it('hands every flow the address under the configured rule: forged, missing and multi-hop', async () => {
    expect(await seenWith({}, { 'x-forwarded-for': '198.51.100.1, 203.0.113.7:50412' })).toBe('203.0.113.7');
    // The flow sees the address; the request log keeps only its /24.
    expect(logged.join('\n')).toContain('"clientIp":"203.0.113.0/24"');
    expect(logged.join('\n')).not.toContain('203.0.113.7');
    expect(await seenWith({}, {})).toBeNull();
    expect(
      await seenWith(
        { STS_TRUSTED_PROXY_HOPS: '2' },
        { 'x-forwarded-for': '198.51.100.66, 203.0.113.7, 10.1.2.3:5000' },
      ),
    ).toBe('203.0.113.7');
    expect(
      await seenWith(
        { STS_CLIENT_ADDRESS_HEADER: 'X-Azure-ClientIP' },
        { 'x-forwarded-for': '198.51.100.1', 'x-azure-clientip': '203.0.113.7' },
      ),
    ).toBe('203.0.113.7');
  });
});
