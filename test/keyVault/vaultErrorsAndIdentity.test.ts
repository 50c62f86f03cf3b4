import { describe, expect, it } from 'vitest';
import { credentialKindFor } from '../../shared/secrets/azureCredential.js';
import { classifyVaultError, retryAfterSeconds, toDependencyUnavailable } from '../../shared/secrets/keyVaultErrors.js';

describe('which identity reads the vault', () => {
  it.each([
    [{ IDENTITY_ENDPOINT: 'http://127.0.0.1:41741/msi/token', IDENTITY_HEADER: 'h' }, 'managedIdentity'],
    [{ WEBSITE_INSTANCE_ID: 'a1b2' }, 'managedIdentity'],
    [{ IDENTITY_ENDPOINT: '  ' }, 'developerTools'],
    [{}, 'developerTools'],
  ] as const)('%j → %s', (env, kind) => {
    expect(credentialKindFor(env)).toBe(kind);
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2026-03-01T09:30:00Z');
  it.each([
    ['7', 7],
    ['0', 1],
    ['3600', 60],
    ['Sun, 01 Mar 2026 09:30:12 GMT', 12],
    ['Sun, 01 Mar 2026 09:00:00 GMT', 1],
    ['soon', undefined],
    [undefined, undefined],
  ] as const)('%s → %s s', (header, seconds) => {
    expect(retryAfterSeconds(header, now)).toBe(seconds);
  });
});

describe('vault failures', () => {
  const headers = (values: Record<string, string>) => ({ get: (name: string) => values[name.toLowerCase()] });
  it.each([
    ['404 SecretNotFound', { statusCode: 404, code: 'SecretNotFound' }, { kind: 'absent' }],
    [
      '403 SecretDisabled',
      {
        statusCode: 403,
        code: 'Forbidden',
        details: { error: { code: 'Forbidden', innerError: { code: 'SecretDisabled' } } },
      },
      { kind: 'absent' },
    ],
    [
      '403 without SecretDisabled (no RBAC role)',
      { statusCode: 403, code: 'Forbidden', message: 'Caller is not authorized' },
      { kind: 'rejected', status: 403 },
    ],
    [
      '429 with Retry-After',
      { statusCode: 429, response: { headers: headers({ 'retry-after': '9' }) } },
      { kind: 'unavailable', retryAfterSeconds: 9 },
    ],
    ['503 without Retry-After', { statusCode: 503 }, { kind: 'unavailable', retryAfterSeconds: 5 }],
    ['a timeout', { name: 'TimeoutError' }, { kind: 'unavailable', description: 'Key Vault did not answer in time' }],
    [
      'an identity failure',
      { name: 'CredentialUnavailableError' },
      { kind: 'unavailable', description: expect.stringMatching(/identity/) },
    ],
    [
      "the App Service credential refused (its status is not the vault's)",
      { name: 'ManagedIdentityTokenError', status: 400, message: 'The managed identity endpoint answered 400' },
      {
        kind: 'unavailable',
        retryAfterSeconds: 5,
        description:
          'The managed identity could not get a token for Key Vault (The managed identity endpoint answered 400)',
      },
    ],
    [
      'a reset connection',
      { name: 'RestError', code: 'ECONNRESET' },
      { kind: 'unavailable', description: expect.stringMatching(/ECONNRESET/) },
    ],
  ])('%s', (_, error, expected) => {
    expect(classifyVaultError(error)).toMatchObject(expected);
  });

  it('says "throttled" on the 503 a 429 becomes, and on nothing else (telemetry groups on it)', () => {
    const asUnavailable = (error: object) => {
      const failure = classifyVaultError(error);
      if (failure.kind === 'absent') throw new Error('expected a failure');
      return toDependencyUnavailable(failure, error);
    };
    expect(asUnavailable({ statusCode: 429, response: { headers: headers({ 'retry-after': '9' }) } })).toMatchObject({
      dependency: 'secret-store',
      retryAfterSeconds: 9,
      condition: 'throttled',
    });
    expect(asUnavailable({ statusCode: 503 }).condition).toBeUndefined();
    expect(asUnavailable({ name: 'TimeoutError' }).condition).toBeUndefined();
  });
});
