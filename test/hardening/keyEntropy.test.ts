import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAcceptableClientKey } from '../../shared/credentials/clientKeys.js';
import { parseRecord } from '../../shared/credentials/records.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { UsageError } from '../../tools/sts/command.js';
import { command as createAccount } from '../../tools/sts/commands/createAccount.js';
import { command as createCognitive } from '../../tools/sts/commands/createCognitive.js';
import { command as createWrapIssuer } from '../../tools/sts/commands/createWrapIssuer.js';
import { generateInfraSecrets } from '../../tools/sts/commands/infraParams.js';
import { command as rotateKey } from '../../tools/sts/commands/rotateKey.js';
import {
  createCognitiveResource,
  createMixedRealityAccount,
  createWrapIssuer as provisionWrapIssuer,
  rotateCredentialKey,
} from '../../tools/sts/credentials/provisioning.js';
import { startTestHost } from '../support/localHostFixture.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';
import { closeLoopbackClients, countedServices, flowRequest, loopbackClient, sendHttp } from './hardeningSupport.js';

/**
 * Keys are high-entropy by construction (docs/failed-attempts.md, "Key entropy"): every key the admin CLI
 * creates carries at least 128 random bits, no CLI option takes a client key, and a record written by hand
 * with a guessable key is refused rather than accepted.
 */

/** Random bits a generated key carries, from its encoding: 32 hex characters = 128, 44 base64 = 256. */
function randomBitsOf(key: string): number {
  if (/^[0-9a-f]{32,}$/.test(key)) return (key.length / 2) * 8;
  const bytes = Buffer.from(key, 'base64');
  expect(bytes.toString('base64')).toBe(key); // canonical base64, so the length is the byte count
  return bytes.length * 8;
}

let credentials: TestCredentials;
beforeAll(async () => {
  credentials = await createTestCredentials();
});
afterAll(async () => {
  await closeLoopbackClients();
  await credentials.remove();
});

describe('keys the admin CLI creates', () => {
  it('every created, rotated and demo key has at least 128 random bits, and no two are alike', async () => {
    const { store } = credentials;
    const suffix = randomUUID().slice(0, 8);
    const account = await createMixedRealityAccount(store, { accountDomain: 'westus2.mixedreality.azure.com' });
    const resource = await createCognitiveResource(store, {
      name: `entropy-${suffix}`,
      region: 'eastus',
      resourceKind: 'SpeechServices',
    });
    const issuer = await provisionWrapIssuer(store, { namespace: `entropy${suffix}`, name: 'owner' });
    const rotated = [
      (await rotateCredentialKey(store, { kind: 'mixedRealityAccount', accountId: account.accountId }, 1)).newKey,
      (await rotateCredentialKey(store, { kind: 'cognitiveResource', name: resource.name }, 2)).newKey,
      (await rotateCredentialKey(store, { kind: 'wrapIssuer', namespace: issuer.namespace, name: 'owner' }, 1)).newKey,
    ];
    const infra = await generateInfraSecrets({
      demo: {
        mixedRealityAccountDomain: 'eastus2.mixedreality.azure.com',
        cognitiveRegion: 'eastus',
        wrapNamespace: 'contoso',
      },
    });
    const demoKeys = infra.secrets.flatMap((secret) => {
      const value = JSON.parse(secret.value) as { keys?: unknown };
      return Array.isArray(value.keys) ? (value.keys as string[]) : [];
    });
    expect(demoKeys).toHaveLength(6); // one credential per flow kind, two keys each

    const keys = [...account.keys, ...resource.keys, ...issuer.keys, ...rotated, ...demoKeys];
    for (const key of keys) {
      expect(randomBitsOf(key)).toBeGreaterThanOrEqual(128);
      expect(isAcceptableClientKey(key)).toBe(true);
    }
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('no credential command takes a client key from the operator', async () => {
    const attempts = [
      [createAccount, ['--domain', 'eastus2.mixedreality.azure.com', '--key', 'password']],
      [createCognitive, ['--name', 'weak', '--region', 'eastus', '--kind', 'SpeechServices', '--key', '0123']],
      [createWrapIssuer, ['--namespace', 'contoso', '--name', 'weak', '--password', 'owner']],
      [rotateKey, ['--account', randomUUID(), '--slot', '1', '--key', 'password']],
    ] as const;
    for (const [command, args] of attempts) {
      const refusal = command.run(args);
      await expect(refusal).rejects.toBeInstanceOf(UsageError);
      await expect(refusal).rejects.toThrow(/^Unknown option '--(key|password)'/);
    }
    for (const command of [createAccount, createCognitive, createWrapIssuer, rotateKey]) {
      expect(command.usage).not.toMatch(/--(key|password|secret)\b/);
    }
  });
});

describe('a record written by hand with a guessable key', () => {
  it.each(['password', 'owner', 'a'.repeat(64), 'passwordpasswordpasswordpassword', '0123456789abcdef'])(
    '%j makes the record unreadable',
    (weak) => {
      const strong = randomBytes(32).toString('base64');
      const record = (keys: [string, string]) =>
        JSON.stringify({
          kind: 'mixedRealityAccount',
          accountId: randomUUID(),
          accountDomain: 'eastus2.mixedreality.azure.com',
          keys,
          enabled: true,
        });
      expect(parseRecord(record([strong, weak]), 'mixedRealityAccount')).toBeUndefined();
      expect(parseRecord(record([strong, randomBytes(32).toString('base64')]), 'mixedRealityAccount')).toBeDefined();
    },
  );

  it('over HTTP: an account whose vault record holds "password" refuses it (401), one with random keys answers', async () => {
    const accountId = randomUUID();
    await credentials.store.setSecret(
      vaultLayout.mixedRealityAccount(accountId),
      JSON.stringify({
        kind: 'mixedRealityAccount',
        accountId,
        accountDomain: 'eastus2.mixedreality.azure.com',
        keys: ['password', 'password'],
        enabled: true,
      }),
    );
    const { services } = await countedServices(credentials, () => new Date());
    const host = await startTestHost({ services });
    try {
      const weak = await sendHttp(
        host.url,
        {
          method: 'GET',
          path: `/accounts/${accountId}/token`,
          headers: { authorization: `Bearer ${accountId}:password` },
        },
        loopbackClient('127.0.30.1'),
      );
      expect(weak.status).toBe(401);
      expect(
        (await sendHttp(host.url, flowRequest('mixedRealityToken', credentials), loopbackClient('127.0.30.1'))).status,
      ).toBe(200);
    } finally {
      await host.close();
    }
  });
});
