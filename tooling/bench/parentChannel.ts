/**
 * The child side of the benchmark's IPC protocol (see `benchChild.ts`): announce readiness, answer requests
 * one handler per type, and exit cleanly on `stop` (so `--cpu-prof` and friends can write their files).
 */

export interface ParentRequest {
  readonly id: number;
  readonly type: string;
  readonly [field: string]: unknown;
}

export type RequestHandler = (request: ParentRequest) => unknown;

/**
 * Tells the parent this child is ready (with `ready` as its announcement), then answers its requests with
 * `handlers[type]`. `onStop` runs before the process exits on a `stop` request or a lost parent.
 */
export function answerParent(
  ready: unknown,
  handlers: Readonly<Record<string, RequestHandler>>,
  onStop?: () => Promise<void> | void,
): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('this script is a benchmark child: start it through `npm run bench`');
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      await onStop?.();
    } finally {
      process.exit(0);
    }
  };
  process.on('disconnect', () => void stop());
  process.on('message', (message: ParentRequest) => {
    if (message.type === 'stop') {
      void stop();
      return;
    }
    const handler = handlers[message.type];
    if (!handler) {
      send({ id: message.id, ok: false, error: `unknown request ${message.type}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message))
      .then(
        (result) => send({ id: message.id, ok: true, result }),
        (error: unknown) =>
          send({ id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
      );
  });
  send({ type: 'ready', ready });
}

/** Reports a failed start to the parent (instead of `ready`) and exits. */
export function failStart(error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  process.send?.({ type: 'failed', error: message });
  console.error(message);
  process.exit(1);
}

/** CPU time and memory of this process, for CPU-per-request figures (`process.cpuUsage` covers every thread). */
export interface ProcessUsage {
  /** User + system CPU time since start, µs. */
  readonly cpuMicros: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

export function processUsage(): ProcessUsage {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return { cpuMicros: cpu.user + cpu.system, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed };
}
