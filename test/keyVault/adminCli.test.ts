import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CredentialDirectory } from '../../shared/credentials/credentialDirectory.js';
import {
  parseRecord,
  type CognitiveResource,
  type MixedRealityAccount,
  type WrapIssuer,
} from '../../shared/credentials/records.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { KeyVaultSecretStore } from '../../shared/secrets/keyVaultSecretStore.js';
import { UsageError, type StsCommand } from '../../tools/sts/command.js';
import { command as createAccount } from '../../tools/sts/commands/createAccount.js';
import { command as createCognitive } from '../../tools/sts/commands/createCognitive.js';
import { command as createWrapIssuer } from '../../tools/sts/commands/createWrapIssuer.js';
import { command as disableCredential } from '../../tools/sts/commands/disableCredential.js';
import { command as enableCredential } from '../../tools/sts/commands/enableCredential.js';
import { command as listCredentials } from '../../tools/sts/commands/listCredentials.js';
import { command as rotateKey } from '../../tools/sts/commands/rotateKey.js';
import { command as rotateSigningKey } from '../../tools/sts/commands/rotateSigningKey.js';
import { command as showKey } from '../../tools/sts/commands/showKey.js';
import { startKeyVaultTestServer, type KeyVaultTestServer } from '../../tooling/doubles/keyVaultTestServer.js';

/**
 * The credential commands of the admin CLI, on Key Vault (the test server, reached with the managed
 * identity the way an operator's identity would be) and on the embedded file store. Most runs call the
 * command in process; two start `npm run sts`'s entry point to check exit codes as an operator sees them.
 */

let server: KeyVaultTestServer;
let vault: KeyVaultSecretStore;
let fileDir: string;
const originalEnv = { ...process.env };
let savedEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  server = await startKeyVaultTestServer();
  // This process's identity is the managed identity of the test server's App Service endpoint.
  savedEnv = { ...process.env, IDENTITY_ENDPOINT: server.identityEndpoint, IDENTITY_HEADER: server.identityHeader };
  process.env = { ...savedEnv };
  vault = new KeyVaultSecretStore({ vaultUrl: server.vaultUrl, timeoutMs: 5_000 });
  fileDir = await mkdtemp(join(tmpdir(), 'sts-cli-'));
});
afterAll(async () => {
  process.env = originalEnv;
  await server.close();
  await rm(fileDir, { recursive: true, force: true });
});
afterEach(() => {
  server.resetFaults();
  vi.restoreAllMocks();
});

type Store = 'keyVault' | 'file';

function storeEnv(store: Store): Record<string, string> {
  return store === 'keyVault'
    ? { ...server.env(), STS_LOCAL_STORE_PATH: join(fileDir, 'unused.json') }
    : { STS_LOCAL_STORE_PATH: join(fileDir, 'secrets.json') };
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const COMMANDS = {
  createAccount,
  createCognitive,
  createWrapIssuer,
  disableCredential,
  enableCredential,
  listCredentials,
  rotateKey,
  rotateSigningKey,
  showKey,
} satisfies Record<string, StsCommand>;

/** Runs one command in process against `store`, capturing what it prints. */
async function sts(store: Store, file: keyof typeof COMMANDS, args: string[]): Promise<Run> {
  const command = COMMANDS[file];
  process.env = { ...savedEnv, ...storeEnv(store) };
  if (store === 'file') delete process.env.KEY_VAULT_URL;
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void out.push(parts.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void err.push(parts.join(' ')));
  try {
    const code = await command.run(args);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    vi.restoreAllMocks();
    process.env = { ...savedEnv };
  }
}

/** Runs `npm run sts -- …` as a process (same node, tsx loader), as an operator would. */
async function stsProcess(store: Store, args: string[]): Promise<Run> {
  const env = { ...savedEnv, ...storeEnv(store) };
  if (store === 'file') delete env.KEY_VAULT_URL;
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'tools/sts/main.ts', ...args],
      {
        env,
        timeout: 60_000,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function latestRecord<K extends 'mixedRealityAccount' | 'cognitiveResource' | 'wrapIssuer'>(secret: string, kind: K) {
  const versions = server.versionsOf(secret);
  return parseRecord(versions.at(-1)?.value ?? '', kind);
}

describe('on Key Vault', () => {
  it('create-account writes the account, prints its keys once; list never prints a key; show-key prints exactly one', async () => {
    const created = await sts('keyVault', 'createAccount', ['--domain', 'eastus2.mixedreality.azure.com', '--json']);
    expect(created.code).toBe(0);
    const account = JSON.parse(created.stdout) as MixedRealityAccount;
    expect(account).toMatchObject({
      kind: 'mixedRealityAccount',
      accountDomain: 'eastus2.mixedreality.azure.com',
      enabled: true,
    });
    const secret = vaultLayout.mixedRealityAccount(account.accountId);
    expect(server.versionsOf(secret)).toHaveLength(1);
    expect(server.versionsOf(secret)[0]?.tags).toEqual({ kind: 'mixedRealityAccount' });

    const listed = await sts('keyVault', 'listCredentials', []);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(account.accountId);
    for (const key of account.keys) expect(listed.stdout).not.toContain(key);

    const shown = await sts('keyVault', 'showKey', ['--account', account.accountId.toUpperCase(), '--slot', '2']);
    expect(shown).toMatchObject({ code: 0, stdout: account.keys[1] });
  });

  it('rotate-key replaces one key of an account; the other is kept', async () => {
    const account = JSON.parse(
      (await sts('keyVault', 'createAccount', ['--domain', 'westus.mixedreality.azure.com', '--json'])).stdout,
    ) as MixedRealityAccount;
    const rotated = await sts('keyVault', 'rotateKey', ['--account', account.accountId, '--slot', '1', '--json']);
    expect(rotated.code).toBe(0);
    const { key } = JSON.parse(rotated.stdout) as { key: string };
    expect(key).not.toBe(account.keys[0]);
    expect(latestRecord(vaultLayout.mixedRealityAccount(account.accountId), 'mixedRealityAccount')?.keys).toEqual([
      key,
      account.keys[1],
    ]);
  });

  it('rotate-key of a Cognitive key: new index entry, then the resource, then the old index entry disabled', async () => {
    const resource = JSON.parse(
      (
        await sts('keyVault', 'createCognitive', [
          '--name',
          'speech-rot',
          '--region',
          'eastus',
          '--kind',
          'SpeechServices',
          '--json',
        ])
      ).stdout,
    ) as CognitiveResource;
    const directory = new CredentialDirectory(vault);
    expect((await directory.verifySubscriptionKey(resource.keys[0])).ok).toBe(true);

    const { key } = JSON.parse(
      (await sts('keyVault', 'rotateKey', ['--cognitive', 'speech-rot', '--slot', '1', '--json'])).stdout,
    ) as { key: string };

    expect(server.versionsOf(vaultLayout.cognitiveKeyIndex(key)).map((v) => v.enabled)).toEqual([true]);
    expect(server.versionsOf(vaultLayout.cognitiveKeyIndex(resource.keys[0])).map((v) => v.enabled)).toEqual([false]);
    expect(await directory.verifySubscriptionKey(key)).toMatchObject({ ok: true, credential: { keySlot: 1 } });
    expect(await directory.verifySubscriptionKey(resource.keys[0])).toEqual({
      ok: false,
      reason: 'unknown_credential',
    });
    expect(await directory.verifySubscriptionKey(resource.keys[1])).toMatchObject({
      ok: true,
      credential: { keySlot: 2 },
    });
  });

  it('a Cognitive rotation cut short by the vault leaves every key fully working or fully refused', async () => {
    const resource = JSON.parse(
      (
        await sts('keyVault', 'createCognitive', [
          '--name',
          'speech-cut',
          '--region',
          'eastus',
          '--kind',
          'SpeechServices',
          '--json',
        ])
      ).stdout,
    ) as CognitiveResource;
    const directory = new CredentialDirectory(vault);
    const resourceSecret = vaultLayout.cognitiveResource('speech-cut');

    // The vault fails after the new index entry: the resource is unchanged, the old key still works.
    server.faults.writesAllowed = 1;
    await expect(sts('keyVault', 'rotateKey', ['--cognitive', 'speech-cut', '--slot', '1'])).rejects.toThrow(/503/);
    expect(server.versionsOf(resourceSecret)).toHaveLength(1);
    expect((await directory.verifySubscriptionKey(resource.keys[0])).ok).toBe(true);
    const orphan = server
      .names()
      .find(
        (n) =>
          n.startsWith('cs-key-') &&
          server.versionsOf(n)[0]?.tags?.resource === 'speech-cut' &&
          ![resource.keys[0], resource.keys[1]].some((k) => vaultLayout.cognitiveKeyIndex(k) === n),
      );
    expect(orphan).toBeDefined(); // the new index entry, pointing at a resource that does not hold its key

    // The vault fails after the switch: the new key works, the old one is refused, the operator is told.
    server.faults.writesAllowed = 2;
    const partial = await sts('keyVault', 'rotateKey', ['--cognitive', 'speech-cut', '--slot', '1', '--json']);
    expect(partial.code).toBe(1);
    const { key, warning } = JSON.parse(partial.stdout) as { key: string; warning: string };
    expect(warning).toMatch(/could not be disabled/);
    expect(partial.stderr).toMatch(/warning/);
    expect((await directory.verifySubscriptionKey(key)).ok).toBe(true);
    expect(await directory.verifySubscriptionKey(resource.keys[0])).toMatchObject({ ok: false });
    expect((await directory.verifySubscriptionKey(resource.keys[1])).ok).toBe(true);
  });

  it('disable and enable a credential', async () => {
    const resource = JSON.parse(
      (
        await sts('keyVault', 'createCognitive', [
          '--name',
          'face-isv',
          '--region',
          'westus',
          '--kind',
          'Face',
          '--limited-access',
          '--feature-flags',
          'Face.Identification,Face.Verification',
          '--json',
        ])
      ).stdout,
    ) as CognitiveResource;
    expect(resource.grantableFeatureFlags).toEqual(['Face.Identification', 'Face.Verification']);
    const directory = new CredentialDirectory(vault);

    expect((await sts('keyVault', 'disableCredential', ['--cognitive', 'face-isv'])).code).toBe(0);
    expect(await directory.verifySubscriptionKey(resource.keys[0])).toEqual({
      ok: false,
      reason: 'credential_disabled',
    });
    expect((await sts('keyVault', 'listCredentials', [])).stdout).toMatch(/face-isv\s+DISABLED/);
    expect((await sts('keyVault', 'enableCredential', ['--cognitive', 'face-isv'])).code).toBe(0);
    expect((await directory.verifySubscriptionKey(resource.keys[0])).ok).toBe(true);
  });

  it('rotate-signing-key adds an enabled version without printing the private key', async () => {
    const before = server.versionsOf(vaultLayout.signingKey).length;
    const run = await sts('keyVault', 'rotateSigningKey', ['--alg', 'rs256', '--json']);
    expect(run.code).toBe(0);
    const versions = server.versionsOf(vaultLayout.signingKey);
    expect(versions).toHaveLength(before + 1);
    const jwk = JSON.parse(versions.at(-1)?.value ?? '{}') as { alg: string; d: string; kty: string };
    expect(jwk).toMatchObject({ alg: 'RS256', kty: 'RSA' });
    expect(run.stdout).not.toContain(jwk.d);
    expect(JSON.parse(run.stdout)).toMatchObject({ version: versions.at(-1)?.version, alg: 'RS256' });
  });
});

describe('on the embedded file store', () => {
  it('create-wrap-issuer with scopes and rights, then list', async () => {
    const created = await sts('file', 'createWrapIssuer', [
      '--namespace',
      'contoso',
      '--name',
      'orders',
      '--scope',
      'http://contoso.servicebus.windows.net/orders',
      '--scope',
      'http://contoso.servicebus.windows.net/billing',
      '--rights',
      'listen,SEND',
      '--json',
    ]);
    expect(created.code).toBe(0);
    const issuer = JSON.parse(created.stdout) as WrapIssuer;
    expect(issuer).toMatchObject({
      namespace: 'contoso',
      name: 'orders',
      rights: ['Listen', 'Send'],
      scopes: ['http://contoso.servicebus.windows.net/orders', 'http://contoso.servicebus.windows.net/billing'],
    });
    const listed = await sts('file', 'listCredentials', []);
    expect(listed.stdout).toMatch(/wrap-issuer\s+contoso\/orders\s+enabled/);
    expect(listed.stdout).not.toContain(issuer.keys[0]);
    expect(server.names().some((n) => n.startsWith('wrap-issuer-'))).toBe(false); // nothing went to the vault
  });
});

describe('bad input: a clear message, nothing written', () => {
  it.each([
    ['createAccount', [], /--domain is required/],
    ['createAccount', ['--domain', 'x.example', '--id', 'not-a-guid'], /GUID/],
    [
      'rotateKey',
      ['--account', '3f616cd1-c82e-4d20-9118-29717f9b97f9', '--cognitive', 'x', '--slot', '1'],
      /exactly one/,
    ],
    ['rotateKey', ['--cognitive', 'missing-resource', '--slot', '1'], /does not exist/],
    ['rotateKey', ['--cognitive', 'speech-rot', '--slot', '3'], /1 or 2/],
    [
      'createCognitive',
      ['--name', 'n1', '--region', 'eastus', '--kind', 'Face', '--feature-flags', 'Face.Identification'],
      /limited access/,
    ],
    [
      'createWrapIssuer',
      ['--namespace', 'contoso', '--name', 'x', '--scope', 'http://fabrikam.servicebus.windows.net/'],
      /host must be contoso\.servicebus\.windows\.net/,
    ],
    [
      'createWrapIssuer',
      ['--namespace', 'demo', '--name', 'x', '--scope', 'http://demo.attacker.example/'],
      /refused for namespace demo/,
    ],
    [
      'createWrapIssuer',
      ['--namespace', 'demo', '--name', 'x', '--scope', 'http://demo.servicebus.windows.net.evil.com/'],
      /refused for namespace demo/,
    ],
    [
      'createWrapIssuer',
      ['--namespace', 'demo', '--name', 'x', '--scope', 'http://demo.servicebus.windows.net/q/..;/q2'],
      /path parameters/,
    ],
    [
      'createWrapIssuer',
      ['--namespace', 'demo', '--name', 'x', '--scope', 'http://demo.servicebus.windows.net/q/../q2'],
      /dot segments/,
    ],
    [
      'createWrapIssuer',
      ['--namespace', 'contoso', '--name', 'x', '--rights', 'Read'],
      /not one of Listen, Manage, Send/,
    ],
    ['rotateSigningKey', ['--alg', 'HS256'], /ES256 or RS256/],
    ['listCredentials', ['--bogus'], /Unknown option/],
  ] as const)('%s %j', async (file, args, message) => {
    const writes = server.stats.writes;
    await expect(sts('keyVault', file, [...args])).rejects.toSatisfy(
      (e: unknown) => e instanceof UsageError && message.test(e.message),
    );
    expect(server.stats.writes).toBe(writes);
  });

  it('exits 2 with the usage for bad input, 0 on success (as a process)', async () => {
    const bad = await stsProcess('file', ['rotate-key', '--account', 'nope', '--slot', '1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^rotate-key: Account id must be a GUID/);
    expect(bad.stderr).toContain('Usage: npm run sts -- rotate-key');

    const good = await stsProcess('keyVault', ['create-account', '--domain', 'eastus.mixedreality.azure.com']);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(
      /^Created Mixed Reality account [0-9a-f-]{36} in Key Vault https:\/\/127\.0\.0\.1:\d+\//,
    );
  });
});
