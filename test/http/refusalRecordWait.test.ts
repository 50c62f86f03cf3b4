import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definition } from '../../functions/issueToken.js';
import type { LedgerEntry } from '../../shared/ledger/ledger.js';
import type { StsServices } from '../../shared/services.js';
import { startFlowHarness, type FlowHarness } from '../flows/flowHarness.js';

/**
 * A refusal waits a bounded time for its ledger row, then answers anyway; the write is not abandoned by that
 * (the wrapper stops waiting, never writing). A refusal that waited for a table that never answers would never
 * be answered at all, so these requests completing is the assertion.
 */

let harness: FlowHarness;
beforeAll(async () => {
  harness = await startFlowHarness();
});
afterAll(() => harness.close());

/** The harness's services with a ledger whose writes settle only when the test says so. */
function heldLedger(): { services: StsServices; started: LedgerEntry[]; finish: () => void; finished: LedgerEntry[] } {
  const started: LedgerEntry[] = [];
  const finished: LedgerEntry[] = [];
  let finish!: () => void;
  const gate = new Promise<void>((resolve) => (finish = resolve));
  const services: StsServices = {
    ...harness.services,
    ledger: {
      record: async (entry) => {
        started.push(entry);
        await gate;
        finished.push(entry);
      },
      close: async () => {},
    },
  };
  return { services, started, finish, finished };
}

const wrongKey = {
  method: 'POST',
  path: '/sts/v1.0/issueToken',
  headers: { 'Ocp-Apim-Subscription-Key': 'f'.repeat(32) },
};

describe('a refusal and its ledger row', () => {
  it('is answered 401 while the row is still being written, and the write carries on to the end', async () => {
    const ledger = heldLedger();
    const response = await harness.invoke(definition, wrongKey, ledger.services);
    expect(response.status).toBe(401);
    expect(ledger.started).toEqual([expect.objectContaining({ outcome: 'refused', status: 401 })]);
    expect(ledger.finished).toEqual([]);
    ledger.finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(ledger.finished).toEqual(ledger.started);
  });

  it('is answered 401 when the table never answers', async () => {
    const services: StsServices = {
      ...harness.services,
      ledger: { record: () => new Promise<void>(() => {}), close: async () => {} },
    };
    expect((await harness.invoke(definition, wrongKey, services)).status).toBe(401);
  });

  it('is answered 401 when the row cannot be written', async () => {
    const services: StsServices = {
      ...harness.services,
      ledger: {
        record: async () => {
          throw new Error('table unreachable');
        },
        close: async () => {},
      },
    };
    expect((await harness.invoke(definition, wrongKey, services)).status).toBe(401);
  });
});
