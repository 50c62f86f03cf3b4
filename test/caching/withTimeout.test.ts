import { describe, expect, it } from 'vitest';
import { withTimeout } from '../../shared/outbound/withTimeout.js';

/** The one timeout helper: the work sees the signal, and the wait ends even when the work ignores it. */

class Late extends Error {}

describe('withTimeout', () => {
  it('passes the result of work that finishes', async () => {
    await expect(
      withTimeout(
        async () => 'done',
        1_000,
        () => new Late(),
      ),
    ).resolves.toBe('done');
  });

  it('aborts the signal the work got and rejects with the timeout error, also when the work ignores the signal', async () => {
    let seen: AbortSignal | undefined;
    const ignoring = withTimeout(
      (signal) => ((seen = signal), new Promise<never>(() => undefined)),
      5,
      () => new Late('late'),
    );
    await expect(ignoring).rejects.toBeInstanceOf(Late);
    expect(seen?.aborted).toBe(true);
  });

  it('a caller abort rejects with the caller reason, not the timeout error', async () => {
    const caller = new AbortController();
    const waiting = withTimeout(
      () => new Promise<never>(() => undefined),
      60_000,
      () => new Late(),
      caller.signal,
    );
    caller.abort(new Error('client went away'));
    await expect(waiting).rejects.toThrow('client went away');
  });

  it('an error of the work itself passes through unchanged', async () => {
    const failing = withTimeout(
      async () => Promise.reject(new Error('vault said 403')),
      60_000,
      () => new Late(),
    );
    await expect(failing).rejects.toThrow('vault said 403');
  });
});
