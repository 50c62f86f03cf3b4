import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../shared/config.js';
import { parseRecord } from '../../shared/credentials/records.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { ensureDemoCredentials, type DemoCredentials } from '../../tools/demoCredentials.js';
import { projectRoot } from '../../tools/localHost/projectPaths.js';

/**
 * The local Functions host in a child process on a free loopback port, serving the compiled functions with
 * a temporary embedded store of demo credentials: the target of `npm run fuzz` and `npm run soak`. Its
 * stdout and stderr are collected line by line (the fuzzer scans them for leaks and errors) and its RSS can
 * be sampled from outside.
 */

export interface HostChildOptions {
  /** Settings on top of the defaults (ledger off, embedded store in a temp folder, relaxed nothing). */
  readonly env?: Readonly<Record<string, string>>;
  /** Called with every stdout / stderr line as it arrives. */
  readonly onLine?: (stream: 'stdout' | 'stderr', line: string) => void;
  /** Longest wait for "listening"; default 60 s. */
  readonly startTimeoutMs?: number;
}

export interface HostChild {
  /** e.g. `http://127.0.0.1:43125`. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly credentials: DemoCredentials;
  /** Every secret value in the temp store (keys, passwords, signing keys): what must never leak. */
  readonly secretValues: readonly string[];
  /** Undefined while running; the exit code or signal once it has exited. */
  exitStatus(): string | undefined;
  /** Resident set size of the host process in bytes (Linux `/proc`), or undefined once it has exited. */
  rssBytes(): Promise<number | undefined>;
  /** SIGTERM (graceful close), SIGKILL after `graceMs`; removes the temp store. */
  stop(graceMs?: number): Promise<void>;
}

const LISTENING = /Local Functions host listening on (http:\/\/\S+)/;

/**
 * Creates the demo credentials in a temp store and starts `tools/localHost/main.ts --port 0` on 127.0.0.1
 * with this process's Node (v22), resolving once it listens.
 *
 * @example
 * const host = await startHostChild({ env: { STS_FAILED_ATTEMPTS_PER_WINDOW: '100000' } });
 * await fetch(`${host.url}/.well-known/jwks.json`);
 * await host.stop();
 */
export async function startHostChild(options: HostChildOptions = {}): Promise<HostChild> {
  const directory = await mkdtemp(join(tmpdir(), 'sts-fuzz-host-'));
  const storePath = join(directory, 'secrets.json');
  let child: ChildProcess | undefined;
  try {
    const bootstrap = await ensureDemoCredentials(
      loadConfig({ STS_LOCAL_STORE_PATH: storePath, STS_LEDGER_MODE: 'off' }),
    );
    if (bootstrap.outcome !== 'created') throw new Error(`demo credentials not created (${bootstrap.outcome})`);
    const secretValues = await allSecretValues(storePath);

    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      // Explicit values, so a developer's local.settings.json cannot point the target elsewhere.
      STS_ISSUER: 'http://127.0.0.1/',
      STS_LOCAL_STORE_PATH: storePath,
      KEY_VAULT_URL: '',
      STS_LEDGER_MODE: 'off',
      STS_LEDGER_CONNECTION_STRING: '',
      STS_LEDGER_TABLE_URL: '',
      ...options.env,
    };
    child = spawn(
      process.execPath,
      ['--import', 'tsx', 'tools/localHost/main.ts', '--port', '0', '--host', '127.0.0.1'],
      {
        cwd: projectRoot,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const running = child;
    let exit: string | undefined;
    const exited = new Promise<void>((resolve) => {
      running.once('exit', (code, signal) => {
        exit = signal ? `signal ${signal}` : `exit code ${code}`;
        resolve();
      });
    });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the local host did not start listening in time')),
        options.startTimeoutMs ?? 60_000,
      );
      const early: string[] = [];
      forEachLine(running, (stream, line) => {
        options.onLine?.(stream, line);
        if (early.length < 50) early.push(line);
        const match = stream === 'stdout' ? LISTENING.exec(line) : null;
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`the local host exited (${exit}) before listening:\n${early.join('\n')}`));
      });
    });
    const pid = running.pid ?? 0;

    return {
      url,
      port: Number(new URL(url).port),
      pid,
      credentials: bootstrap.credentials,
      secretValues,
      exitStatus: () => exit,
      rssBytes: async () => (exit === undefined ? readRss(pid) : undefined),
      async stop(graceMs = 15_000) {
        if (exit === undefined) {
          running.kill('SIGTERM');
          const killer = setTimeout(() => running.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(killer);
        }
        await rm(directory, { recursive: true, force: true });
      },
    };
  } catch (error) {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
}

/** Every string value stored as a key, password or signing key in the store file, each version included. */
async function allSecretValues(storePath: string): Promise<string[]> {
  const store = new FileSecretStore(storePath);
  const values = new Set<string>();
  for (const name of await store.listSecretNames()) {
    for (const version of await store.getSecretVersions(name)) {
      collectSecrets(version.value, values);
    }
  }
  return [...values].filter((value) => value.length >= 16);
}

/** Keys of records, SWT signing keys and private JWK members: the values of a stored secret that are secret. */
function collectSecrets(stored: string, into: Set<string>): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch {
    into.add(stored);
    return;
  }
  for (const kind of ['mixedRealityAccount', 'cognitiveResource', 'wrapIssuer', 'wrapNamespace'] as const) {
    const record = parseRecord(stored, kind) as { keys?: readonly string[]; signingKey?: string } | undefined;
    for (const key of record?.keys ?? []) into.add(key);
    if (record?.signingKey) into.add(record.signingKey);
  }
  if (parsed && typeof parsed === 'object') {
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) {
      const value = (parsed as Record<string, unknown>)[member];
      if (typeof value === 'string') into.add(value);
    }
  }
}

function forEachLine(child: ChildProcess, onLine: (stream: 'stdout' | 'stderr', line: string) => void): void {
  for (const stream of ['stdout', 'stderr'] as const) {
    let pending = '';
    child[stream]?.setEncoding('utf8');
    child[stream]?.on('data', (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        onLine(stream, pending.slice(0, newline).replace(/\r$/, ''));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
    });
    child[stream]?.on('end', () => {
      if (pending) onLine(stream, pending);
      pending = '';
    });
  }
}

async function readRss(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}
