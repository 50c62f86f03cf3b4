import { describe, expect, it } from 'vitest';
import {
  HEALTH_WAIT,
  hostNameFromPublishOutput,
  isRolePropagationFailure,
  isUnhealthyAfterDeploy,
  publishWithRetry,
  ROLE_PROPAGATION_RETRY,
  type PublishAttempt,
} from '../../tools/deploy/publishRetry.js';

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
  output:
    'Uploading package...\nError: Deployment failed. Status: 403 Forbidden. Failed to upload the package to the storage container. AuthorizationPermissionMismatch',
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
    for (const answer of [
      { exitCode: 1, output: 'Can\'t find app with name "func-sts"' },
      {
        exitCode: 1,
        output:
          'Error: 403 Forbidden: the client does not have permission to perform action Microsoft.Web/sites/publish',
      },
      OK,
    ]) {
      const run = scripted([answer, OK]);
      expect(await publishWithRetry(run.publish, { sleep: run.sleep, log: () => {} })).toEqual(answer);
      expect(run.calls).toHaveLength(1);
      expect(run.waits).toEqual([]);
    }
  });

  it('recognises the storage refusals the deployment service wraps', () => {
    expect(
      isRolePropagationFailure(
        'The request failed: AuthorizationFailure This request is not authorized to perform this operation.',
      ),
    ).toBe(true);
    expect(isRolePropagationFailure('Status code 403 from blob storage')).toBe(true);
    expect(isRolePropagationFailure('Error uploading to container deployment-package: (403)')).toBe(true);
    expect(isRolePropagationFailure('Error: 403 Forbidden')).toBe(false);
    expect(isRolePropagationFailure('Worker runtime cannot be None')).toBe(false);
  });
});

describe('publish that Core Tools calls unhealthy after a successful Flex upload', () => {
  const UNHEALTHY: PublishAttempt = {
    exitCode: 1,
    output:
      'Uploading archive...\nThe deployment was successful!\nChecking the app health...Host status endpoint: https://func-sts-abc.azurewebsites.net/admin/host/status\n' +
      '.....\nDeployment was successful but the app appears to be unhealthy, please check the app logs.',
  };

  it('does not publish again; asks the app until it is healthy, then succeeds', async () => {
    const run = scripted([UNHEALTHY, OK]);
    const asked: string[] = [];
    let answers = [false, false, true];
    const last = await publishWithRetry(run.publish, {
      sleep: run.sleep,
      log: () => {},
      checkHealth: async (output) => {
        asked.push(hostNameFromPublishOutput(output) ?? '?');
        const [answer, ...rest] = answers;
        answers = rest;
        return answer ?? false;
      },
    });
    expect(last.exitCode).toBe(0);
    expect(run.calls).toHaveLength(1);
    expect(asked).toEqual([
      'func-sts-abc.azurewebsites.net',
      'func-sts-abc.azurewebsites.net',
      'func-sts-abc.azurewebsites.net',
    ]);
    expect(run.waits).toEqual([15_000, 30_000, 60_000]);
  });

  it("gives up after the health policy and keeps Core Tools' failure; a throwing check counts as unhealthy", async () => {
    const run = scripted([UNHEALTHY]);
    const lines: string[] = [];
    const last = await publishWithRetry(run.publish, {
      sleep: run.sleep,
      log: (line) => lines.push(line),
      checkHealth: () => Promise.reject(new Error('ECONNREFUSED')),
    });
    expect(last).toEqual(UNHEALTHY);
    expect(run.calls).toHaveLength(1);
    expect(run.waits).toHaveLength(HEALTH_WAIT.attempts);
    expect(lines.at(-1)).toMatch(/never answered healthy/);
  });

  it('without a health check (azd) the unhealthy publish is final, and it is never taken for a role propagation', async () => {
    expect(isUnhealthyAfterDeploy(UNHEALTHY.output)).toBe(true);
    expect(isRolePropagationFailure(UNHEALTHY.output)).toBe(false);
    const run = scripted([UNHEALTHY]);
    expect(await publishWithRetry(run.publish, { sleep: run.sleep, log: () => {} })).toEqual(UNHEALTHY);
    expect(run.waits).toEqual([]);
  });
});
