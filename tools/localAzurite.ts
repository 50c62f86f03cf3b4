import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Azurite's table service from the `azurite` npm package, run as a child process on loopback: used by
 * `npm start` (data under the git-ignored `.azurite/`), by the tests (a temporary folder, a free port) and by
 * the audit CLI when the local ledger is not being served.
 */

/** The git-ignored folder where `npm start` keeps the local ledger (the project's `.azurite/`). */
export const LOCAL_AZURITE_DATA_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '.azurite');

/** Azurite's documented development account (public, identical on every machine; not a secret). */
export const AZURITE_ACCOUNT_NAME = 'devstoreaccount1';
export const AZURITE_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface LocalAzuriteOptions {
  /** Folder holding Azurite's data (created if missing). Restarting on the same folder keeps the rows. */
  readonly dataDir: string;
  /** Port to listen on; a free loopback port when omitted. */
  readonly port?: number;
  /** How long to wait for the service to answer. Default 30 s. */
  readonly startTimeoutMs?: number;
  /**
   * Run Azurite in its own process group, so a Ctrl+C in the terminal reaches only the app, which drains and
   * then stops Azurite (`npm start`). Azurite is also stopped when this process exits. Default false.
   */
  readonly detached?: boolean;
  /**
   * Where Azurite keeps its rows: `disk` (default) saves them under `dataDir`, so a restart keeps them; `memory`
   * keeps them only in the process (`--inMemoryPersistence`), so none survive a stop. Azurite on disk writes its
   * whole database to a file every 5 s, a cost that grows with every row stored and that a remote Azure table
   * never puts on the app's machine: the benchmark uses `memory`. `dataDir` then holds only the log.
   */
  readonly persistence?: 'disk' | 'memory';
}

export interface LocalAzurite {
  readonly port: number;
  /** `http://127.0.0.1:<port>/devstoreaccount1`. */
  readonly tableEndpoint: string;
  /** A connection string for `STS_LEDGER_CONNECTION_STRING`. */
  readonly connectionString: string;
  readonly dataDir: string;
  /** Azurite's process id (its CPU time is the table's cost in a benchmark). */
  readonly pid: number | undefined;
  /** Stops Azurite gracefully (it saves its data on SIGINT), force-kills it after `timeoutMs`. Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
}

/** The connection string of Azurite's table service on a loopback port. */
export function azuriteConnectionString(port: number): string {
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${AZURITE_ACCOUNT_NAME}`,
    `AccountKey=${AZURITE_ACCOUNT_KEY}`,
    `TableEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT_NAME}`,
  ].join(';');
}

/**
 * Starts Azurite's table service on 127.0.0.1 and resolves once it answers HTTP.
 *
 * @example
 * const azurite = await startLocalAzurite({ dataDir: '.azurite' });
 * process.env.STS_LEDGER_CONNECTION_STRING = azurite.connectionString;
 * // ...
 * await azurite.stop();
 */
export async function startLocalAzurite(options: LocalAzuriteOptions): Promise<LocalAzurite> {
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });
  const script = await azuriteTableScript();
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  // A free port can be taken between the probe and Azurite's bind: try a few times before giving up.
  for (let attempt = 1; ; attempt += 1) {
    const port = options.port ?? (await freeLoopbackPort());
    try {
      return await launch(script, dataDir, port, deadline, options.detached ?? false, options.persistence ?? 'disk');
    } catch (error) {
      if (options.port !== undefined || attempt >= 3 || Date.now() >= deadline) throw error;
    }
  }
}

async function launch(
  script: string,
  dataDir: string,
  port: number,
  deadline: number,
  detached: boolean,
  persistence: 'disk' | 'memory',
): Promise<LocalAzurite> {
  // Azurite's output goes to a file in its data folder, not a pipe: a pipe would break (and could crash it
  // before it saves) if this process went away first.
  const logPath = join(dataDir, 'azurite.log');
  const log = await open(logPath, 'w');
  let child: ChildProcess;
  try {
    child = spawn(
      process.execPath,
      [
        script,
        '--tableHost',
        '127.0.0.1',
        '--tablePort',
        String(port),
        ...(persistence === 'memory' ? ['--inMemoryPersistence'] : ['--location', dataDir]),
        '--silent',
        '--disableTelemetry',
        '--skipApiVersionCheck',
      ],
      { cwd: dataDir, stdio: ['ignore', log.fd, log.fd], detached, windowsHide: true },
    );
  } finally {
    await log.close(); // the child has its own copy of the descriptor
  }
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const stopOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  process.once('exit', stopOnExit);
  void exited.then(() => process.off('exit', stopOnExit));

  const stop = stopper(child, exited);
  try {
    await waitUntilAnswering(port, deadline, exited);
  } catch (error) {
    await stop(2_000);
    const output = await readFile(logPath, 'utf8').catch(() => '');
    throw new Error(
      `Azurite did not start on 127.0.0.1:${port}: ${(error as Error).message}. Output: ${output.trim().slice(-2_000)}`,
      { cause: error },
    );
  }
  return {
    port,
    dataDir,
    pid: child.pid,
    tableEndpoint: `http://127.0.0.1:${port}/${AZURITE_ACCOUNT_NAME}`,
    connectionString: azuriteConnectionString(port),
    stop,
  };
}

function stopper(child: ChildProcess, exited: Promise<number | null>): (timeoutMs?: number) => Promise<void> {
  let stopping: Promise<void> | undefined;
  return (timeoutMs = 10_000) => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // SIGINT is Azurite's graceful shutdown: it closes the server and saves its database.
      child.kill('SIGINT');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((done) => (timer = setTimeout(() => done('timeout'), timeoutMs)));
      const result = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      if (result === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    })();
    return stopping;
  };
}

/** Polls until Azurite answers on the port, the process exits, or the deadline passes. */
async function waitUntilAnswering(port: number, deadline: number, exited: Promise<number | null>): Promise<void> {
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`the process exited with code ${exitCode}`);
    if (await azuriteAnswers(port, Math.min(1_000, Math.max(1, deadline - Date.now())))) return;
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error('timed out');
}

/** True when Azurite's table service (its `Server: Azurite-Table/...` header) answers on 127.0.0.1:port. */
export function azuriteAnswers(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: '127.0.0.1', port });
    let head = '';
    const finish = (answer: boolean): void => {
      socket.destroy();
      done(answer);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
    socket.once('connect', () => {
      socket.write(
        `GET /${AZURITE_ACCOUNT_NAME}/Tables HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n') || head.length > 16_384) finish(/^server:\s*azurite-table/im.test(head));
    });
  });
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.unref();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? done(port) : fail(new Error('no port assigned'))));
    });
  });
}

/** The table service's entry script, from the `azurite-table` bin of the installed package. */
async function azuriteTableScript(): Promise<string> {
  const require = createRequire(import.meta.url);
  const manifestPath = require.resolve('azurite/package.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { bin?: Record<string, string> };
  const bin = manifest.bin?.['azurite-table'];
  if (!bin) throw new Error('the installed azurite package has no azurite-table bin');
  return resolve(dirname(manifestPath), bin);
}

/** An Azurite serving a data folder, either started by this process or found already running. */
export interface AttachedAzurite {
  readonly port: number;
  readonly connectionString: string;
  /** True when this process started it (and `release` stops it). */
  readonly startedHere: boolean;
  /** Stops Azurite when this process started it; a no-op for one found running. */
  release(): Promise<void>;
}

const ENDPOINT_FILE = 'table-endpoint.json';

/**
 * The Azurite serving `dataDir`: the one announced in `<dataDir>/table-endpoint.json` when it still answers
 * (so the audit CLI reads what `npm start` is writing), otherwise a new one, announced there until released.
 * Two Azurite processes never share one data folder this way.
 *
 * @example
 * const azurite = await attachLocalAzurite('.azurite');
 * process.env.STS_LEDGER_CONNECTION_STRING = azurite.connectionString;
 * process.once('exit', () => void azurite.release());
 */
export async function attachLocalAzurite(
  dataDir: string,
  options: Omit<LocalAzuriteOptions, 'dataDir'> = {},
): Promise<AttachedAzurite> {
  const folder = resolve(dataDir);
  const announced = await readAnnouncedPort(folder);
  if (announced !== undefined && (await azuriteAnswers(announced, 1_000))) {
    return {
      port: announced,
      connectionString: azuriteConnectionString(announced),
      startedHere: false,
      release: async () => {},
    };
  }
  const azurite = await startLocalAzurite({ ...options, dataDir: folder });
  const endpointFile = join(folder, ENDPOINT_FILE);
  await writeFile(endpointFile, `${JSON.stringify({ port: azurite.port, pid: process.pid })}\n`);
  return {
    port: azurite.port,
    connectionString: azurite.connectionString,
    startedHere: true,
    release: async () => {
      if ((await readAnnouncedPort(folder)) === azurite.port) await rm(endpointFile, { force: true });
      await azurite.stop();
    },
  };
}

async function readAnnouncedPort(folder: string): Promise<number | undefined> {
  try {
    const parsed = JSON.parse(await readFile(join(folder, ENDPOINT_FILE), 'utf8')) as { port?: unknown };
    return typeof parsed.port === 'number' && Number.isInteger(parsed.port) && parsed.port > 0 && parsed.port < 65_536
      ? parsed.port
      : undefined;
  } catch {
    return undefined;
  }
}
