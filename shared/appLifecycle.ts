import { app } from './functionsApp.js';
import { closeServices } from './services.js';

let registered = false;

/**
 * Registers the app's shutdown with the Functions host once per process: when the host terminates the
 * worker, pending ledger writes are flushed and upstream connection pools closed. (The local host calls
 * `closeServices` itself; outside a worker the registration is skipped.)
 */
export function registerAppLifecycle(): void {
  if (registered) return;
  registered = true;
  app.hook.appTerminate(async () => {
    await closeServices();
  });
}
