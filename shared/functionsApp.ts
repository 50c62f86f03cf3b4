import { app } from '@azure/functions';

/**
 * The `app` registry of `@azure/functions`, imported statically so that `npm run package` (esbuild) can bundle
 * the library into the deployment artifact; only `@azure/functions-core`, which the Functions worker provides,
 * stays external. It is the same module instance the worker uses.
 */
export { app };
