import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createCognitiveResource,
  createMixedRealityAccount,
  createWrapIssuer,
  readCredential,
  type CredentialRef,
} from '../../tools/sts/credentials/provisioning.js';
import { clearCredentialUpstream, setCredentialUpstream } from '../../tools/sts/credentials/upstreamProvisioning.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import { DependencyUnavailableError } from '../../shared/errors.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import type { SetSecretOptions, WritableSecretStore } from '../../shared/secrets/secretStore.js';
import { createUpstreamClient } from '../../shared/upstream/upstreamClient.js';
import { createUpstreamTokens } from '../../shared/upstream/upstreamTokens.js';
import { upstreamKeyTags } from '../../shared/upstream/upstreamSecret.js';
import { UsageError, type StsCommand } from '../../tools/sts/command.js';
import { command as clearUpstream } from '../../tools/sts/commands/clearUpstream.js';
import { command as setUpstream } from '../../tools/sts/commands/setUpstream.js';

/**
 * Switching credentials to upstream mode and back: the provisioning code (validation before any write, the
 * real key written before the record) and the `set-upstream` / `clear-upstream` commands run in process
 * against a temp file store, as an operator runs them.
 */

const REAL_SPEECH_KEY = '0123456789abcdef0123456789abcdef';
const REAL_MR_KEY = 'cmVhbC1tci1hY2NvdW50LWtleS1mb3ItdGVzdHMtb25seQ==';
const REAL_MR_ACCOUNT = '35d830cb-f062-4062-9792-d6316039df56';
const REAL_WRAP_PASSWORD = 'cmVhbC13cmFwLXBhc3N3b3JkLWZvci10ZXN0cy0xMjM0NTY=';

let dir: string;
let storePath: string;
let store: FileSecretStore;
let accountId: string;
const originalEnv = { ...process.env };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sts-upstream-cli-'));
  storePath = join(dir, 'secrets.json');
  store = new FileSecretStore(storePath);
  accountId = (await createMixedRealityAccount(store, { accountDomain: 'eastus2.mixedreality.azure.com' })).accountId;
  await createCognitiveResource(store, { name: 'speech', region: 'westus', resourceKind: 'SpeechServices' });
  await createWrapIssuer(store, { namespace: 'contoso', name: 'owner' });
});
afterEach(async () => {
  vi.restoreAllMocks();
  process.env = { ...originalEnv };
  await rm(dir, { recursive: true, force: true });
});
afterAll(() => {
  process.env = originalEnv;
});

interface Run {
  readonly code: number;
  readonly stdout: string;
}

/** Runs a command in process against the temp file store, capturing stdout. */
async function sts(command: StsCommand, args: string[], env: Record<string, string> = {}): Promise<Run> {
  process.env = { ...originalEnv, STS_LOCAL_STORE_PATH: storePath, ...env };
  delete process.env.KEY_VAULT_URL;
  const out: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void out.push(parts.join(' ')));
  try {
    return { code: await command.run(args), stdout: out.join('\n') };
  } finally {
    vi.restoreAllMocks();
    process.env = { ...originalEnv };
  }
}

async function keyFile(content: string): Promise<string> {
  const path = join(dir, `key-${Math.random().toString(36).slice(2)}.txt`);
  await writeFile(path, content, { mode: 0o600 });
  return path;
}

const speech: CredentialRef = { kind: 'cognitiveResource', name: 'speech' };
const owner: CredentialRef = { kind: 'wrapIssuer', namespace: 'contoso', name: 'owner' };

describe('set-upstream / clear-upstream (admin CLI, file store)', () => {
  it('switches a Cognitive resource to upstream mode: the key goes into upstream-cs-<name>, the record names it, nothing prints the key', async () => {
    const run = await sts(setUpstream, [
      '--cognitive',
      'speech',
      '--endpoint',
      'https://westus.api.cognitive.microsoft.com/',
      '--key-file',
      await keyFile(`${REAL_SPEECH_KEY}\n`),
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('now serves tokens from https://westus.api.cognitive.microsoft.com (upstream mode)');
    expect(run.stdout).toContain('upstream-cs-speech');
    expect(run.stdout).not.toContain(REAL_SPEECH_KEY);

    const fresh = new FileSecretStore(storePath);
    const record = await readCredential(fresh, speech);
    expect(record.upstream).toEqual({
      endpoint: 'https://westus.api.cognitive.microsoft.com',
      secretName: 'upstream-cs-speech',
    });
    expect((await fresh.getSecret('upstream-cs-speech'))?.value).toBe(REAL_SPEECH_KEY);
    // The record itself never holds the real key.
    expect((await fresh.getSecret(vaultLayout.cognitiveResource('speech')))?.value).not.toContain(REAL_SPEECH_KEY);
  });

  it('Mixed Reality: --upstream-account with the key from an environment variable is stored as accountId:accountKey (JSON output)', async () => {
    const run = await sts(
      setUpstream,
      [
        '--account',
        accountId,
        '--endpoint',
        'https://sts.eastus2.mixedreality.azure.com',
        '--key-env',
        'REAL_MR_KEY',
        '--upstream-account',
        REAL_MR_ACCOUNT.toUpperCase(),
        '--json',
      ],
      { REAL_MR_KEY },
    );
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain(REAL_MR_KEY);
    const printed = JSON.parse(run.stdout) as {
      upstream: { endpoint: string; secretName: string };
      recordChanged: boolean;
      keyVersion: string;
    };
    expect(printed.upstream).toEqual({
      endpoint: 'https://sts.eastus2.mixedreality.azure.com',
      secretName: `upstream-mr-${accountId}`,
    });
    expect(printed.recordChanged).toBe(true);
    expect(printed.keyVersion).toMatch(/^[0-9a-f]{32}$/);
    expect((await new FileSecretStore(storePath).getSecret(`upstream-mr-${accountId}`))?.value).toBe(
      `${REAL_MR_ACCOUNT}:${REAL_MR_KEY}`,
    );
  });

  it('WRAP: the default secret name is a digest of namespace and issuer; the /WRAPv0.9 path is kept', async () => {
    const run = await sts(setUpstream, [
      '--wrap-issuer',
      'contoso/owner',
      '--endpoint',
      'https://contoso-sb.accesscontrol.windows.net/WRAPv0.9/',
      '--key-file',
      await keyFile(REAL_WRAP_PASSWORD),
    ]);
    expect(run.code).toBe(0);
    const record = await readCredential(new FileSecretStore(storePath), owner);
    expect(record.upstream).toEqual({
      endpoint: 'https://contoso-sb.accesscontrol.windows.net/WRAPv0.9',
      secretName: vaultLayout.upstreamKey('wrapIssuer', 'contoso/owner'),
    });
    expect(record.upstream?.secretName).toMatch(/^upstream-wrap-[0-9a-f]{48}$/);
  });

  it('running it again with a new key rotates the real key only (new secret version, record unchanged)', async () => {
    const first = await setCredentialUpstream(store, speech, {
      endpoint: 'https://westus.api.cognitive.microsoft.com',
      key: REAL_SPEECH_KEY,
    });
    const recordVersions = (await store.getSecretVersions(vaultLayout.cognitiveResource('speech'))).length;
    const rotated = 'fedcba9876543210fedcba9876543210';
    const run = await sts(setUpstream, [
      '--cognitive',
      'speech',
      '--endpoint',
      'https://westus.api.cognitive.microsoft.com',
      '--key-file',
      await keyFile(rotated),
    ]);
    expect(run.stdout).toContain('already served');
    const fresh = new FileSecretStore(storePath);
    expect((await fresh.getSecretVersions(vaultLayout.cognitiveResource('speech'))).length).toBe(recordVersions);
    const keyVersions = await fresh.getSecretVersions('upstream-cs-speech');
    expect(keyVersions.map((v) => v.value)).toEqual([rotated, REAL_SPEECH_KEY]);
    expect(first.recordChanged).toBe(true);
  });

  it('clear-upstream mints locally again; --disable-key disables every version of the real key', async () => {
    await setCredentialUpstream(store, speech, {
      endpoint: 'https://westus.api.cognitive.microsoft.com',
      key: REAL_SPEECH_KEY,
    });
    await setCredentialUpstream(store, speech, {
      endpoint: 'https://westus.api.cognitive.microsoft.com',
      key: 'fedcba9876543210fedcba9876543210',
    });
    const run = await sts(clearUpstream, ['--cognitive', 'speech', '--disable-key']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('mints its tokens locally again');
    expect(run.stdout).toContain('disabled 2 version(s) of secret upstream-cs-speech');
    const fresh = new FileSecretStore(storePath);
    expect((await readCredential(fresh, speech)).upstream).toBeUndefined();
    expect(await fresh.getSecret('upstream-cs-speech')).toBeUndefined();

    const again = await sts(clearUpstream, ['--cognitive', 'speech']);
    expect(again.stdout).toContain('was not in upstream mode; nothing changed');
  });

  it('clear-upstream without --disable-key leaves the real key in force (another credential may share it)', async () => {
    await setCredentialUpstream(store, owner, {
      endpoint: 'https://contoso-sb.accesscontrol.windows.net',
      key: REAL_WRAP_PASSWORD,
    });
    const result = await clearCredentialUpstream(store, owner);
    expect(result).toMatchObject({ changed: true, disabledKeyVersions: 0 });
    expect((await store.getSecret(vaultLayout.upstreamKey('wrapIssuer', 'contoso/owner')))?.value).toBe(
      REAL_WRAP_PASSWORD,
    );
  });

  it('--secret-name without a key points at an upstream key set-upstream wrote before (no new version)', async () => {
    await store.setSecret('upstream-cs-shared', REAL_SPEECH_KEY, { tags: upstreamKeyTags('cognitiveResource') });
    const run = await sts(setUpstream, [
      '--cognitive',
      'speech',
      '--endpoint',
      'https://westus.api.cognitive.microsoft.com',
      '--secret-name',
      'upstream-cs-shared',
      '--json',
    ]);
    const printed = JSON.parse(run.stdout) as { keyVersion: string | null; upstream: { secretName: string } };
    expect(printed).toMatchObject({ keyVersion: null, upstream: { secretName: 'upstream-cs-shared' } });
    expect(await new FileSecretStore(storePath).getSecretVersions('upstream-cs-shared')).toHaveLength(1);
  });

  it('the key it writes carries the tags that make it sendable: purpose=upstream-key and the credential kind', async () => {
    await sts(setUpstream, [
      '--cognitive',
      'speech',
      '--endpoint',
      'https://westus.api.cognitive.microsoft.com',
      '--key-file',
      await keyFile(REAL_SPEECH_KEY),
    ]);
    expect((await new FileSecretStore(storePath).getSecret('upstream-cs-speech'))?.tags).toEqual({
      purpose: 'upstream-key',
      kind: 'cognitiveResource',
    });
  });
});

describe('refusals: checked before the first write, never echoing the key', () => {
  const refusals: Array<[string, string[], RegExp]> = [
    [
      'a plain-http endpoint',
      ['--cognitive', 'speech', '--endpoint', 'http://westus.api.cognitive.microsoft.com'],
      /must use https/,
    ],
    [
      'an endpoint with a query',
      ['--cognitive', 'speech', '--endpoint', 'https://westus.api.cognitive.microsoft.com/?x=1'],
      /query/,
    ],
    [
      'a loopback address with a port',
      ['--cognitive', 'speech', '--endpoint', 'https://127.0.0.1:8443', '--key-env', 'K'],
      /IP address/,
    ],
    ['localhost', ['--cognitive', 'speech', '--endpoint', 'https://localhost', '--key-env', 'K'], /documented host/],
    ['an IPv6 literal', ['--cognitive', 'speech', '--endpoint', 'https://[::1]', '--key-env', 'K'], /IP address/],
    [
      'a hexadecimal IPv4',
      ['--cognitive', 'speech', '--endpoint', 'https://0x7f000001', '--key-env', 'K'],
      /IP address/,
    ],
    [
      'a look-alike suffix',
      [
        '--cognitive',
        'speech',
        '--endpoint',
        'https://westus.api.cognitive.microsoft.com.evil.example',
        '--key-env',
        'K',
      ],
      /documented host/,
    ],
    [
      'a port on a real host',
      ['--cognitive', 'speech', '--endpoint', 'https://westus.api.cognitive.microsoft.com:8443', '--key-env', 'K'],
      /documented host/,
    ],
    [
      'an ACS host for a Cognitive key',
      ['--cognitive', 'speech', '--endpoint', 'https://contoso-sb.accesscontrol.windows.net', '--key-env', 'K'],
      /documented host/,
    ],
    [
      'the backslash form',
      [
        '--cognitive',
        'speech',
        '--endpoint',
        'https://evil.example\\@westus.api.cognitive.microsoft.com',
        '--key-env',
        'K',
      ],
      /backslash/,
    ],
    [
      'user info',
      [
        '--cognitive',
        'speech',
        '--endpoint',
        'https://evil.example@westus.api.cognitive.microsoft.com',
        '--key-env',
        'K',
      ],
      /user info/,
    ],
    [
      "another team's secret",
      [
        '--cognitive',
        'speech',
        '--endpoint',
        'https://westus.api.cognitive.microsoft.com',
        '--secret-name',
        'payments-api-key',
      ],
      /must start with upstream-cs-/,
    ],
    [
      "another kind's upstream key",
      [
        '--cognitive',
        'speech',
        '--endpoint',
        'https://westus.api.cognitive.microsoft.com',
        '--secret-name',
        'upstream-wrap-x',
      ],
      /must start with upstream-cs-/,
    ],
    [
      'an upstream-named secret the CLI did not write',
      [
        '--cognitive',
        'speech',
        '--endpoint',
        'https://westus.api.cognitive.microsoft.com',
        '--secret-name',
        'upstream-cs-manual',
      ],
      /not written by set-upstream/,
    ],
    [
      'an endpoint naming the token operation',
      ['--cognitive', 'speech', '--endpoint', 'https://westus.api.cognitive.microsoft.com/sts/v1.0/issueToken'],
      /without the token path/,
    ],
    [
      'a Mixed Reality endpoint naming /accounts',
      ['--account', 'ACCOUNT', '--endpoint', 'https://sts.mixedreality.azure.com/accounts/x/token'],
      /without the token path/,
    ],
    [
      'the signing key as the secret',
      [
        '--cognitive',
        'speech',
        '--endpoint',
        'https://westus.api.cognitive.microsoft.com',
        '--secret-name',
        'sts-signing-key',
      ],
      /cannot hold this real key/,
    ],
    [
      'a credential record as the secret',
      [
        '--cognitive',
        'speech',
        '--endpoint',
        'https://westus.api.cognitive.microsoft.com',
        '--secret-name',
        'cs-resource-speech',
      ],
      /cannot hold this real key/,
    ],
    [
      'a key with a space',
      ['--cognitive', 'speech', '--endpoint', 'https://westus.api.cognitive.microsoft.com', '--key-env', 'K'],
      /one word of printable ASCII/,
    ],
    [
      'a Mixed Reality key without the real account id',
      ['--account', 'ACCOUNT', '--endpoint', 'https://sts.mixedreality.azure.com', '--key-env', 'K'],
      /accountId:accountKey/,
    ],
    [
      'an upstream account that is not a GUID',
      [
        '--account',
        'ACCOUNT',
        '--endpoint',
        'https://sts.mixedreality.azure.com',
        '--key-env',
        'K',
        '--upstream-account',
        'nope',
      ],
      /must be a GUID/,
    ],
    [
      'an upstream account on a Cognitive resource',
      [
        '--cognitive',
        'speech',
        '--endpoint',
        'https://westus.api.cognitive.microsoft.com',
        '--key-env',
        'K',
        '--upstream-account',
        REAL_MR_ACCOUNT,
      ],
      /Mixed Reality accounts only/,
    ],
    [
      'no key and no secret name',
      ['--cognitive', 'speech', '--endpoint', 'https://westus.api.cognitive.microsoft.com'],
      /Give the real key/,
    ],
    [
      'a secret name that does not exist',
      [
        '--cognitive',
        'speech',
        '--endpoint',
        'https://westus.api.cognitive.microsoft.com',
        '--secret-name',
        'upstream-cs-nothing-here',
      ],
      /does not exist/,
    ],
    [
      'an unknown credential',
      ['--cognitive', 'nobody', '--endpoint', 'https://westus.api.cognitive.microsoft.com', '--key-env', 'K'],
      /does not exist/,
    ],
    ['no endpoint', ['--cognitive', 'speech', '--key-env', 'K'], /--endpoint is required/],
    [
      'two key sources',
      [
        '--cognitive',
        'speech',
        '--endpoint',
        'https://westus.api.cognitive.microsoft.com',
        '--key-env',
        'K',
        '--key-file',
        '/dev/null',
      ],
      /not both/,
    ],
  ];

  it.each(refusals)('%s is a usage error and the store is untouched', async (_label, args, message) => {
    const secretKey = 'key with spaces 0123456789abcdef';
    await store.setSecret('payments-api-key', REAL_SPEECH_KEY);
    await store.setSecret('upstream-cs-manual', REAL_SPEECH_KEY);
    const before = await readFile(storePath, 'utf8');
    const resolved = args.map((arg) => (arg === 'ACCOUNT' ? accountId : arg));
    const error = await sts(setUpstream, resolved, {
      K: resolved.includes('--upstream-account') ? REAL_MR_KEY : secretKey,
    }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain(secretKey);
    expect((error as Error).message).not.toContain(REAL_MR_KEY);
    expect(await readFile(storePath, 'utf8')).toBe(before);
  });

  it('a secret that exists but does not hold a key of the right form is refused without quoting it', async () => {
    await store.setSecret('upstream-cs-wrong', 'not a key at all', { tags: upstreamKeyTags('cognitiveResource') });
    const error = await setCredentialUpstream(store, speech, {
      endpoint: 'https://westus.api.cognitive.microsoft.com',
      secretName: 'upstream-cs-wrong',
    }).catch((caught: unknown) => caught);
    expect((error as Error).message).toMatch(/printable ASCII/);
    expect((error as Error).message).not.toContain('not a key at all');
    expect((await readCredential(store, speech)).upstream).toBeUndefined();
  });
});

describe('write order: nothing half-written', () => {
  /** The file store, failing the next write of one secret name. */
  class FailingWrites implements WritableSecretStore {
    failName: string | undefined;
    constructor(private readonly inner: FileSecretStore) {}
    getSecret = (name: string) => this.inner.getSecret(name);
    getFreshSecret = (name: string) => this.inner.getFreshSecret(name);
    getSecretVersions = (name: string) => this.inner.getSecretVersions(name);
    updateSecretVersion = (name: string, version: string, patch: { readonly enabled: boolean }) =>
      this.inner.updateSecretVersion(name, version, patch);
    listSecretNames = () => this.inner.listSecretNames();
    async setSecret(name: string, value: string, options?: SetSecretOptions) {
      if (name === this.failName) {
        this.failName = undefined;
        throw new Error('vault write failed');
      }
      return this.inner.setSecret(name, value, options);
    }
  }

  it('the real key is written before the record: a failed record write leaves the credential minting locally; a retry completes it', async () => {
    const failing = new FailingWrites(store);
    failing.failName = vaultLayout.cognitiveResource('speech');
    await expect(
      setCredentialUpstream(failing, speech, {
        endpoint: 'https://westus.api.cognitive.microsoft.com',
        key: REAL_SPEECH_KEY,
      }),
    ).rejects.toThrow('vault write failed');
    expect((await store.getSecret('upstream-cs-speech'))?.value).toBe(REAL_SPEECH_KEY);
    expect((await readCredential(store, speech)).upstream).toBeUndefined();

    const retried = await setCredentialUpstream(failing, speech, {
      endpoint: 'https://westus.api.cognitive.microsoft.com',
      key: REAL_SPEECH_KEY,
    });
    expect(retried.recordChanged).toBe(true);
    expect((await readCredential(store, speech)).upstream?.secretName).toBe('upstream-cs-speech');
  });

  it('a failed key write changes nothing: the record never names a secret without the key', async () => {
    const failing = new FailingWrites(store);
    failing.failName = 'upstream-cs-speech';
    await expect(
      setCredentialUpstream(failing, speech, {
        endpoint: 'https://westus.api.cognitive.microsoft.com',
        key: REAL_SPEECH_KEY,
      }),
    ).rejects.toThrow();
    expect(await store.getSecret('upstream-cs-speech')).toBeUndefined();
    expect((await readCredential(store, speech)).upstream).toBeUndefined();
  });
});

describe('at request time', () => {
  it('a record naming a reserved secret is refused before the store is read: our signing key is never sent upstream', async () => {
    const reads: string[] = [];
    const tokens = createUpstreamTokens({
      client: createUpstreamClient({ maxAttempts: 1 }),
      readSecret: async (name) => {
        reads.push(name);
        return { value: 'would-be-sent', tags: upstreamKeyTags('cognitiveResource') };
      },
      clock: () => new Date(),
    });
    try {
      const error = await tokens
        .cognitiveToken({ endpoint: 'https://westus.api.cognitive.microsoft.com', secretName: vaultLayout.signingKey })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DependencyUnavailableError);
      expect(reads).toEqual([]);
    } finally {
      await tokens.close();
    }
  });
});
