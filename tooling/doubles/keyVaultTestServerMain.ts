import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startKeyVaultTestServer } from './keyVaultTestServer.js';
import {
  createTestCertificateAuthority,
  loadTestCertificateAuthority,
  loopbackCertificate,
  type TestCertificateAuthority,
} from './testCertificates.js';

/**
 * `npx tsx tooling/doubles/keyVaultTestServerMain.ts [--vault-port N] [--identity-port N] [--latency-ms N]`
 *
 * Runs the Key Vault test server for local runs: no Azure needed to try the Key Vault path (managed
 * identity, challenge, cache) with `npm start` and the admin CLI. Its CA lives in `.sts/test-ca/` (created
 * once, git-ignored) and is trusted the way any private CA is: `NODE_EXTRA_CA_CERTS`, set before a process
 * starts. The settings to use are printed and written to `.sts/keyvault-test.env`. The vault is in memory:
 * it starts empty on every run.
 */

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const STATE_DIR = join(REPO_ROOT, '.sts');
const CA_DIR = join(STATE_DIR, 'test-ca');
const ENV_FILE = join(STATE_DIR, 'keyvault-test.env');

async function certificateAuthority(): Promise<TestCertificateAuthority> {
  try {
    const ca = await loadTestCertificateAuthority(CA_DIR);
    const validTo = new Date(new X509Certificate(ca.certPem).validTo).getTime();
    if (validTo - Date.now() > 86_400_000) return ca;
  } catch {
    // none yet, or unreadable: make a new one
  }
  await mkdir(STATE_DIR, { recursive: true, mode: 0o700 });
  return createTestCertificateAuthority(CA_DIR);
}

function port(value: string | undefined, flag: string): number {
  if (value === undefined) return 0;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65_535) throw new Error(`${flag} must be a port number`);
  return parsed;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'vault-port': { type: 'string' },
      'identity-port': { type: 'string' },
      'latency-ms': { type: 'string' },
    },
    strict: true,
  });
  const ca = await certificateAuthority();
  const server = await startKeyVaultTestServer({
    vaultPort: port(values['vault-port'], '--vault-port'),
    identityPort: port(values['identity-port'], '--identity-port'),
    certificate: await loopbackCertificate(ca),
  });
  server.faults.latencyMs = Number(values['latency-ms'] ?? 0) || 0;

  const env = { NODE_EXTRA_CA_CERTS: ca.certPath, ...server.env() };
  await writeFile(
    ENV_FILE,
    `${Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
    { mode: 0o600 },
  );
  const trusted =
    process.env.NODE_EXTRA_CA_CERTS &&
    (await readFile(process.env.NODE_EXTRA_CA_CERTS, 'utf8').catch(() => '')).includes(ca.certPem.trim());
  console.log(
    [
      'Key Vault test server (in memory, empty at start)',
      `  vault              ${server.vaultUrl}`,
      `  identity endpoint  ${server.identityEndpoint}`,
      '',
      `In another terminal (settings also in ${ENV_FILE}):`,
      ...Object.entries(env).map(([k, v]) => `  export ${k}=${v}`),
      '  npm run sts -- rotate-signing-key          # the JWT signing key',
      '  npm run sts -- create-account --domain eastus2.mixedreality.azure.com',
      '  npm start',
      trusted
        ? ''
        : '\n(NODE_EXTRA_CA_CERTS is read when a process starts: export it before starting the app or the CLI.)',
      'Ctrl+C stops the server.',
    ].join('\n'),
  );

  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(`keyVaultTestServer: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
