import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../tools/localHost/projectPaths.js';

/**
 * The benchmark's processes: every server, load generator and measurement runs in its own child of the pinned
 * Node (the one running this script), talking to the orchestrator over an IPC channel with a tiny
 * request/answer protocol (`{ id, type, ... }` → `{ id, ok, result | error }`, see `parentChannel.ts`).
 */

export interface BenchChildOptions {
  /** Script under `tooling/bench/`, run through tsx (`node --import tsx`). */
  readonly script: string;
  readonly args?: readonly string[];
  /** Node options placed before the script (e.g. `--cpu-prof`, `--expose-gc`). */
  readonly execArgv?: readonly string[];
  /** The child's whole environment (nothing is inherited implicitly). */
  readonly env: NodeJS.ProcessEnv;
  /** Longest wait for the child's first `ready` message. Default 60 s. */
  readonly readyTimeoutMs?: number;
}

export interface BenchChild<Ready> {
  readonly pid: number;
  /** What the child announced when it was ready (e.g. its URL). */
  readonly ready: Ready;
  /** Sends a request and resolves with the child's answer (rejects with its error message). */
  request<T>(type: string, payload?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Asks the child to stop (`stop` request), waits for it to exit, kills it after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

interface Answer {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
}

/** Every child started and not yet stopped, so an interrupted run can still clean up (see `stopAllChildren`). */
const running = new Set<BenchChild<unknown>>();

/**
 * Starts `tooling/bench/<script>` with the pinned Node and tsx, and resolves once it sends `{ type: 'ready' }`.
 *
 * @example
 * const host = await startBenchChild<{ url: string }>({ script: 'serverChild.ts', args: ['app'], env });
 * const usage = await host.request<ProcessUsage>('usage');
 * await host.stop();
 */
export async function startBenchChild<Ready>(options: BenchChildOptions): Promise<BenchChild<Ready>> {
  const child = spawn(
    process.execPath,
    [
      ...(options.execArgv ?? []),
      '--import',
      'tsx',
      join(projectRoot, 'tooling', 'bench', options.script),
      ...(options.args ?? []),
    ],
    { cwd: projectRoot, env: options.env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'], windowsHide: true },
  );
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-4_000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const describe = (): string => `${options.script} ${(options.args ?? []).join(' ')}`.trim();

  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${describe()}: not ready within ${options.readyTimeoutMs ?? 60_000} ms. ${stderrTail.trim()}`));
    }, options.readyTimeoutMs ?? 60_000);
    child.once('message', (message: { type?: string; ready?: Ready; error?: string }) => {
      clearTimeout(timer);
      if (message.type === 'ready') resolve(message.ready as Ready);
      else reject(new Error(`${describe()}: ${message.error ?? 'failed to start'}`));
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${describe()} exited with code ${code} before it was ready. ${stderrTail.trim()}`));
    });
  });

  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  child.on('message', (message: Answer) => {
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.ok) waiter.resolve(message.result);
    else waiter.reject(new Error(`${describe()}: ${message.error ?? 'request failed'}`));
  });
  void exited.then((code) => {
    for (const waiter of pending.values())
      waiter.reject(new Error(`${describe()} exited (code ${code}). ${stderrTail.trim()}`));
    pending.clear();
  });

  let stopping: Promise<void> | undefined;
  const handle: BenchChild<Ready> = {
    pid: child.pid ?? -1,
    ready,
    request<T>(type: string, payload: Record<string, unknown> = {}, timeoutMs = 300_000): Promise<T> {
      if (child.exitCode !== null || child.signalCode !== null)
        return Promise.reject(new Error(`${describe()} is not running`));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${describe()}: no answer to ${type} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value as T);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
        child.send({ id, type, ...payload });
      });
    },
    stop(timeoutMs = 15_000) {
      stopping ??= (async () => {
        running.delete(handle);
        if (child.exitCode !== null || child.signalCode !== null) return;
        if (child.connected) child.send({ id: 0, type: 'stop' });
        await stopWithin(child, exited, timeoutMs);
      })();
      return stopping;
    },
  };
  running.add(handle);
  return handle;
}

/** Stops every child still running (on an error or Ctrl+C), in parallel, each bounded. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => child.stop(5_000).catch(() => undefined)));
}

async function stopWithin(child: ChildProcess, exited: Promise<number | null>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const result = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}
