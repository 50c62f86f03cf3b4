import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generate } from 'selfsigned';

/**
 * A throw-away certificate authority for loopback HTTPS servers in tests and local runs (the Key Vault test
 * server, and any other HTTPS test double). Its certificate is trusted the way a user would trust a private
 * CA: through `NODE_EXTRA_CA_CERTS`, which Node reads only when a process starts. `test/support/globalSetup.ts`
 * creates the CA before vitest forks its workers; `tooling/doubles/keyVaultTestServerMain.ts` creates one under `.sts/`.
 */

/** Environment variable naming the folder that holds the CA (`ca.pem`, `ca-key.pem`). */
export const TEST_CA_DIR_ENV = 'STS_TEST_CA_DIR';

export interface TestCertificateAuthority {
  readonly dir: string;
  /** Path of the CA certificate (PEM): what `NODE_EXTRA_CA_CERTS` must contain. */
  readonly certPath: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface TlsKeyPair {
  readonly key: string;
  readonly cert: string;
}

const CA_CERT_FILE = 'ca.pem';
const CA_KEY_FILE = 'ca-key.pem';
const DAY_MS = 86_400_000;

/**
 * Creates a new CA (EC P-256, valid 30 days) and writes it to `dir` (key file mode 0600).
 *
 * @example
 * const ca = await createTestCertificateAuthority(await mkdtemp(join(tmpdir(), 'ca-')));
 * process.env.NODE_EXTRA_CA_CERTS = ca.certPath; // for processes started after this line
 */
export async function createTestCertificateAuthority(dir: string): Promise<TestCertificateAuthority> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const generated = await generate([{ name: 'commonName', value: 'STS test CA (loopback only)' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate: new Date(notBeforeDate.getTime() + 30 * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certPath = join(dir, CA_CERT_FILE);
  await writeFile(certPath, generated.cert);
  await writeFile(join(dir, CA_KEY_FILE), generated.private, { mode: 0o600 });
  await chmod(join(dir, CA_KEY_FILE), 0o600);
  return { dir, certPath, certPem: generated.cert, keyPem: generated.private };
}

/** Reads the CA from `dir` (default: `$STS_TEST_CA_DIR`, set by the vitest global setup). */
export async function loadTestCertificateAuthority(
  dir = process.env[TEST_CA_DIR_ENV],
): Promise<TestCertificateAuthority> {
  if (!dir) {
    throw new Error(
      `${TEST_CA_DIR_ENV} is not set: run tests through vitest (test/support/globalSetup.ts creates the CA) ` +
        'or start tooling/doubles/keyVaultTestServerMain.ts, which creates one under .sts/test-ca/',
    );
  }
  const certPath = join(dir, CA_CERT_FILE);
  const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(join(dir, CA_KEY_FILE), 'utf8')]);
  return { dir, certPath, certPem, keyPem };
}

const leafCache = new Map<string, Promise<TlsKeyPair>>();

/**
 * A server certificate for `127.0.0.1`, `::1` and `localhost`, signed by the test CA (one per CA and process).
 * Use it with `https.createServer(await loopbackCertificate())`; clients trust it through `NODE_EXTRA_CA_CERTS`.
 *
 * @example
 * const server = createServer(await loopbackCertificate(), handler).listen(0, '127.0.0.1');
 */
export function loopbackCertificate(ca?: TestCertificateAuthority): Promise<TlsKeyPair> {
  const cacheKey = ca?.dir ?? process.env[TEST_CA_DIR_ENV] ?? '';
  let pending = leafCache.get(cacheKey);
  if (!pending) {
    pending = issueLoopbackCertificate(ca);
    leafCache.set(cacheKey, pending);
    pending.catch(() => leafCache.delete(cacheKey));
  }
  return pending;
}

async function issueLoopbackCertificate(given?: TestCertificateAuthority): Promise<TlsKeyPair> {
  const ca = given ?? (await loadTestCertificateAuthority());
  const notBeforeDate = new Date(Date.now() - 60_000);
  const generated = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate: new Date(notBeforeDate.getTime() + 7 * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
    ca: { key: ca.keyPem, cert: ca.certPem },
  });
  return { key: generated.private, cert: generated.cert };
}
