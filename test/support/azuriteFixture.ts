import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalAzurite, type LocalAzurite } from '../../tools/localAzurite.js';

/**
 * A real Azurite table service for one test file: its own temporary data folder and a free loopback port.
 * `stop()` then `restart()` keep the folder and the port, so a client built from `connectionString` reconnects
 * to the same data (Azurite saves its data on a graceful stop, which is what `stop()` does).
 */
export interface AzuriteFixture {
  readonly port: number;
  readonly connectionString: string;
  readonly dataDir: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Stops Azurite and deletes the data folder. */
  dispose(): Promise<void>;
}

/**
 * Starts Azurite for a test file.
 *
 * @example
 * let azurite: AzuriteFixture;
 * beforeAll(async () => { azurite = await startAzuriteFixture(); });
 * afterAll(() => azurite.dispose());
 */
export async function startAzuriteFixture(): Promise<AzuriteFixture> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sts-azurite-'));
  let current: LocalAzurite | undefined = await startLocalAzurite({ dataDir, startTimeoutMs: 45_000 });
  const { port, connectionString } = current;
  return {
    port,
    connectionString,
    dataDir,
    async stop() {
      await current?.stop();
      current = undefined;
    },
    async restart() {
      await current?.stop();
      current = await startLocalAzurite({ dataDir, port, startTimeoutMs: 45_000 });
    },
    async dispose() {
      await current?.stop();
      current = undefined;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
