import { describe, expect, it } from 'vitest';
import { isRolePropagationFailure, publishWithRetry, ROLE_PROPAGATION_RETRY, type PublishAttempt } from '../../tools/deploy/publishRetry.js';

/** A publish that answers from a script, and a sleep that only records: no real time passes. */
function scripted(answers: PublishAttempt[]) {
  const calls: number[] = [];
  const waits: number[] = [];
  let next = 0;
  return {
    publish: async () => {
      calls.push(next);
      const answer = answers[Math.min(next, answers.length - 1)];
      next += 1;
      if (!answer) throw new Error('no scripted answer');
      return answer;
    },
    sleep: async (ms: number) => {
      waits.push(ms);
    },
    calls,
    waits,
  };
}

const STORAGE_403: PublishAttempt = {
  exitCode: 1,
  output: 'Uploading package...\nError: Deployment failed. Status: 403 Forbidden. Failed to upload the package to the storage container. AuthorizationPermissionMismatch',
};
const OK: PublishAttempt = { exitCode: 0, output: 'Deployment completed successfully.' };

describe('publish retry while the app identity role propagates', () => {
  it('runs the publish again, with doubling pauses, until the storage accepts it', async () => {
    const run = scripted([STORAGE_403, STORAGE_403, STORAGE_403, OK]);
    const lines: string[] = [];
    const last = await publishWithRetry(run.publish, { sleep: run.sleep, log: (line) => lines.push(line) });
    expect(last).toEqual(OK);
    expect(run.calls).toHaveLength(4);
    expect(run.waits).toEqual([15_000, 30_000, 60_000]);
    expect(lines[0]).toMatch(/run 2 of 6 in 15 s/);
  });

  it('gives up after the policy runs out, with the last failure', async () => {
    const run = scripted([STORAGE_403]);
    const lines: string[] = [];
    const last = await publishWithRetry(run.publish, { sleep: run.sleep, log: (line) => lines.push(line) });
    expect(last.exitCode).toBe(1);
    expect(run.calls).toHaveLength(ROLE_PROPAGATION_RETRY.attempts);
    expect(run.waits).toEqual([15_000, 30_000, 60_000, 120_000, 120_000]);
    expect(lines.at(-1)).toMatch(/still cannot write to the deployment storage after 6 runs/);
  });

  it('stops at once on any other failure, and never waits after a success', async () => {
    for (const answer of [{ exitCode: 1, output: "Can't find app with name \"func-sts\"" }, { exitCode: 1, output: 'Error: 403 Forbidden: the client does not have permission to perform action Microsoft.Web/sites/publish' }, OK]) {
      const run = scripted([answer, OK]);
      expect(await publishWithRetry(run.publish, { sleep: run.sleep, log: () => {} })).toEqual(answer);
      expect(run.calls).toHaveLength(1);
      expect(run.waits).toEqual([]);
    }
  });

  it('recognises the storage refusals the deployment service wraps', () => {
    expect(isRolePropagationFailure('The request failed: AuthorizationFailure This request is not authorized to perform this operation.')).toBe(true);
    expect(isRolePropagationFailure('Status code 403 from blob storage')).toBe(true);
    expect(isRolePropagationFailure('Error uploading to container deployment-package: (403)')).toBe(true);
    expect(isRolePropagationFailure('Error: 403 Forbidden')).toBe(false);
    expect(isRolePropagationFailure('Worker runtime cannot be None')).toBe(false);
  });
});
