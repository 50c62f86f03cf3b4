import type { Dispatcher } from 'undici';
import Agent from 'undici/lib/dispatcher/agent.js';
import Pool from 'undici/lib/dispatcher/pool.js';
import dispatcherRequest from 'undici/lib/api/api-request.js';
import globalDispatcher from 'undici/lib/global.js';

/**
 * The part of undici the app uses (`request`, `Agent`, `Pool`), loaded from undici's own files rather than its
 * index. The index loads everything the package offers before returning (fetch, WebSocket, EventSource, the
 * cache stores, the mock agents, the proxy agents, the interceptors): about 60 ms of a cold start in the pinned
 * Node 22 against about 15 ms for these files, and a cold instance pays it on its first Key Vault call
 * (docs/deploy.md, "Cold start of the artifact"). The objects are the ones the index exports, so a dispatcher
 * made here is an undici dispatcher like any other, and the global dispatcher is the one the index would use.
 *
 * The paths are undici's layout, not its published interface: `npm test` fails (and the artifact does not build)
 * if an undici update moves them.
 */
export { Agent, Pool };

/** `request(url, options)` as undici's index exports it, for an absolute `http:`/`https:` URL. */
export type UndiciRequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  readonly method?: Dispatcher.HttpMethod;
  /** Where the request goes out; undici's global agent when absent. */
  readonly dispatcher?: Dispatcher;
};

/**
 * Sends one request as undici's `request` does: through `options.dispatcher` (the global agent when absent),
 * to the URL's origin, path and query; answers with the status, headers and body stream.
 */
export function request(url: URL, options: UndiciRequestOptions = {}): Promise<Dispatcher.ResponseData> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(new TypeError(`undici sends http: and https: requests only, not ${url.protocol}`));
  }
  const { dispatcher = globalDispatcher.getGlobalDispatcher(), method = 'GET', ...rest } = options;
  return dispatcherRequest.call(dispatcher, {
    ...rest,
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
    method,
  });
}
