import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseRecord } from '../../shared/credentials/records.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { UsageError, type StsCommand } from '../../tools/sts/command.js';
import { command as allowPrincipal } from '../../tools/sts/commands/allowPrincipal.js';
import { command as createAccount } from '../../tools/sts/commands/createAccount.js';
import { command as createCognitive } from '../../tools/sts/commands/createCognitive.js';
import { command as listCredentials } from '../../tools/sts/commands/listCredentials.js';
import { command as revokePrincipal } from '../../tools/sts/commands/revokePrincipal.js';
import { command as showCredential } from '../../tools/sts/commands/showCredential.js';

/** `allow-principal`, `revoke-principal`, `show` and `list` on the embedded file store, called in process. */

let dir: string;
let storePath: string;
const savedEnv = { ...process.env };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sts-principals-'));
  storePath = join(dir, 'secrets.json');
});
afterAll(async () => {
  process.env = savedEnv;
  await rm(dir, { recursive: true, force: true });
});

async function sts(command: StsCommand, args: string[]): Promise<{ code: number; stdout: string }> {
  process.env = { ...savedEnv, STS_LOCAL_STORE_PATH: storePath };
  delete process.env.KEY_VAULT_URL;
  const out: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void out.push(parts.join(' ')));
  try {
    return { code: await command.run(args), stdout: out.join('\n') };
  } finally {
    vi.restoreAllMocks();
    process.env = { ...savedEnv };
  }
}

async function storedPrincipals(accountId: string): Promise<unknown> {
  const secret = await new FileSecretStore(storePath).getSecret(vaultLayout.mixedRealityAccount(accountId));
  return parseRecord(secret?.value ?? '', 'mixedRealityAccount')?.allowedPrincipals;
}

describe('Entra principals in the admin CLI', () => {
  it('allow-principal adds a principal once (lower-cased), show and list display it, revoke-principal removes it', async () => {
    const created = await sts(createAccount, ['--domain', 'eastus2.mixedreality.azure.com', '--json']);
    const { accountId, keys } = JSON.parse(created.stdout) as { accountId: string; keys: [string, string] };
    const tenant = randomUUID();
    const objectId = randomUUID();
    const flags = ['--account', accountId, '--tenant', tenant.toUpperCase(), '--object-id', objectId];

    const allowed = await sts(allowPrincipal, flags);
    expect(allowed).toEqual({
      code: 0,
      stdout: expect.stringMatching(
        new RegExp(`^Principal ${tenant}/${objectId} is now allowed on Mixed Reality account ${accountId}`),
      ),
    });
    expect((await sts(allowPrincipal, [...flags, '--json'])).stdout).toContain('"changed": false');
    expect(await storedPrincipals(accountId)).toEqual([{ tenantId: tenant, objectId }]);

    const shown = await sts(showCredential, ['--account', accountId]);
    expect(shown.stdout).toContain(`    ${tenant}/${objectId}`);
    expect(JSON.parse((await sts(showCredential, ['--account', accountId, '--json'])).stdout)).toMatchObject({
      kind: 'mixedRealityAccount',
      id: accountId,
      enabled: true,
      allowedPrincipals: [{ tenantId: tenant, objectId }],
    });
    const listed = await sts(listCredentials, []);
    expect(listed.stdout).toContain(`principals=${tenant}/${objectId}`);
    for (const key of keys) {
      expect(shown.stdout).not.toContain(key);
      expect(listed.stdout).not.toContain(key);
    }

    const revoked = await sts(revokePrincipal, flags);
    expect(revoked.stdout).toMatch(/is now not allowed/);
    expect(await storedPrincipals(accountId)).toEqual([]);
    expect((await sts(showCredential, ['--account', accountId])).stdout).toContain('(tenant/object id): (none)');
  });

  it('allow-principal --resource allows a principal on a Cognitive resource; show and list display it', async () => {
    await sts(createCognitive, ['--name', 'Web-Speech', '--region', 'eastus', '--kind', 'SpeechServices']);
    const tenant = randomUUID();
    const objectId = randomUUID();
    const flags = ['--resource', 'web-speech', '--tenant', tenant, '--object-id', objectId];
    expect((await sts(allowPrincipal, flags)).stdout).toMatch(
      new RegExp(`^Principal ${tenant}/${objectId} is now allowed on Cognitive Services resource web-speech`),
    );
    expect(JSON.parse((await sts(allowPrincipal, [...flags, '--json'])).stdout)).toMatchObject({
      resource: 'web-speech',
      changed: false,
    });
    expect(JSON.parse((await sts(showCredential, ['--cognitive', 'web-speech', '--json'])).stdout)).toMatchObject({
      kind: 'cognitiveResource',
      allowedPrincipals: [{ tenantId: tenant, objectId }],
    });
    expect((await sts(showCredential, ['--cognitive', 'web-speech'])).stdout).toContain(`    ${tenant}/${objectId}`);
    expect((await sts(listCredentials, [])).stdout).toMatch(new RegExp(`web-speech.*principals=${tenant}/${objectId}`));
    expect((await sts(revokePrincipal, flags)).stdout).toMatch(
      /is now not allowed on Cognitive Services resource web-speech/,
    );
  });

  it.each([
    [['--tenant', randomUUID(), '--object-id', randomUUID()], /exactly one of --account <guid> and --resource <name>/],
    [
      ['--account', randomUUID(), '--resource', 'x1', '--tenant', randomUUID(), '--object-id', randomUUID()],
      /exactly one of/,
    ],
    [['--resource', 'no_such', '--tenant', randomUUID(), '--object-id', randomUUID()], /must be 2-64 letters/],
    [['--resource', 'missing-one', '--tenant', randomUUID(), '--object-id', randomUUID()], /does not exist/],
    [['--account', 'not-a-guid', '--tenant', randomUUID(), '--object-id', randomUUID()], /Account id must be a GUID/],
    [
      ['--account', randomUUID(), '--tenant', 'contoso.onmicrosoft.com', '--object-id', randomUUID()],
      /Tenant id must be a GUID/,
    ],
    [['--account', randomUUID(), '--tenant', randomUUID()], /--object-id is required/],
    [['--account', randomUUID(), '--tenant', randomUUID(), '--object-id', randomUUID()], /does not exist/],
  ])('refuses %j with a usage error', async (args, message) => {
    await expect(sts(allowPrincipal, args)).rejects.toSatisfy(
      (e: unknown) => e instanceof UsageError && message.test(e.message),
    );
  });
});
