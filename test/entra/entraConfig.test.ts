import { describe, expect, it } from 'vitest';
import { ConfigurationError, loadConfig } from '../../shared/config.js';

/** `STS_ENTRA_AUTHORITY` and `STS_ENTRA_AUDIENCE`: off when unset, https only, kept exactly as written. */

const LOCAL = { STS_LEDGER_MODE: 'off' } as const;

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig({ ...LOCAL, ...env });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as ConfigurationError).problems;
  }
  throw new Error('loadConfig accepted the configuration');
}

describe('Entra settings', () => {
  it('are off when the authority is unset or blank', () => {
    expect(loadConfig(LOCAL).entra).toBeUndefined();
    expect(loadConfig({ ...LOCAL, STS_ENTRA_AUTHORITY: '  ' }).entra).toBeUndefined();
  });

  it('keep the authority exactly as written (it is compared with iss exactly)', () => {
    const authority = 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0';
    const config = loadConfig({ ...LOCAL, STS_ENTRA_AUTHORITY: ` ${authority} `, STS_ENTRA_AUDIENCE: 'api://sts' });
    expect(config.entra).toEqual({ authorities: [authority], audience: 'api://sts' });
    expect(Object.isFrozen(config.entra)).toBe(true);
  });

  it('take several authorities (one per tenant), separated by commas or white space, each kept as written', () => {
    const a = 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0';
    const b = 'https://sts.windows.net/0b9e6b0a-1f6e-4bfc-9f4e-2a4f0e0c1d2e/';
    const config = loadConfig({ ...LOCAL, STS_ENTRA_AUTHORITY: `${a},\n ${b} ${a}`, STS_ENTRA_AUDIENCE: 'api://sts' });
    expect(config.entra?.authorities).toEqual([a, b]);
    expect(problemsOf({ STS_ENTRA_AUTHORITY: `${a} http://x.example/t`, STS_ENTRA_AUDIENCE: 'a' })).toEqual([
      'STS_ENTRA_AUTHORITY must use https',
    ]);
  });

  it.each([
    [
      { STS_ENTRA_AUTHORITY: 'http://login.microsoftonline.com/t/v2.0', STS_ENTRA_AUDIENCE: 'a' },
      'STS_ENTRA_AUTHORITY must use https',
    ],
    [
      { STS_ENTRA_AUTHORITY: 'login.microsoftonline.com/t', STS_ENTRA_AUDIENCE: 'a' },
      'STS_ENTRA_AUTHORITY must be an absolute URL (got "login.microsoftonline.com/t")',
    ],
    [
      { STS_ENTRA_AUTHORITY: 'https://login.microsoftonline.com/t/v2.0?x=1', STS_ENTRA_AUDIENCE: 'a' },
      'STS_ENTRA_AUTHORITY must be a plain issuer URL (no query, fragment or credentials)',
    ],
    [
      { STS_ENTRA_AUTHORITY: 'https://login.microsoftonline.com/t/v2.0' },
      'STS_ENTRA_AUDIENCE is required when STS_ENTRA_AUTHORITY is set',
    ],
    [
      { STS_ENTRA_AUDIENCE: 'api://sts' },
      'STS_ENTRA_AUDIENCE is set but STS_ENTRA_AUTHORITY is not (set both, or neither)',
    ],
  ])('%j is refused at start', (env, problem) => {
    expect(problemsOf(env)).toEqual([problem]);
  });
});
