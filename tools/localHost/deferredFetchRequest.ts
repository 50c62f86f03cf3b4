/**
 * The fetch `Request` behind the local host's `HttpRequest` for a GET or HEAD, built only when a handler needs it.
 *
 * `@azure/functions` wraps a fetch `Request` (`nativeRequest`, as the real host's streaming path hands it one);
 * the `HttpRequest` reads only `url`, `method`, `headers` and `body` from it unless the handler asks for more.
 * A `Request` costs about twice its `Headers` to build (its URL record, abort signal and WebIDL conversions), and
 * a Mixed Reality token needs none of that. So this object answers `url`, `method`, `headers` and `body` (null:
 * a GET or HEAD has none) itself, and builds the real `Request` from the same URL, method and headers (as they
 * are by then) the first time anything else is asked of it: `text()`, `clone()`, `signal` and the rest then
 * behave exactly as a `Request`'s. Requests with a body are not deferred: their body is read anyway.
 *
 * Same values as `new Request(url, { method, headers })`: `url` is the URL as the URL parser serialises it,
 * `headers` a real `Headers` (validated as the `Request` would validate them), built on first use.
 */
export class DeferredFetchRequest implements Request {
  readonly url: string;
  readonly method: string;
  #headerInit: Record<string, string> | undefined;
  #headers: Headers | undefined;
  #request: Request | undefined;

  /**
   * @param url - an absolute URL, already serialised (`new URL(…).href`).
   * @param method - `GET` or `HEAD`.
   * @param headers - one value per lower-case name.
   */
  constructor(url: string, method: 'GET' | 'HEAD', headers: Record<string, string>) {
    this.url = url;
    this.method = method;
    this.#headerInit = headers;
  }

  get headers(): Headers {
    if (this.#headers === undefined) {
      // The same appends, in the same order, as `new Headers(record)`, without its record conversion (a
      // third of the cost: each key's property descriptor and its value read and converted again).
      const headers = new Headers();
      const init = this.#headerInit ?? {};
      for (const name in init) headers.append(name, init[name] as string);
      this.#headers = headers;
      this.#headerInit = undefined;
    }
    return this.#headers;
  }

  /** The real `Request`, built once, with the headers as they are now (a handler may have changed them). */
  #native(): Request {
    this.#request ??= new Request(this.url, { method: this.method, headers: this.headers });
    return this.#request;
  }

  /** Null, as a GET's or HEAD's `Request` answers. */
  get body(): null {
    return null;
  }
  /** False, as a GET's or HEAD's: a null body is never used. */
  get bodyUsed(): boolean {
    return false;
  }
  get cache(): Request['cache'] {
    return this.#native().cache;
  }
  get credentials(): Request['credentials'] {
    return this.#native().credentials;
  }
  get destination(): Request['destination'] {
    return this.#native().destination;
  }
  get integrity(): string {
    return this.#native().integrity;
  }
  get keepalive(): boolean {
    return this.#native().keepalive;
  }
  get mode(): Request['mode'] {
    return this.#native().mode;
  }
  get redirect(): Request['redirect'] {
    return this.#native().redirect;
  }
  get referrer(): string {
    return this.#native().referrer;
  }
  get referrerPolicy(): Request['referrerPolicy'] {
    return this.#native().referrerPolicy;
  }
  get duplex(): Request['duplex'] {
    return this.#native().duplex;
  }
  get signal(): AbortSignal {
    return this.#native().signal;
  }
  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#native().arrayBuffer();
  }
  blob(): Promise<Blob> {
    return this.#native().blob();
  }
  formData(): Promise<FormData> {
    return this.#native().formData();
  }
  json(): Promise<unknown> {
    return this.#native().json();
  }
  text(): Promise<string> {
    return this.#native().text();
  }
  clone(): Request {
    return this.#native().clone();
  }
}
