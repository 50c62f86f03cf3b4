import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../tools/localHost/projectPaths.js';
import type { VaultRequest, VaultSnapshot } from './vaultChild.js';

type Pending = (reply: Record<string, unknown>) => void;
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/**
 * The Key Vault test server of the scale simulation, run in a child process (`vaultChild.ts`) so that the load
 * generator's busy event loop never delays the vault's answers.
 *
 * @example
 * const vault = await startVaultProcess(ca.dir, 1_000);
 * await vault.seed([{ name: 'mr-account-…', value: '{…}', contentType: 'application/json' }]);
 * const { stats } = await vault.snapshot();
 * await vault.close();
 */
export interface VaultProcess {
  /** `KEY_VAULT_URL`, `IDENTITY_ENDPOINT`, `IDENTITY_HEADER` for the app instances. */
  readonly env: Readonly<Record<string, string>>;
  seed(secrets: readonly { name: string; value: string; contentType: string }[]): Promise<void>;
  resetCounters(): Promise<void>;
  snapshot(): Promise<VaultSnapshot>;
  close(): Promise<void>;
}

export async function startVaultProcess(caDir: string, budgetPer10s: number): Promise<VaultProcess> {
  const child: ChildProcess = fork(
    join(projectRoot, 'tooling', 'scale', 'vaultChild.ts'),
    [caDir, String(budgetPer10s)],
    {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const pending = new Map<number, Pending>();
  let nextId = 1;
  const ready = new Promise<Record<string, string>>((resolve, reject) => {
    pending.set(0, (reply) => resolve(reply.env as Record<string, string>));
    child.once('exit', (code) => reject(new Error(`the vault process exited (${code}) before it was ready`)));
  });
  child.on('message', (reply: Record<string, unknown>) => {
    const id = reply.id as number;
    pending.get(id)?.(reply);
    pending.delete(id);
  });
  const ask = (request: WithoutId<VaultRequest>): Promise<Record<string, unknown>> =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      child.send({ ...request, id });
    });
  const env = await ready;
  return {
    env,
    seed: async (secrets) => void (await ask({ type: 'seed', secrets })),
    resetCounters: async () => void (await ask({ type: 'resetCounters' })),
    snapshot: async () => (await ask({ type: 'stats' })).snapshot as VaultSnapshot,
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      if (child.connected) await ask({ type: 'close' });
      await exited;
      clearTimeout(timer);
    },
  };
}
