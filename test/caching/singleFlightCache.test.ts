import { beforeEach, describe, expect, it } from 'vitest';
import { SingleFlightCache, type Cached } from '../../shared/caching/singleFlightCache.js';

/** The shared cache building block on its own, with a hand-driven clock. */

let nowMs: number;
beforeEach(() => {
  nowMs = 1_000_000;
});

const cache = (maxEntries = 10) => new SingleFlightCache<string, string>({ maxEntries, now: () => nowMs });
const lasting = (value: string, freshMs = 1_000, staleMs = 5_000): Cached<string> => ({
  value,
  freshUntilMs: nowMs + freshMs,
  staleUntilMs: nowMs + staleMs,
});

/** A loader that counts its calls and answers what `next` says. */
function countingLoader(next: () => Promise<Cached<string>>) {
  const loader = Object.assign(
    async () => {
      loader.calls += 1;
      return next();
    },
    { calls: 0 },
  );
  return loader;
}

describe('SingleFlightCache', () => {
  it('100 concurrent callers of a cold key share one load and all get its value', async () => {
    const values = cache();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const load = countingLoader(async () => {
      await gate;
      return lasting('v1');
    });
    const callers = Array.from({ length: 100 }, () => values.get('k', load));
    expect(values.loading('k')).toBe(true);
    release();
    expect(new Set(await Promise.all(callers))).toEqual(new Set(['v1']));
    expect(load.calls).toBe(1);
    expect(values.loading('k')).toBe(false);
  });

  it('serves a fresh value without loading, and loads again once it is no longer fresh', async () => {
    const values = cache();
    let n = 0;
    const load = countingLoader(async () => lasting(`v${++n}`));
    expect(await values.get('k', load)).toBe('v1');
    nowMs += 999;
    expect(await values.get('k', load)).toBe('v1');
    nowMs += 1;
    expect(await values.get('k', load)).toBe('v2');
    expect(load.calls).toBe(2);
  });

  it('a failed load serves the held value while it is usable, tries again on the next call, and fails after', async () => {
    const values = cache();
    await values.get('k', async () => lasting('v1'));
    nowMs += 2_000; // stale, still usable
    const failing = countingLoader(async () => {
      throw new Error('vault down');
    });
    expect(await values.get('k', failing)).toBe('v1');
    expect(await values.get('k', failing)).toBe('v1');
    expect(failing.calls).toBe(2);
    nowMs += 3_000; // past staleUntilMs
    await expect(values.get('k', failing)).rejects.toThrow('vault down');
    expect(values.peek('k')).toBeUndefined();
  });

  it('a failed cold load throws the loader error to every caller that shared it', async () => {
    const values = cache();
    const failing = countingLoader(async () => {
      throw new Error('unreachable');
    });
    const results = await Promise.allSettled([values.get('k', failing), values.get('k', failing)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(failing.calls).toBe(1);
    expect(values.size).toBe(0);
  });

  it('holds at most maxEntries values, dropping the least recently used', async () => {
    const values = cache(2);
    await values.get('a', async () => lasting('A'));
    await values.get('b', async () => lasting('B'));
    values.peek('a'); // a is now more recent than b
    await values.get('c', async () => lasting('C'));
    expect(values.size).toBe(2);
    expect(values.peek('b')).toBeUndefined();
    expect(values.peek('a')?.value).toBe('A');
    expect(values.peek('c')?.value).toBe('C');
  });

  it('refresh loads even while the value is fresh, and joins a load already running', async () => {
    const values = cache();
    let n = 0;
    const load = countingLoader(async () => lasting(`v${++n}`));
    await values.get('k', load);
    const [first, second] = await Promise.all([values.refresh('k', load), values.refresh('k', load)]);
    expect([first, second]).toEqual(['v2', 'v2']);
    expect(load.calls).toBe(2);
  });

  it('a loader that throws synchronously is a rejected load, not an exception at the call site', async () => {
    const values = cache();
    const load = (): Promise<Cached<string>> => {
      throw new Error('bad input');
    };
    await expect(values.get('k', load)).rejects.toThrow('bad input');
    expect(values.loading('k')).toBe(false);
  });

  it('tells onEvict of each value the bound drops, not of one deleted or dropped on sight past its deadline', async () => {
    const dropped: string[] = [];
    const values = new SingleFlightCache<string, string>({
      maxEntries: 2,
      now: () => nowMs,
      onEvict: (key, held) => dropped.push(`${key}=${held.value}`),
    });
    await values.get('a', async () => lasting('A'));
    await values.get('b', async () => lasting('B', 1_000, 1_000));
    values.delete('a');
    await values.get('c', async () => lasting('C'));
    expect(dropped).toEqual([]);
    await values.get('d', async () => lasting('D'));
    expect(dropped).toEqual(['b=B']);
    nowMs += 5_000; // c and d are past their stale deadline
    expect(values.peek('c')).toBeUndefined(); // seen: dropped on sight, not an eviction
    await values.get('e', async () => lasting('E'));
    expect(dropped).toEqual(['b=B']);
    await values.get('f', async () => lasting('F')); // d, never seen since, is the one the bound drops
    expect(dropped).toEqual(['b=B', 'd=D']);
  });

  it('a loaded value already past its stale deadline reaches every caller of the load but is not held', async () => {
    const values = cache();
    await values.get('k', async () => lasting('old'));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const load = countingLoader(async () => {
      await gate;
      return { value: 'once', freshUntilMs: 0, staleUntilMs: 0 };
    });
    const callers = [values.refresh('k', load), values.refresh('k', load)];
    release();
    expect(await Promise.all(callers)).toEqual(['once', 'once']);
    expect(load.calls).toBe(1);
    expect(values.peek('k')).toBeUndefined(); // the older value is superseded, not kept beside it
    expect(values.size).toBe(0);
  });

  it('settled waits for a load started in the background, and the value is held after', async () => {
    const values = cache();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    void values.refresh('k', async () => {
      await gate;
      return lasting('bg');
    });
    let done = false;
    const waiting = values.settled().then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    release();
    await waiting;
    expect(values.peek('k')?.value).toBe('bg');
    expect(values.loading('k')).toBe(false);
  });

  it('refuses a bound that is not a positive integer', () => {
    expect(() => new SingleFlightCache({ maxEntries: 0 })).toThrow(RangeError);
  });
});
