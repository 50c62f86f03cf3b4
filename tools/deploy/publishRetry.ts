/**
 * Retry of a publish while the app identity's new role assignment propagates.
 *
 * Right after provisioning, the Flex Consumption deployment service writes the uploaded package into the
 * deployment container with the app's managed identity; until its Storage Blob Data Owner assignment has
 * propagated (usually seconds, occasionally minutes) the write is refused with 403 and the publish fails with a
 * wrapped storage error. Nothing is wrong with the package, so the same publish is tried again after a pause.
 *
 * Core Tools can also fail a good deployment: after a Flex Consumption upload it waits 60 s, asks the host's
 * status once (with retries of its own) and exits non-zero with "Deployment was successful but the app appears
 * to be unhealthy" when the host is still starting (PublishFunctionAppAction.PerformFlexDeployment in
 * https://github.com/Azure/azure-functions-core-tools/blob/main/src/Cli/func/Actions/AzureActions/PublishFunctionAppAction.cs).
 * The package is in place then, so it is not uploaded again: the app's health is asked again, with pauses,
 * until it answers healthy. Any other failure is final at once. See docs/deploy.md ("Role propagation").
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
export const ROLE_PROPAGATION_RETRY: RetryPolicy = Object.freeze({
  attempts: 6,
  firstDelayMs: 15_000,
  maxDelayMs: 120_000,
});

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

/** Core Tools' words when the package is deployed but the host did not answer its status check in time. */
const UNHEALTHY_AFTER_DEPLOY = /Deployment was successful but the app appears to be unhealthy/i;

/** True when a failed publish deployed the package and only Core Tools' host status check failed. */
export function isUnhealthyAfterDeploy(output: string): boolean {
  return UNHEALTHY_AFTER_DEPLOY.test(output);
}

/** The app's host name as Core Tools printed it ("Host status endpoint: https://<host>/admin/host/status"). */
export function hostNameFromPublishOutput(output: string): string | undefined {
  return /Host status endpoint:\s*https:\/\/([^/\s]+)\//i.exec(output)?.[1];
}

/** 15 s, 30 s, 60 s, 60 s, 60 s, 60 s: about five minutes for a new host to start answering healthy. */
export const HEALTH_WAIT: RetryPolicy = Object.freeze({ attempts: 6, firstDelayMs: 15_000, maxDelayMs: 60_000 });

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
  /**
   * Asks the deployed app whether it is healthy (the publish output tells where it is); without it an
   * "unhealthy" publish is final.
   */
  readonly checkHealth?: (publishOutput: string) => Promise<boolean>;
  readonly healthPolicy?: RetryPolicy;
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
export async function publishWithRetry(
  publish: () => Promise<PublishAttempt>,
  options: PublishWithRetryOptions,
): Promise<PublishAttempt> {
  const policy = options.policy ?? ROLE_PROPAGATION_RETRY;
  for (let attempt = 1; ; attempt += 1) {
    const result = await publish();
    if (result.exitCode === 0) return result;
    if (isUnhealthyAfterDeploy(result.output) && options.checkHealth)
      return waitUntilHealthy(result, options, options.checkHealth);
    if (!isRolePropagationFailure(result.output)) return result;
    if (attempt >= policy.attempts) {
      options.log(
        `The app identity still cannot write to the deployment storage after ${attempt} runs; see docs/deploy.md ("Role propagation").`,
      );
      return result;
    }
    const delay = retryDelayMs(policy, attempt);
    options.log(
      `Deployment storage refused the app identity (its role assignment is still propagating); run ${attempt + 1} of ${policy.attempts} in ${Math.round(delay / 1000)} s.`,
    );
    await options.sleep(delay);
  }
}

/** After an "unhealthy" publish: asks the app's health with pauses; a healthy answer makes the publish a success. */
async function waitUntilHealthy(
  result: PublishAttempt,
  options: PublishWithRetryOptions,
  checkHealth: (publishOutput: string) => Promise<boolean>,
): Promise<PublishAttempt> {
  const policy = options.healthPolicy ?? HEALTH_WAIT;
  options.log(
    'The package is deployed; Core Tools found the host not healthy yet. Asking the app again instead of publishing again.',
  );
  for (let check = 1; check <= policy.attempts; check += 1) {
    await options.sleep(retryDelayMs(policy, check));
    let healthy: boolean;
    try {
      healthy = await checkHealth(result.output);
    } catch {
      healthy = false;
    }
    if (healthy) {
      options.log(`The app answers healthy (check ${check} of ${policy.attempts}): the deployment succeeded.`);
      return { exitCode: 0, output: result.output };
    }
    options.log(`Not healthy yet (check ${check} of ${policy.attempts}).`);
  }
  options.log('The app never answered healthy: see docs/operations.md ("A first deployment answers 503").');
  return result;
}
