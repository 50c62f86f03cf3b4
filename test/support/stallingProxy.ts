import { connect, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy on a free loopback port in front of a service (Azurite), that can freeze or slow the traffic:
 *
 * - `freeze()` holds every byte in both directions, on open connections and new ones, until `thaw()`; what
 *   a client sent meanwhile is then delivered, even if that client has given up and closed. This is what a
 *   stopped process (SIGSTOP) looks like to its clients: the kernel keeps accepting and buffering, and the
 *   requests are served late when it resumes.
 * - `slow(ms)` delays every chunk by `ms` in each direction (a slow table: a request is applied `ms` after it
 *   was sent, and its answer arrives `ms` after that).
 *
 * @example
 * const proxy = await startStallingProxy(azurite.port);
 * proxy.freeze(); // ... proxy.thaw();
 * await proxy.close();
 */
export interface StallingProxy {
  readonly port: number;
  freeze(): void;
  thaw(): void;
  slow(delayMs: number): void;
  close(): Promise<void>;
}

/** How long an upstream connection is kept after its client left and everything was delivered. */
const LINGER_MS = 5_000;

interface Chunk {
  readonly data: Buffer;
  readonly releaseAt: number;
}

/** One direction of one connection: chunks wait here while frozen or until their delay is over. */
class Relay {
  private readonly queue: Chunk[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly to: Socket,
    private readonly state: { frozen: boolean; delayMs: number },
    private readonly onDrained: () => void,
  ) {}

  push(data: Buffer): void {
    this.queue.push({ data, releaseAt: Date.now() + this.state.delayMs });
    this.flush();
  }

  end(): void {
    this.ended = true;
    this.flush();
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.state.frozen) return;
    const now = Date.now();
    while (this.queue.length > 0) {
      const next = this.queue[0] as Chunk;
      if (next.releaseAt > now) {
        this.timer = setTimeout(() => this.flush(), next.releaseAt - now);
        return;
      }
      this.queue.shift();
      if (!this.to.destroyed) this.to.write(next.data);
    }
    if (this.ended) this.onDrained();
  }
}

export async function startStallingProxy(targetPort: number): Promise<StallingProxy> {
  const state = { frozen: false, delayMs: 0 };
  const relays = new Set<Relay>();
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };

  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
    track(client);
    track(upstream);
    // The client's bytes reach the service even after the client has gone (as with a stopped process).
    const toService = new Relay(upstream, state, () => {
      setTimeout(() => upstream.destroy(), LINGER_MS).unref();
    });
    const toClient = new Relay(client, state, () => client.end());
    relays.add(toService);
    relays.add(toClient);
    client.on('data', (data: Buffer) => toService.push(data));
    client.on('end', () => toService.end());
    client.on('close', () => toService.end());
    upstream.on('data', (data: Buffer) => toClient.push(data));
    upstream.on('end', () => toClient.end());
    upstream.on('close', () => {
      relays.delete(toService);
      relays.delete(toClient);
      client.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no port');

  const flushAll = (): void => {
    for (const relay of relays) relay.flush();
  };
  return {
    port: address.port,
    freeze() {
      state.frozen = true;
    },
    thaw() {
      state.frozen = false;
      flushAll();
    },
    slow(delayMs) {
      state.delayMs = delayMs;
      flushAll();
    },
    async close() {
      state.frozen = false;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
