import { randomUUID, X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { generate } from 'selfsigned';
import { tlsFolder } from './projectPaths.js';

/** The key pair `--https` serves with, and where the certificate is, so a user can trust it. */
export interface LocalTlsCertificate {
  readonly key: string;
  readonly cert: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** True when this call generated it (first use, or the previous one had expired). */
  readonly created: boolean;
}

const NAMES = { dns: ['localhost'], ips: ['127.0.0.1', '::1'] } as const;
const VALIDITY_DAYS = 365;
/** Regenerate a little before expiry, so a long-running host never serves an expired certificate. */
const RENEW_BEFORE_MS = 7 * 24 * 3600 * 1000;

/**
 * Returns the local host's self-signed TLS certificate for `localhost`, `127.0.0.1` and `::1`, creating it on
 * first use under `.sts/tls/` (git-ignored) and reusing it afterwards. Creation is atomic (a complete folder
 * is renamed into place), so concurrent first starts agree on one key pair.
 *
 * Trust it with `curl --cacert .sts/tls/cert.pem` or `NODE_EXTRA_CA_CERTS=.sts/tls/cert.pem`.
 *
 * @example
 * const { cert } = await ensureLocalTlsCertificate();
 * new Agent({ connect: { ca: cert } });
 */
export async function ensureLocalTlsCertificate(
  folder: string = tlsFolder,
  now: Date = new Date(),
): Promise<LocalTlsCertificate> {
  const existing = await readCertificate(folder);
  if (existing && isCurrent(existing.cert, now)) return { ...existing, created: false };

  const staging = `${folder}.${process.pid}.${randomUUID()}.tmp`;
  await mkdir(staging, { recursive: true, mode: 0o700 });
  try {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(now.getTime() - 60_000),
      notAfterDate: new Date(now.getTime() + VALIDITY_DAYS * 24 * 3600 * 1000),
      extensions: [
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            ...NAMES.dns.map((value) => ({ type: 2 as const, value })),
            ...NAMES.ips.map((ip) => ({ type: 7 as const, ip })),
          ],
        },
      ],
    });
    await writeFile(join(staging, 'key.pem'), pems.private, { mode: 0o600 });
    await writeFile(join(staging, 'cert.pem'), pems.cert, { mode: 0o644 });
    await mkdir(dirname(folder), { recursive: true, mode: 0o700 });
    if (existing) await rename(folder, `${folder}.expired-${now.getTime()}`).catch(() => undefined);
    try {
      await rename(staging, folder);
    } catch (error) {
      // Another process won the race (the folder exists and is not empty): use its certificate.
      const winner = await readCertificate(folder);
      if (winner) return { ...winner, created: false };
      throw error;
    }
    return {
      key: pems.private,
      cert: pems.cert,
      certPath: join(folder, 'cert.pem'),
      keyPath: join(folder, 'key.pem'),
      created: true,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function readCertificate(folder: string): Promise<Omit<LocalTlsCertificate, 'created'> | undefined> {
  const certPath = join(folder, 'cert.pem');
  const keyPath = join(folder, 'key.pem');
  try {
    const [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    return { cert, key, certPath, keyPath };
  } catch {
    return undefined;
  }
}

function isCurrent(certPem: string, now: Date): boolean {
  try {
    const cert = new X509Certificate(certPem);
    return new Date(cert.validTo).getTime() - RENEW_BEFORE_MS > now.getTime() && new Date(cert.validFrom) <= now;
  } catch {
    return false;
  }
}
