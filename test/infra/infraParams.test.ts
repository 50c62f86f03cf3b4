import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseRecord } from '../../shared/credentials/records.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { parseSigningJwk } from '../../shared/tokens/signingKeyMaterial.js';
import { UsageError } from '../../tools/sts/command.js';
import {
  AZD_SIGNING_KEY_DEPLOYED_VARIABLE,
  AZD_SIGNING_KEY_VARIABLE,
  bicepString,
  command,
  generateInfraSecrets,
} from '../../tools/sts/commands/infraParams.js';

/**
 * `npm run sts -- infra-params` (docs/deploy.md): the git-ignored parameters file with a new signing key and demo
 * credentials built by the real provisioning code. `npm run test:infra` compiles such a file with the real
 * Bicep compiler; these tests cover what needs no compiler.
 */

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

let work: string;
let printed: string[];

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'sts-infra-params-'));
  printed = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    printed.push(args.join(' '));
  });
});

afterEach(async () => {
  vi.restoreAllMocks();
  await rm(work, { recursive: true, force: true });
});

/** The value of `param <name> = '<literal>'` in a generated file, unescaped (the file only uses \\ \' \$). */
function paramLiteral(text: string, name: string): string | undefined {
  const match = new RegExp(`^param ${name} = '((?:[^'\\\\]|\\\\.)*)'$`, 'm').exec(text);
  return match?.[1]?.replace(/\\(.)/g, '$1');
}

describe('bicepString', () => {
  it('escapes quotes, backslashes, interpolation and control characters', () => {
    expect(bicepString(`it's`)).toBe(`'it\\'s'`);
    expect(bicepString('a\\b')).toBe(`'a\\\\b'`);
    expect(bicepString('${x}')).toBe(`'\\\${x}'`);
    expect(bicepString('a\nb\tc\rd')).toBe(`'a\\nb\\tc\\rd'`);
    expect(bicepString('\u0001')).toBe(`'\\u{1}'`);
    expect(bicepString('{"kty":"EC","x":"a+b/c="}')).toBe(`'{"kty":"EC","x":"a+b/c="}'`);
  });
});

describe('generateInfraSecrets', () => {
  it('makes only a signing key without demo credentials', async () => {
    const generated = await generateInfraSecrets({});
    expect(generated.secrets).toEqual([]);
    expect(generated.demo).toBeUndefined();
    const material = await parseSigningJwk(generated.signingKeyJwk);
    expect(material.alg).toBe('ES256');
    expect(JSON.parse(generated.signingKeyJwk)).toMatchObject({
      kty: 'EC',
      crv: 'P-256',
      alg: 'ES256',
      d: expect.any(String),
    });
  });

  it('makes an RS256 key when asked', async () => {
    const { signingKeyJwk } = await generateInfraSecrets({ alg: 'RS256' });
    expect((await parseSigningJwk(signingKeyJwk)).alg).toBe('RS256');
  });

  it('lays out one credential per flow exactly as the vault layout names them, in provisioning order', async () => {
    const { secrets, demo } = await generateInfraSecrets({
      demo: {
        mixedRealityAccountDomain: 'westeurope.mixedreality.azure.com',
        cognitiveRegion: 'westeurope',
        wrapNamespace: 'fabrikam',
      },
    });
    if (!demo) throw new Error('no demo credentials');
    const { mixedRealityAccount: account, cognitiveResource: resource, wrapIssuer: issuer } = demo;
    expect(secrets.map((s) => s.name)).toEqual([
      vaultLayout.mixedRealityAccount(account.accountId),
      vaultLayout.cognitiveKeyIndex(resource.keys[0]),
      vaultLayout.cognitiveKeyIndex(resource.keys[1]),
      vaultLayout.cognitiveResource('demo-speech'),
      vaultLayout.wrapNamespace('fabrikam'),
      vaultLayout.wrapIssuer('fabrikam', 'owner'),
    ]);
    for (const secret of secrets) {
      const kind = secret.tags?.kind;
      expect(kind).toBeDefined();
      expect(parseRecord(secret.value, kind as 'mixedRealityAccount')).toBeDefined();
      expect(secret.contentType).toBe('application/json');
    }
    expect(account.accountDomain).toBe('westeurope.mixedreality.azure.com');
    expect(resource).toMatchObject({
      region: 'westeurope',
      limitedAccessTokens: true,
      grantableFeatureFlags: ['Face.Identification'],
    });
    expect(issuer.scopes).toEqual(['http://fabrikam.servicebus.windows.net/']);
    expect(secrets.some((s) => s.name === vaultLayout.signingKey)).toBe(false);
  });
});

describe('infra-params writes the secrets file', () => {
  it('writes an owner-only file that uses infra/main.bicep and extends infra/main.bicepparam', async () => {
    const out = join(work, 'deep', 'prod.secrets.bicepparam');
    await expect(
      command.run(['--out', out, '--deployer-principal-id', 'AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE']),
    ).resolves.toBe(0);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const text = await readFile(out, 'utf8');
    const using = /^using '([^']+)'$/m.exec(text)?.[1];
    const extendsPath = /^extends '([^']+)'$/m.exec(text)?.[1];
    expect(using && resolve(dirname(out), using)).toBe(join(REPO_ROOT, 'infra', 'main.bicep'));
    expect(extendsPath && resolve(dirname(out), extendsPath)).toBe(join(REPO_ROOT, 'infra', 'main.bicepparam'));
    expect(paramLiteral(text, 'deployerPrincipalId')).toBe('aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee');
    const jwk = paramLiteral(text, 'signingKeyJwk');
    expect(jwk).toBeDefined();
    expect((await parseSigningJwk(jwk ?? '')).alg).toBe('ES256');
    expect(text).not.toContain('initialSecrets');
    const d = (JSON.parse(jwk ?? '{}') as { d?: string }).d;
    expect(d).toBeTruthy();
    expect(printed.join('\n')).not.toContain(d);
  });

  it('prints the demo keys once and writes the records into the file', async () => {
    const out = join(work, 'main.secrets.bicepparam');
    await command.run(['--out', out, '--with-demo-credentials']);
    const text = await readFile(out, 'utf8');
    const terminal = printed.join('\n');
    const key = /Ocp-Apim-Subscription-Key: ([0-9a-f]{32})/.exec(terminal)?.[1];
    expect(key).toBeDefined();
    expect(text).toContain(`name: '${vaultLayout.cognitiveKeyIndex(key ?? '')}'`);
    expect(text).toContain("name: 'cs-resource-demo-speech'");
    expect(terminal).toMatch(/Authorization: Bearer [0-9a-f-]{36}:[A-Za-z0-9+/]{43}=/);
    expect(terminal).toMatch(/wrap_name=owner {2}wrap_password=[A-Za-z0-9+/]{43}=/);
  });

  it('never overwrites an existing file unless told to, and then with a new key', async () => {
    const out = join(work, 'main.secrets.bicepparam');
    await command.run(['--out', out]);
    const first = await readFile(out, 'utf8');
    await expect(command.run(['--out', out])).rejects.toThrow(UsageError);
    expect(await readFile(out, 'utf8')).toBe(first);
    await command.run(['--out', out, '--force']);
    const second = await readFile(out, 'utf8');
    expect(paramLiteral(second, 'signingKeyJwk')).not.toBe(paramLiteral(first, 'signingKeyJwk'));
  });

  it('refuses file names and places git would not ignore', async () => {
    await expect(command.run(['--out', join(work, 'main.bicepparam')])).rejects.toThrow(/\*\.secrets\.bicepparam/);
    const inRepoRoot = join(REPO_ROOT, 'stray.secrets.bicepparam');
    await expect(command.run(['--out', inRepoRoot])).rejects.toThrow(/must be in infra\//);
    await expect(stat(inRepoRoot)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rejects bad options with a usage error', async () => {
    await expect(command.run(['--alg', 'HS256'])).rejects.toThrow(UsageError);
    await expect(command.run(['--deployer-principal-id', 'me'])).rejects.toThrow(UsageError);
    await expect(command.run(['--bogus'])).rejects.toThrow(UsageError);
    await expect(command.run(['--azd', 'preprovision', '--out', join(work, 'x.secrets.bicepparam')])).rejects.toThrow(
      UsageError,
    );
    await expect(command.run(['--azd', 'sometime'])).rejects.toThrow(UsageError);
  });
});

describe('infra-params --azd (azure.yaml hooks)', () => {
  let store: string;
  let originalPath: string | undefined;

  beforeEach(async () => {
    // A stand-in for `azd env get-value|set`, keeping values in a file as azd keeps them in .azure/<env>/.env.
    const bin = join(work, 'bin');
    store = join(work, 'azd-env');
    await mkdir(bin);
    await writeFile(store, '');
    await writeFile(
      join(bin, 'azd'),
      [
        '#!/bin/sh',
        'if [ "$1" = env ] && [ "$2" = get-value ]; then',
        '  line=$(grep "^$3=" "$FAKE_AZD_STORE" | tail -n 1)',
        '  if [ -z "$line" ]; then echo "ERROR: key not found" >&2; exit 1; fi',
        '  printf "%s\\n" "${line#*=}"; exit 0',
        'fi',
        'if [ "$1" = env ] && [ "$2" = set ]; then printf "%s=%s\\n" "$3" "$4" >> "$FAKE_AZD_STORE"; exit 0; fi',
        'exit 2',
        '',
      ].join('\n'),
    );
    await chmod(join(bin, 'azd'), 0o755);
    originalPath = process.env.PATH;
    process.env.PATH = `${bin}${delimiter}${originalPath ?? ''}`;
    process.env.FAKE_AZD_STORE = store;
  });

  afterEach(() => {
    process.env.PATH = originalPath;
    delete process.env.FAKE_AZD_STORE;
  });

  async function azdValue(name: string): Promise<string | undefined> {
    const lines = (await readFile(store, 'utf8')).split('\n').filter((l) => l.startsWith(`${name}=`));
    return lines.at(-1)?.slice(name.length + 1);
  }

  it('generates the key once, keeps it until deployed, then removes it for good', async () => {
    await expect(command.run(['--azd', 'preprovision'])).resolves.toBe(0);
    const key = await azdValue(AZD_SIGNING_KEY_VARIABLE);
    expect((await parseSigningJwk(key ?? '')).alg).toBe('ES256');

    // A failed provision is retried with the same key, not a new one.
    await command.run(['--azd', 'preprovision']);
    expect(await azdValue(AZD_SIGNING_KEY_VARIABLE)).toBe(key);

    await command.run(['--azd', 'postprovision']);
    expect(await azdValue(AZD_SIGNING_KEY_VARIABLE)).toBe('');
    expect(await azdValue(AZD_SIGNING_KEY_DEPLOYED_VARIABLE)).toBe('true');

    // Later provisions neither bring a new key (that would be a rotation) nor the old one back.
    await command.run(['--azd', 'preprovision']);
    expect(await azdValue(AZD_SIGNING_KEY_VARIABLE)).toBe('');
    expect(printed.join('\n')).not.toContain((JSON.parse(key ?? '{}') as { d?: string }).d ?? '\0');
  });
});
