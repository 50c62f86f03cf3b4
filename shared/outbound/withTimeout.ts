/**
 * Runs `work` under one `AbortSignal.timeout(timeoutMs)` (joined with the caller's signal, if any): the work
 * gets the signal to abort its request, and the returned promise also settles on it, with `timedOut()`, for
 * work that does not watch the signal (an SDK's credential, a child process). No timer of its own lingers.
 *
 * @example
 * const token = await withTimeout((signal) => credential.getToken(scope, { abortSignal: signal }), 3_000,
 *   () => new TokenAcquisitionTimeoutError(3_000));
 */
export function withTimeout<T>(
  work: (signal: AbortSignal) => Promise<T>,
  timeoutMs: number,
  timedOut: () => Error,
  callerSignal?: AbortSignal,
): Promise<T> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = callerSignal ? AbortSignal.any([callerSignal, timeout]) : timeout;
  const reasonFor = (error: unknown): Error => {
    if (timeout.aborted) return timedOut();
    return error instanceof Error ? error : new Error(String(error));
  };
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reasonFor(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve()
      .then(() => work(signal))
      .then(resolve, (error: unknown) => reject(reasonFor(error)))
      .finally(() => signal.removeEventListener('abort', onAbort));
  });
}
