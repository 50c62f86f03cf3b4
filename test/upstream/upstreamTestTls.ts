import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTestCertificateAuthority,
  loopbackCertificate,
  TEST_CA_DIR_ENV,
  type TlsKeyPair,
} from '../../tooling/doubles/testCertificates.js';

/** TLS material for the upstream stub, and how the client under test trusts it. */
export interface UpstreamTestTls {
  readonly server: TlsKeyPair;
  /**
   * `undefined` when the vitest global setup's CA is trusted through `NODE_EXTRA_CA_CERTS` (the standard
   * way, as in production: the client gets no extra option). Otherwise the CA to pass as `testTrustedCa`.
   */
  readonly clientCa: string | undefined;
  /** Path of that CA's PEM file, for `NODE_EXTRA_CA_CERTS` of a child process (own CA only). */
  readonly caPath?: string;
  readonly dispose: () => Promise<void>;
}

/** A loopback certificate signed by the shared test CA when it is trusted, else by a CA of our own. */
export async function upstreamTestTls(): Promise<UpstreamTestTls> {
  if (process.env[TEST_CA_DIR_ENV] && process.env.NODE_EXTRA_CA_CERTS) {
    return { server: await loopbackCertificate(), clientCa: undefined, dispose: async () => {} };
  }
  return untrustedTls();
}

/** A certificate from a fresh CA that nothing trusts (its PEM is returned for tests that opt in). */
export async function untrustedTls(): Promise<UpstreamTestTls> {
  const dir = await mkdtemp(join(tmpdir(), 'sts-upstream-ca-'));
  const ca = await createTestCertificateAuthority(dir);
  const server = await loopbackCertificate(ca);
  return {
    server,
    clientCa: ca.certPem,
    caPath: ca.certPath,
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
