import { startBenchChild } from './benchChild.js';
import type { BenchFixtures } from './benchFixtures.js';
import type { InProcessResults } from './inProcessChild.js';

/**
 * Runs the in-process section (see `inProcessChild.ts`) in its own process, with the fixtures' store; with
 * `profile`, also each flow's token by stage.
 */
export async function measureInProcess(
  fixtures: BenchFixtures,
  iterations: number,
  profile = false,
): Promise<InProcessResults> {
  const child = await startBenchChild({
    script: 'inProcessChild.ts',
    env: fixtures.childEnv(),
    // settlePrepared in inProcessChild.ts
    execArgv: ['--expose-gc'],
  });
  try {
    // The requests without their checker function (not serialisable, and the child counts non-200s itself).
    const requests = Object.fromEntries(
      Object.entries(fixtures.requests).map(([flow, { looksIssued: _check, ...request }]) => [flow, request]),
    );
    return await child.request<InProcessResults>('measure', { iterations, requests, profile }, 600_000);
  } finally {
    await child.stop();
  }
}
