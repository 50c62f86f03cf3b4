import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { afterEach, describe, expect, it } from 'vitest';
import { startLocalAzurite, type LocalAzurite } from '../tools/localAzurite.js';

const started: LocalAzurite[] = [];
const folders: string[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((azurite) => azurite.stop()));
  await Promise.all(folders.splice(0).map((folder) => rm(folder, { recursive: true, force: true })));
});

async function start(dataDir: string, persistence: 'disk' | 'memory', port?: number): Promise<LocalAzurite> {
  const azurite = await startLocalAzurite({
    dataDir,
    persistence,
    startTimeoutMs: 45_000,
    ...(port === undefined ? {} : { port }),
  });
  started.push(azurite);
  return azurite;
}

async function rowsAfterRestart(persistence: 'disk' | 'memory'): Promise<{ rows: number; files: string[] }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sts-local-azurite-'));
  folders.push(dataDir);
  const first = await start(dataDir, persistence);
  const table = TableClient.fromConnectionString(first.connectionString, 'persistence', {
    allowInsecureConnection: true,
  });
  await table.createTable();
  await table.createEntity({ partitionKey: 'p', rowKey: 'r', note: 'kept?' });
  await first.stop();
  const second = await start(dataDir, persistence, first.port);
  const again = TableClient.fromConnectionString(second.connectionString, 'persistence', {
    allowInsecureConnection: true,
  });
  await again.createTable(); // a no-op when the table survived
  let rows = 0;
  for await (const entity of again.listEntities()) if (entity.rowKey === 'r') rows += 1;
  return { rows, files: await readdir(dataDir) };
}

describe('local Azurite persistence', () => {
  it('keeps rows across a restart on disk', async () => {
    const { rows, files } = await rowsAfterRestart('disk');
    expect(rows).toBe(1);
    expect(files.some((name) => name.includes('azurite_db_table'))).toBe(true);
  }, 120_000);

  it('keeps rows only in the process in memory, and writes no database file', async () => {
    const { rows, files } = await rowsAfterRestart('memory');
    expect(rows).toBe(0);
    expect(files.filter((name) => name !== 'azurite.log')).toEqual([]);
  }, 120_000);

  it('says which process is Azurite', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sts-local-azurite-'));
    folders.push(dataDir);
    const azurite = await start(dataDir, 'memory');
    expect(azurite.pid).toBeGreaterThan(0);
    expect(() => process.kill(azurite.pid as number, 0)).not.toThrow();
    await azurite.stop();
    expect(() => process.kill(azurite.pid as number, 0)).toThrow();
  }, 60_000);
});
