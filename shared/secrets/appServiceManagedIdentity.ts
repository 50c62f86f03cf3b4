import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { SingleFlightCache } from '../caching/singleFlightCache.js';
import { OutboundRequestError, sendOutbound } from '../outbound/outboundRequest.js';
import { StsBaseError } from '../errors.js';

/**
 * The managed identity of an App Service / Azure Functions app (Flex Consumption included), read from the
 * platform's local token endpoint without `@azure/identity` and MSAL, whose loading and compiling cost a cold
 * start more than the token itself (docs/deploy.md, "Cold start of the artifact").
 *
 * The protocol (api-version 2019-08-01,
 * https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference):
 * `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>[&client_id=<user-assigned id>]` with the
 * header `X-IDENTITY-HEADER: {IDENTITY_HEADER}`; the answer is JSON `{ access_token, expires_on, ... }`, with
 * `expires_on` in seconds since the epoch.
 *
 * - One token per resource, cached and refreshed ahead of its expiry; one request at a time per resource
 *   (callers that arrive while it runs share it). When a refresh fails while the cached token is still
 *   valid, the cached token is served and the next call tries again (the shared
 *   {@link SingleFlightCache}).
 * - Each request is bounded by `requestTimeoutMs` (the shared outbound client, `sendOutbound`).
 * - Failures throw {@link ManagedIdentityTokenError}, which says what failed (status, transport, answer)
 *   and never carries the token or the identity header.
 */

export const APP_SERVICE_MSI_API_VERSION = '2019-08-01';

/** Refresh this long before a token expires (or at half its lifetime, for short-lived tokens). */
export const REFRESH_MARGIN_MS = 5 * 60_000;

export interface AppServiceManagedIdentityOptions {
  /** `IDENTITY_ENDPOINT`. */
  readonly endpoint: string;
  /** `IDENTITY_HEADER`: a secret of the platform, sent as `X-IDENTITY-HEADER`, never logged. */
  readonly identityHeader: string;
  /** A user-assigned identity's client id (`AZURE_CLIENT_ID`); the system-assigned identity when undefined. */
  readonly clientId?: string | undefined;
  /** Upper bound of one request to the endpoint. */
  readonly requestTimeoutMs: number;
  /** Milliseconds since the epoch (tests inject a clock). */
  readonly now?: () => number;
}

/**
 * What went wrong: the endpoint could not be reached, did not answer in time, answered an error status, or
 * answered something that is not a usable token; or the caller asked for something it cannot serve.
 */
export type ManagedIdentityFailure = 'unreachable' | 'timeout' | 'status' | 'malformed' | 'request';

/** Why no token could be had; `status` is the endpoint's HTTP status when it answered. */
export class ManagedIdentityTokenError extends StsBaseError {
  readonly code = 'ERR_STS_MANAGED_IDENTITY';
  constructor(
    message: string,
    readonly failure: ManagedIdentityFailure,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ManagedIdentityTokenError';
  }
}

/** More resources than the app asks tokens for (Key Vault, Table storage). */
const MAX_RESOURCES = 16;

export class AppServiceManagedIdentityCredential implements TokenCredential {
  private readonly tokens: SingleFlightCache<string, AccessToken>;
  private readonly now: () => number;

  constructor(private readonly options: AppServiceManagedIdentityOptions) {
    this.now = options.now ?? Date.now;
    this.tokens = new SingleFlightCache({ maxEntries: MAX_RESOURCES, now: this.now });
    // Checked here so a wrong setting fails at the first call with a clear message, not as a fetch error.
    const url = new URL(options.endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new ManagedIdentityTokenError('IDENTITY_ENDPOINT must be an http(s) URL', 'request');
  }

  /** The token for `scopes` (one scope, e.g. `https://vault.azure.net/.default`). */
  async getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
    const resource = resourceOf(scopes);
    // Fresh until the refresh point; a refresh that failed early is no reason to drop a token that still works.
    return this.tokens.get(resource, async () => {
      const { token, refreshAtMs } = await this.fetchWithOneRetry(resource);
      return { value: token, freshUntilMs: refreshAtMs, staleUntilMs: token.expiresOnTimestamp };
    });
  }

  /** One immediate retry when the endpoint could not be reached at all (a dropped socket), never after an answer. */
  private async fetchWithOneRetry(resource: string): Promise<{ token: AccessToken; refreshAtMs: number }> {
    try {
      return await this.fetchToken(resource);
    } catch (error) {
      if (error instanceof ManagedIdentityTokenError && error.failure === 'unreachable') {
        return this.fetchToken(resource);
      }
      throw error;
    }
  }

  private async fetchToken(resource: string): Promise<{ token: AccessToken; refreshAtMs: number }> {
    const url = new URL(this.options.endpoint);
    url.searchParams.set('api-version', APP_SERVICE_MSI_API_VERSION);
    url.searchParams.set('resource', resource);
    if (this.options.clientId) url.searchParams.set('client_id', this.options.clientId);
    const { status, body } = await getJson(
      url,
      { 'X-IDENTITY-HEADER': this.options.identityHeader },
      this.options.requestTimeoutMs,
    );
    if (status !== 200) {
      throw new ManagedIdentityTokenError(
        `The managed identity endpoint answered ${status}${describeErrorBody(body)}`,
        'status',
        status,
      );
    }
    const token = parseTokenAnswer(body);
    const lifetimeMs = token.expiresOnTimestamp - this.now();
    if (lifetimeMs <= 0)
      throw new ManagedIdentityTokenError('The managed identity endpoint issued an expired token', 'malformed', status);
    const refreshAtMs = token.expiresOnTimestamp - Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2);
    return { token, refreshAtMs };
  }
}

/** `https://vault.azure.net/.default` → `https://vault.azure.net` (the endpoint takes a resource, not a scope). */
export function resourceOf(scopes: string | string[]): string {
  const list = typeof scopes === 'string' ? [scopes] : scopes;
  if (list.length !== 1 || !list[0]?.trim())
    throw new ManagedIdentityTokenError('A managed identity token is requested for exactly one scope', 'request');
  return list[0].trim().replace(/\/\.default$/, '');
}

/** The token and its expiry from the endpoint's answer; anything malformed is an error, not a token. */
export function parseTokenAnswer(text: string): AccessToken {
  let answer: { access_token?: unknown; expires_on?: unknown; token_type?: unknown };
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    throw new ManagedIdentityTokenError(
      'The managed identity endpoint answered something that is not JSON',
      'malformed',
      200,
    );
  }
  if (typeof answer.access_token !== 'string' || answer.access_token === '') {
    throw new ManagedIdentityTokenError(
      'The managed identity endpoint answered without an access_token',
      'malformed',
      200,
    );
  }
  const expiresOnMs = expiresOnToMs(answer.expires_on);
  if (expiresOnMs === undefined)
    throw new ManagedIdentityTokenError(
      'The managed identity endpoint answered without a usable expires_on',
      'malformed',
      200,
    );
  return { token: answer.access_token, expiresOnTimestamp: expiresOnMs, tokenType: 'Bearer' };
}

/** `expires_on`: seconds since the epoch (number or digits); a date string is accepted as a fallback. */
function expiresOnToMs(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value * 1000;
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value.trim()) * 1000;
  const parsed = Date.parse(value);
  return Number.isFinite(parsed) ? parsed : undefined;
}

/** The endpoint's own error text (`message` / `error_description`), short; a token is never in an error body. */
function describeErrorBody(text: string): string {
  try {
    const body = JSON.parse(text) as { message?: unknown; error_description?: unknown; error?: unknown };
    const said = [body.error, body.error_description ?? body.message].filter(
      (part): part is string => typeof part === 'string',
    );
    return said.length > 0 ? `: ${said.join(': ').slice(0, 200)}` : '';
  } catch {
    return '';
  }
}

async function getJson(
  url: URL,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  try {
    // A token answer is a few KB; anything far larger is not one.
    const answer = await sendOutbound({
      url,
      headers: { Accept: 'application/json', ...headers },
      timeoutMs,
      maxResponseBytes: 64 * 1024,
    });
    return { status: answer.status, body: answer.body };
  } catch (error) {
    if (!(error instanceof OutboundRequestError)) throw error;
    const failure = error.failure === 'tooLarge' ? 'malformed' : error.failure;
    const message =
      failure === 'timeout'
        ? `The managed identity endpoint did not answer within ${timeoutMs} ms`
        : failure === 'malformed'
          ? 'The managed identity endpoint answered more than 64 KiB'
          : `The managed identity endpoint could not be reached (${describeCause(error.cause)})`;
    throw new ManagedIdentityTokenError(message, failure, undefined, { cause: error });
  }
}

function describeCause(cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return code ?? (cause instanceof Error ? cause.name : 'unknown');
}
