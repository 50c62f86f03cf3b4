/**
 * Retry of a publish while the app identity's new role assignment propagates.
 *
 * Right after provisioning, the Flex Consumption deployment service writes the uploaded package into the
 * deployment container with the app's managed identity; until its Storage Blob Data Owner assignment has
 * propagated (usually seconds, occasionally minutes) the write is refused with 403 and the publish fails with a
 * wrapped storage error. Nothing is wrong with the package, so the same publish is tried again after a pause.
 * Any other failure is final at once. See docs/deploy.md ("Role propagation").
 */

/** What one run of the publish command produced. */
export interface PublishAttempt {
  readonly exitCode: number;
  /** The command's combined stdout and stderr (its tail is enough). */
  readonly output: string;
}

export interface RetryPolicy {
  /** Runs in all, the first included. */
  readonly attempts: number;
  /** Pause before the second run; doubled each time, capped at `maxDelayMs`. */
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
}

/** 15 s, 30 s, 60 s, 120 s, 120 s: about six minutes of waiting in all, in six runs. */
export const ROLE_PROPAGATION_RETRY: RetryPolicy = Object.freeze({ attempts: 6, firstDelayMs: 15_000, maxDelayMs: 120_000 });

/**
 * Storage's answers to a principal whose role is not (yet) effective: the error codes of the Blob service and
 * the deployment service's wrapped "403 ... storage" message. A 403 about anything else (the deployer may not
 * publish, say) is not retried.
 */
const PROPAGATION_FAILURE = [
  /AuthorizationPermissionMismatch/,
  /AuthorizationFailure/,
  /not authorized to perform this operation/i,
  /\b403\b.*\b(?:storage|blob|container)\b/i,
  /\b(?:storage|blob|container)\b.*\b403\b/i,
];

/** True when a failed publish's output says the app identity cannot reach the deployment storage yet. */
export function isRolePropagationFailure(output: string): boolean {
  return output.split(/\r?\n/).some((line) => PROPAGATION_FAILURE.some((pattern) => pattern.test(line)));
}

/** The pause before run `attempt + 1` (attempt counts from 1). */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** (attempt - 1));
}

export interface PublishWithRetryOptions {
  readonly policy?: RetryPolicy;
  /** Waits `ms`; injected so tests run without real time passing. */
  readonly sleep: (ms: number) => Promise<void>;
  readonly log: (line: string) => void;
}

/**
 * Runs `publish` until it succeeds, fails for another reason, or the policy's runs are used up; resolves to the
 * last attempt.
 *
 * @example
 * const last = await publishWithRetry(() => runCommand('func', ['azure', 'functionapp', 'publish', app, '--no-build']), {
 *   sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
 *   log: console.log,
 * });
 */
export async function publishWithRetry(publish: () => Promise<PublishAttempt>, options: PublishWithRetryOptions): Promise<PublishAttempt> {
  const policy = options.policy ?? ROLE_PROPAGATION_RETRY;
  for (let attempt = 1; ; attempt += 1) {
    const result = await publish();
    if (result.exitCode === 0) return result;
    if (!isRolePropagationFailure(result.output)) return result;
    if (attempt >= policy.attempts) {
      options.log(`The app identity still cannot write to the deployment storage after ${attempt} runs; see docs/deploy.md ("Role propagation").`);
      return result;
    }
    const delay = retryDelayMs(policy, attempt);
    options.log(`Deployment storage refused the app identity (its role assignment is still propagating); run ${attempt + 1} of ${policy.attempts} in ${Math.round(delay / 1000)} s.`);
    await options.sleep(delay);
  }
}
