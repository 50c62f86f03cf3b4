import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCertificateAuthority, TEST_CA_DIR_ENV } from '../../tooling/doubles/testCertificates.js';

/**
 * Runs once in the vitest main process, before any worker is forked: creates the test CA and makes every
 * worker trust it through `NODE_EXTRA_CA_CERTS` (Node reads that variable only at process start, so setting
 * it inside a test would be too late). A CA bundle the user already trusts stays trusted: it is copied into
 * the bundle too. The teardown deletes the CA.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'sts-test-ca-'));
  const ca = await createTestCertificateAuthority(dir);
  const previous = process.env.NODE_EXTRA_CA_CERTS;
  let inherited = '';
  if (previous) {
    try {
      inherited = await readFile(previous, 'utf8');
    } catch {
      inherited = ''; // an unreadable bundle is ignored by Node too (with a warning)
    }
  }
  const bundlePath = join(dir, 'trusted-bundle.pem');
  await writeFile(bundlePath, `${inherited.trimEnd()}${inherited ? '\n' : ''}${ca.certPem}`);
  process.env.NODE_EXTRA_CA_CERTS = bundlePath;
  process.env[TEST_CA_DIR_ENV] = dir;

  return async () => {
    if (previous === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
    else process.env.NODE_EXTRA_CA_CERTS = previous;
    delete process.env[TEST_CA_DIR_ENV];
    await rm(dir, { recursive: true, force: true });
  };
}
