import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WrapIssuer } from '../../shared/credentials/records.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';
import { sendHttp, type Answer } from '../hardening/hardeningSupport.js';

/**
 * WRAP scopes stay on their namespace's Service Bus host (docs/contracts/acs-wrap.md#this-sts), over HTTP:
 * a requested scope on any other host, or with `;` path parameters, is a 400; an issuer record whose prefix
 * names a foreign host (written past the admin CLI, which refuses it) covers nothing, so issuance answers 403.
 */
let credentials: TestCredentials;
let host: TestHost;
let legacy: WrapIssuer;

beforeAll(async () => {
  credentials = await createTestCredentials();
  // Written straight into the store, as an old CLI or a hand edit could have: prefixes the CLI now refuses.
  legacy = {
    kind: 'wrapIssuer',
    namespace: 'contoso',
    name: 'legacy',
    keys: [randomBytes(32).toString('base64'), randomBytes(32).toString('base64')],
    scopes: [
      'http://contoso.attacker.example/',
      'http://contoso.servicebus.windows.net.evil.com/',
      'http://contoso.servicebus.windows.net/q;x',
    ],
    rights: ['Listen'],
    enabled: true,
  };
  await credentials.store.setSecret(vaultLayout.wrapIssuer('contoso', 'legacy'), JSON.stringify(legacy), {
    contentType: 'application/json',
  });
  host = await startTestHost({ env: { STS_LOCAL_STORE_PATH: credentials.storePath } });
});
afterAll(async () => {
  await host.close();
  await credentials.remove();
});

function wrap(name: string, password: string, scope: string): Promise<Answer> {
  return sendHttp(host.url, {
    method: 'POST',
    path: '/WRAPv0.9/',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ wrap_name: name, wrap_password: password, wrap_scope: scope }).toString(),
  });
}

describe('WRAP scope hosts and path parameters', () => {
  it('a right password for a scope on a foreign host, or with path parameters, gets 400 and no token', async () => {
    const owner = credentials.wrap.owner;
    for (const scope of [
      'http://contoso.attacker.example/',
      'http://contoso.servicebus.windows.net.evil.com/',
      'https://contoso.servicebus.windows.net.evil.com:443/q',
      'http://contoso.servicebus.windows.net/q/..;/q2',
      'http://contoso.servicebus.windows.net/q;jsessionid=1',
    ]) {
      const answer = await wrap(owner.name, owner.keys[0], scope);
      expect(answer.status, scope).toBe(400);
      expect(answer.text).toContain('Service Bus namespace host');
      expect(answer.text).not.toContain('wrap_access_token');
    }
    expect((await wrap(owner.name, owner.keys[0], 'http://contoso.servicebus.windows.net/q')).status).toBe(200);
    expect((await wrap(owner.name, owner.keys[0], 'https://contoso.servicebus.chinacloudapi.cn/q')).status).toBe(403); // another host than its prefix
  });

  it('a stored prefix on a foreign host covers nothing: 403 at issuance, whatever scope is asked for', async () => {
    for (const scope of ['http://contoso.servicebus.windows.net/', 'http://contoso.servicebus.windows.net/q']) {
      const answer = await wrap('legacy', legacy.keys[0], scope);
      expect(answer.status, scope).toBe(403);
      expect(answer.text).toContain('not allowed tokens for this wrap_scope');
    }
  });
});
