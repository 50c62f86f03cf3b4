/**
 * `AbortSignal.timeout` on vitest's fake clock (the real one does not follow it): a signal that aborts with a
 * `TimeoutError` once `timeoutMs` of fake time have passed.
 */
export function fakeClockTimeout(timeoutMs: number): AbortSignal {
  const controller = new AbortController();
  setTimeout(
    () => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    timeoutMs,
  );
  return controller.signal;
}
