import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Cold start: the Azure identity and Key Vault SDKs are loaded on the first vault call, never before. */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sts-lazy-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function sdkModulesLoaded(env: Record<string, string>): Promise<string[]> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'test/keyVault/fixtures/reportAzureSdkLoads.ts'],
    { env: { PATH: process.env.PATH ?? '', STS_LEDGER_MODE: 'off', ...env }, timeout: 60_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as string[];
}

describe('Azure SDK loading', () => {
  it('the embedded file store never loads @azure/identity or @azure/keyvault-secrets, even when used', async () => {
    expect(await sdkModulesLoaded({ STS_LOCAL_STORE_PATH: join(dir, 'secrets.json') })).toEqual([]);
  });

  it('with KEY_VAULT_URL set, building the services loads neither (the first vault call does)', async () => {
    expect(await sdkModulesLoaded({ KEY_VAULT_URL: 'https://127.0.0.1:1/' })).toEqual([]);
  });

  it('the first vault call loads them (so the probe above can see a load)', async () => {
    const loaded = await sdkModulesLoaded({
      KEY_VAULT_URL: 'https://127.0.0.1:1/',
      REPORT_AFTER_FIRST_CALL: '1',
      STS_VAULT_TIMEOUT_MS: '2000',
    });
    expect(loaded).toEqual(expect.arrayContaining(['@azure/keyvault-secrets', '@azure/identity']));
  });

  it('with the App Service identity endpoint, the first vault call loads Key Vault only: no @azure/identity, no MSAL', async () => {
    const appService = { IDENTITY_ENDPOINT: 'http://127.0.0.1:1/msi/token', IDENTITY_HEADER: 'header' };
    const loaded = await sdkModulesLoaded({
      KEY_VAULT_URL: 'https://127.0.0.1:1/',
      ...appService,
      REPORT_AFTER_FIRST_CALL: '1',
      STS_VAULT_TIMEOUT_MS: '2000',
    });
    expect(loaded).toContain('@azure/keyvault-secrets');
    expect(loaded.filter((specifier) => /^@azure\/(identity|msal-node)/.test(specifier))).toEqual([]);
  });
});
