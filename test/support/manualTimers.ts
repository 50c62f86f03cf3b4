import type { HostTimers } from '../../tools/localHost/localHost.js';

/**
 * Timers that fire only when a test says so, for the local host's `timers` option: a timeout test waits until
 * the host has scheduled its timer, fires it, and checks the answer, with no real wait and no dependence on how
 * fast the machine is.
 */
export interface ManualTimers extends HostTimers {
  /** Resolves once a timer of `ms` is pending (at once if one already is). */
  scheduled(ms: number): Promise<void>;
  /** Runs every pending timer of `ms`; returns how many ran. */
  fire(ms: number): number;
}

export function manualTimers(): ManualTimers {
  let next = 0;
  const pending = new Map<number, { ms: number; callback: () => void }>();
  const waiting: { ms: number; resolve: () => void }[] = [];
  return {
    setTimeout(callback, ms) {
      const handle = ++next;
      pending.set(handle, { ms, callback });
      for (const waiter of waiting.filter((w) => w.ms === ms)) {
        waiting.splice(waiting.indexOf(waiter), 1);
        waiter.resolve();
      }
      return handle;
    },
    clearTimeout(handle) {
      pending.delete(handle as number);
    },
    scheduled(ms) {
      if ([...pending.values()].some((timer) => timer.ms === ms)) return Promise.resolve();
      return new Promise((resolve) => waiting.push({ ms, resolve }));
    },
    fire(ms) {
      const due = [...pending.entries()].filter(([, timer]) => timer.ms === ms);
      for (const [handle, timer] of due) {
        pending.delete(handle);
        timer.callback();
      }
      return due.length;
    },
  };
}
