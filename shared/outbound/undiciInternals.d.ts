/**
 * Types for the three files of undici that shared/outbound/undiciCore.ts loads instead of the package's index
 * (see there why). undici ships no declarations for its `lib/` files; these give each the type of the public
 * export it is (undici's index re-exports the same objects).
 */
declare module 'undici/lib/dispatcher/agent.js' {
  import { Agent } from 'undici';
  export default Agent;
}

declare module 'undici/lib/dispatcher/pool.js' {
  import { Pool } from 'undici';
  export default Pool;
}

declare module 'undici/lib/api/api-request.js' {
  import type { Dispatcher } from 'undici';
  /** undici's `Dispatcher.prototype.request`, which the index installs on every dispatcher: called with `this` a dispatcher. */
  function request(this: Dispatcher, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>;
  export default request;
}

declare module 'undici/lib/global.js' {
  import type { Dispatcher } from 'undici';
  const globalDispatcher: { getGlobalDispatcher(): Dispatcher };
  export default globalDispatcher;
}
