import { describe, expect, it } from 'vitest';
import { ConfigurationError, loadConfig } from '../shared/config.js';

/** Configuration is read once into a validated, frozen object; a bad setting is named (docs/configuration.md). */

/** The smallest local configuration that starts: a ledger must be configured or explicitly off. */
const LOCAL = { STS_LEDGER_MODE: 'off' } as const;

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).code).toBe('ERR_STS_CONFIGURATION');
    return (error as ConfigurationError).problems;
  }
  throw new Error('loadConfig accepted the configuration');
}

describe('defaults (local run)', () => {
  it('fills every setting that has a local default', () => {
    const config = loadConfig({ STS_LEDGER_CONNECTION_STRING: 'UseDevelopmentStorage=true' });
    expect(config).toEqual({
      issuer: 'http://localhost:7071/',
      mixedRealityAudience: 'http://localhost:7071/mixedreality',
      cognitiveAudience: 'urn:ms.cognitiveservices.{region}',
      wrapIssuer: 'http://localhost:7071/',
      lifetimes: { mixedRealitySeconds: 86_400, cognitiveSeconds: 600, wrapSeconds: 10_800 },
      secretStore: { kind: 'file', path: '.sts/secrets.json' },
      secretCache: {
        maxAgeSeconds: 300,
        negativeMaxAgeSeconds: 30,
        maxEntries: 10_000,
        maxStaleSeconds: 3_600,
        vaultTimeoutMs: 3_000,
        vaultReadsPerSecond: 100,
        vaultReadsPerClientPerSecond: 10,
        indexRefreshSeconds: 60,
      },
      ledger: {
        mode: 'required',
        tableName: 'issuance',
        connectionString: 'UseDevelopmentStorage=true',
        tableUrl: undefined,
        deadlineMs: 4_000,
        retentionHours: 720,
        clientAddress: 'truncated',
      },
      clientAddress: { header: 'x-forwarded-for', trustedHops: 1 },
      limits: {
        maxBodyBytes: 16_384,
        maxUrlLength: 2_048,
        maxHeaderBytes: 16_384,
        maxQueryParameters: 32,
        maxHeaderCount: 100,
        failedAttemptsPerWindow: 300,
        failedAttemptsPerCredential: 600,
        failedAttemptsWindowSeconds: 60,
        failedAttemptsTrackedKeys: 50_000,
      },
      cors: { allowedOrigins: [], anyOrigin: false, maxAgeSeconds: 600 },
    });
  });

  it('derives the audiences and the WRAP issuer from a configured issuer, never from a request', () => {
    const config = loadConfig({ ...LOCAL, STS_ISSUER: '  https://sts.contoso.com  ' });
    expect(config.issuer).toBe('https://sts.contoso.com/');
    expect(config.mixedRealityAudience).toBe('https://sts.contoso.com/mixedreality');
    expect(config.wrapIssuer).toBe('https://sts.contoso.com/');
  });

  it('reads the client-address rule: header name lower-cased, hops 1-10, anything else refused by name', () => {
    expect(
      loadConfig({ ...LOCAL, STS_CLIENT_ADDRESS_HEADER: ' X-Azure-ClientIP ', STS_TRUSTED_PROXY_HOPS: '2' })
        .clientAddress,
    ).toEqual({
      header: 'x-azure-clientip',
      trustedHops: 2,
    });
    expect(() => loadConfig({ ...LOCAL, STS_CLIENT_ADDRESS_HEADER: 'x forwarded' })).toThrow(
      /STS_CLIENT_ADDRESS_HEADER must be a header name/,
    );
    expect(() => loadConfig({ ...LOCAL, STS_TRUSTED_PROXY_HOPS: '0' })).toThrow(
      /STS_TRUSTED_PROXY_HOPS must be between 1 and 10/,
    );
  });

  it('treats empty and blank values as unset (local.settings.sample.json ships empty strings)', () => {
    const config = loadConfig({ ...LOCAL, KEY_VAULT_URL: '', STS_LEDGER_TABLE_URL: ' ', STS_MAX_BODY_BYTES: '' });
    expect(config.secretStore).toEqual({ kind: 'file', path: '.sts/secrets.json' });
    expect(config.ledger.tableUrl).toBeUndefined();
    expect(config.limits.maxBodyBytes).toBe(16_384);
  });

  it('refuses to start with the ledger required and nowhere to write it', () => {
    expect(problemsOf({})).toEqual([
      'STS_LEDGER_CONNECTION_STRING or STS_LEDGER_TABLE_URL is required unless STS_LEDGER_MODE=off',
    ]);
  });
});

const WHOLE_NUMBER_SETTINGS = [
  ['STS_LIFETIME_MIXED_REALITY_SECONDS', 60, 86_400],
  ['STS_LIFETIME_COGNITIVE_SECONDS', 60, 3_600],
  ['STS_LIFETIME_WRAP_SECONDS', 60, 86_400],
  ['STS_SECRET_CACHE_MAX_AGE_SECONDS', 1, 86_400],
  ['STS_SECRET_CACHE_NEGATIVE_SECONDS', 1, 3_600],
  ['STS_SECRET_CACHE_MAX_ENTRIES', 10, 1_000_000],
  ['STS_SECRET_CACHE_MAX_STALE_SECONDS', 0, 86_400],
  ['STS_VAULT_TIMEOUT_MS', 100, 60_000],
  ['STS_MAX_BODY_BYTES', 256, 1_048_576],
  ['STS_MAX_URL_LENGTH', 256, 65_536],
  ['STS_MAX_HEADER_BYTES', 1_024, 65_536],
  ['STS_FAILED_ATTEMPTS_PER_WINDOW', 1, 100_000],
  ['STS_FAILED_ATTEMPTS_WINDOW_SECONDS', 1, 86_400],
  ['STS_LEDGER_DEADLINE_MS', 500, 60_000],
] as const;

describe('malformed settings are named', () => {
  it.each(WHOLE_NUMBER_SETTINGS)('%s: not a whole number, below %i, above %i', (name, min, max) => {
    for (const bad of ['ten', '12.5', '-1', '1e3', '0x10']) {
      expect(problemsOf({ ...LOCAL, [name]: bad })).toEqual([`${name} must be a whole number (got "${bad}")`]);
    }
    if (min > 0)
      expect(problemsOf({ ...LOCAL, [name]: String(min - 1) })).toEqual([
        `${name} must be between ${min} and ${max} (got ${min - 1})`,
      ]);
    expect(problemsOf({ ...LOCAL, [name]: String(max + 1) })).toEqual([
      `${name} must be between ${min} and ${max} (got ${max + 1})`,
    ]);
    expect(() => loadConfig({ ...LOCAL, [name]: String(min) })).not.toThrow();
    expect(() => loadConfig({ ...LOCAL, [name]: String(max) })).not.toThrow();
  });

  it.each(['STS_ISSUER', 'STS_WRAP_ISSUER', 'STS_LEDGER_TABLE_URL'])('%s must be an absolute http(s) URL', (name) => {
    expect(problemsOf({ ...LOCAL, [name]: 'sts.contoso.com' })).toEqual([
      `${name} must be an absolute URL (got "sts.contoso.com")`,
    ]);
    expect(problemsOf({ ...LOCAL, [name]: 'ftp://sts.contoso.com/' })).toEqual([`${name} must be an http(s) URL`]);
  });

  it('KEY_VAULT_URL must be an https URL', () => {
    expect(problemsOf({ ...LOCAL, KEY_VAULT_URL: 'http://vault.example/' })).toEqual([
      'KEY_VAULT_URL must use https in Azure',
    ]);
    expect(problemsOf({ ...LOCAL, KEY_VAULT_URL: 'my-vault' })).toEqual([
      'KEY_VAULT_URL must be an absolute URL (got "my-vault")',
    ]);
  });

  it('STS_LEDGER_MODE must be required, best-effort or off', () => {
    expect(
      problemsOf({ STS_LEDGER_MODE: 'sometimes', STS_LEDGER_CONNECTION_STRING: 'UseDevelopmentStorage=true' }),
    ).toEqual(['STS_LEDGER_MODE must be one of required, best-effort, off (got "sometimes")']);
  });

  it('STS_LEDGER_TABLE must be a valid table name', () => {
    // 53 at most: each hour's table appends yyyyMMddHH, and a table name has at most 63 characters.
    for (const bad of ['ab', '1issuance', 'issuance-log', 'x'.repeat(54)]) {
      expect(problemsOf({ ...LOCAL, STS_LEDGER_TABLE: bad })).toEqual([
        'STS_LEDGER_TABLE must be 3-53 letters and digits, starting with a letter',
      ]);
    }
    expect(loadConfig({ ...LOCAL, STS_LEDGER_TABLE: 'x'.repeat(53) }).ledger.tableName).toBe('x'.repeat(53));
  });

  it('STS_LEDGER_RETENTION_HOURS and STS_LEDGER_CLIENT_ADDRESS are checked', () => {
    expect(
      loadConfig({ ...LOCAL, STS_LEDGER_RETENTION_HOURS: '24', STS_LEDGER_CLIENT_ADDRESS: 'keyed-hash' }).ledger,
    ).toMatchObject({
      retentionHours: 24,
      clientAddress: 'keyed-hash',
    });
    expect(problemsOf({ ...LOCAL, STS_LEDGER_RETENTION_HOURS: '0', STS_LEDGER_CLIENT_ADDRESS: 'hashed' })).toEqual([
      'STS_LEDGER_CLIENT_ADDRESS must be one of full, truncated, keyed-hash (got "hashed")',
      'STS_LEDGER_RETENTION_HOURS must be between 1 and 87600 (got 0)',
    ]);
  });

  it('lists every problem at once, so one failed start names them all', () => {
    const problems = problemsOf({
      STS_ISSUER: 'nope',
      STS_LEDGER_MODE: 'maybe',
      STS_MAX_BODY_BYTES: 'big',
      STS_VAULT_TIMEOUT_MS: '5',
    });
    expect(problems.map((p) => p.split(' ')[0])).toEqual([
      'STS_ISSUER',
      'STS_LEDGER_MODE',
      'STS_LEDGER_CONNECTION_STRING',
      'STS_VAULT_TIMEOUT_MS',
      'STS_MAX_BODY_BYTES',
    ]);
    expect(() => loadConfig({ STS_ISSUER: 'nope' })).toThrow(/STS_ISSUER must be an absolute URL/);
  });
});

describe('Azure (WEBSITE_INSTANCE_ID set)', () => {
  const AZURE = {
    WEBSITE_INSTANCE_ID: 'a1b2c3',
    STS_ISSUER: 'https://sts.contoso.com/',
    KEY_VAULT_URL: 'https://contoso-sts.vault.azure.net/',
    STS_LEDGER_TABLE_URL: 'https://contososts.table.core.windows.net',
  } as const;

  it('starts with an https issuer, Key Vault and a ledger table', () => {
    const config = loadConfig({ ...AZURE, AZURE_CLIENT_ID: '0f0e0d0c-0000-4000-8000-000000000001' });
    expect(config.secretStore).toEqual({
      kind: 'keyVault',
      vaultUrl: 'https://contoso-sts.vault.azure.net/',
      clientId: '0f0e0d0c-0000-4000-8000-000000000001',
    });
    expect(config.ledger).toMatchObject({ mode: 'required', tableUrl: 'https://contososts.table.core.windows.net/' });
  });

  it('requires STS_ISSUER (no local default in Azure)', () => {
    const { STS_ISSUER: _omitted, ...withoutIssuer } = AZURE;
    expect(problemsOf(withoutIssuer)).toEqual(['STS_ISSUER is required']);
  });

  it('requires the issuer to use https', () => {
    expect(problemsOf({ ...AZURE, STS_ISSUER: 'http://sts.contoso.com/' })).toEqual([
      'STS_ISSUER must use https in Azure',
    ]);
  });

  it('requires KEY_VAULT_URL (the embedded file store is for local runs)', () => {
    const { KEY_VAULT_URL: _omitted, ...withoutVault } = AZURE;
    expect(problemsOf(withoutVault)).toEqual([
      'KEY_VAULT_URL is required in Azure (the embedded file store is for local runs)',
    ]);
  });
});

describe('the configuration object', () => {
  it('is frozen all the way down', () => {
    const config = loadConfig(LOCAL);
    for (const part of [
      config,
      config.lifetimes,
      config.secretStore,
      config.secretCache,
      config.ledger,
      config.limits,
    ]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
    expect(() => {
      (config as { issuer: string }).issuer = 'https://evil.example/';
    }).toThrow(TypeError);
    expect(() => {
      (config.limits as { maxBodyBytes: number }).maxBodyBytes = 1e9;
    }).toThrow(TypeError);
    expect(config.issuer).toBe('http://localhost:7071/');
  });

  it('is a snapshot: later changes to the environment do not reach it', () => {
    const env: Record<string, string> = { ...LOCAL, STS_LIFETIME_WRAP_SECONDS: '1200' };
    const config = loadConfig(env);
    env.STS_LIFETIME_WRAP_SECONDS = '60';
    expect(config.lifetimes.wrapSeconds).toBe(1_200);
  });
});
