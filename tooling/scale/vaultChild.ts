import { KeyVaultTestServer, type KeyVaultServerStats } from '../doubles/keyVaultTestServer.js';
import { loadTestCertificateAuthority, loopbackCertificate } from '../doubles/testCertificates.js';

/**
 * The scale simulation's Key Vault test server in a process of its own (`tooling/scale/vaultProcess.ts`
 * starts it), so the vault's event loop is not the load generator's. Arguments: the test CA's folder and the
 * transaction budget per 10 s. Driven over the IPC channel; answers every message with its `id`.
 */

export type VaultRequest =
  | {
      readonly id: number;
      readonly type: 'seed';
      readonly secrets: readonly { name: string; value: string; contentType: string }[];
    }
  | { readonly id: number; readonly type: 'resetCounters' }
  | { readonly id: number; readonly type: 'stats' }
  | { readonly id: number; readonly type: 'close' };

export interface VaultSnapshot {
  readonly stats: KeyVaultServerStats;
  readonly names: readonly string[];
  readonly namesRead: readonly string[];
}

async function main(): Promise<void> {
  const [caDir, budget] = process.argv.slice(2);
  const ca = await loadTestCertificateAuthority(caDir);
  const server = await new KeyVaultTestServer({
    certificate: await loopbackCertificate(ca),
    budget: { transactions: Number(budget), windowSeconds: 10 },
  }).start();
  process.on('message', (message: VaultRequest) => {
    const reply = (body: object): void => void process.send?.({ id: message.id, ...body });
    switch (message.type) {
      case 'seed':
        for (const secret of message.secrets)
          server.seed(secret.name, secret.value, { contentType: secret.contentType });
        return reply({});
      case 'resetCounters':
        server.resetCounters();
        return reply({});
      case 'stats':
        return reply({
          snapshot: {
            stats: server.stats,
            names: server.names(),
            namesRead: server.namesRead(),
          } satisfies VaultSnapshot,
        });
      case 'close':
        void server.close().then(() => {
          reply({});
          process.disconnect();
        });
        return;
    }
  });
  process.send?.({ id: 0, env: server.env() });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
