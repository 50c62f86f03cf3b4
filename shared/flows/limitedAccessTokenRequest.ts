import { badRequest } from '../errors.js';
import { jsonNestingExceeds, MAX_JSON_DEPTH } from '../security/requestLimits.js';

/**
 * Reading the parameters of `issueLimitedAccessToken` (docs/contracts/cognitive-limited-access-token.md#request): the `expiredTime` query value and
 * the JSON body. Every refusal is a 400 `BadArgument` with the documented text where one exists (docs/contracts/cognitive-limited-access-token.md#response).
 */

/** The `BadArgument` texts: the first five word for word from the API reference (docs/contracts/cognitive-limited-access-token.md#response). */
export const limitedAccessTokenMessages = {
  bodyEmpty: 'Request body cannot be null or empty.',
  targetResourceId: 'TargetAzureResourceId must not be null and must be well formed.',
  featureFlags: 'FeatureFlags must not be null or empty.',
  isvNotEnabled: 'ISV features not enabled for this resource id.',
  missingFlag: (flag: string): string => `Missing required flags to grant ${flag}.`,
  /** Not JSON, or JSON that is not an object: the Face API's own wording for an unreadable body. */
  bodyInvalid: 'Request body is invalid.',
  expiredTime: 'expiredTime must be an integer number of seconds between 60 and 86400.',
  expiredTimeRepeated: 'expiredTime must be given at most once.',
} as const;

export const EXPIRED_TIME_DEFAULT_SECONDS = 3_600;
export const EXPIRED_TIME_MIN_SECONDS = 60;
export const EXPIRED_TIME_MAX_SECONDS = 86_400;

/**
 * The token lifetime from the `expiredTime` query values (docs/contracts/cognitive-limited-access-token.md#request): 3600 when absent; otherwise
 * exactly one value of decimal digits only (no sign, exponent, hex, spaces or suffix) between 60 and 86400.
 *
 * @example
 * parseExpiredTime([]);        // 3600
 * parseExpiredTime(['7200']);  // 7200
 * parseExpiredTime(['1e3']);   // throws 400 BadArgument
 */
export function parseExpiredTime(values: readonly string[]): number {
  if (values.length === 0) return EXPIRED_TIME_DEFAULT_SECONDS;
  if (values.length > 1) throw badRequest(limitedAccessTokenMessages.expiredTimeRepeated);
  const text = values[0] as string;
  if (!/^[0-9]{1,9}$/.test(text)) throw badRequest(limitedAccessTokenMessages.expiredTime);
  const seconds = Number(text);
  if (seconds < EXPIRED_TIME_MIN_SECONDS || seconds > EXPIRED_TIME_MAX_SECONDS) {
    throw badRequest(limitedAccessTokenMessages.expiredTime);
  }
  return seconds;
}

/**
 * Strict UTF-8 (a byte that is not UTF-8 throws), a leading BOM dropped. One decoder serves every request: a
 * decode without `stream` starts from a clean state each time.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** The body of a limited-access-token request, validated. */
export interface LimitedAccessTokenBody {
  /** ARM id of the resource the token is for, as sent. */
  readonly targetAzureResourceId: string;
  /** Requested flags, in request order, duplicates removed. */
  readonly featureFlags: readonly string[];
}

/**
 * An ARM id of a Cognitive Services account: `/subscriptions/{guid}/resourceGroups/{group}/providers/
 * Microsoft.CognitiveServices/accounts/{name}`, fixed segments in any case (ARM ids are case-insensitive).
 */
const COGNITIVE_ACCOUNT_ID =
  /^\/subscriptions\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\/resourcegroups\/[-\w.()]{0,89}[-\w()]\/providers\/microsoft\.cognitiveservices\/accounts\/[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/i;

/**
 * Parses and validates the JSON body (docs/contracts/cognitive-limited-access-token.md#request, #response), in the order of the documented errors:
 * empty/`null` body, then the target resource id (`targetAzureResourceId`, else `resourceId`), then
 * `featureFlags` (an array of non-empty strings; one string is tolerated). Property names match
 * case-insensitively, as the real service's model binding does; an exactly-spelled property wins. A body
 * that is not UTF-8 JSON, JSON nested deeper than {@link MAX_JSON_DEPTH}, or JSON that is not an object, is
 * `Request body is invalid.` (never a 500).
 *
 * @example
 * parseLimitedAccessTokenBody(Buffer.from('{"resourceId":"/subscriptions/…/accounts/face","featureFlags":"Face.Verification"}'));
 * // { targetAzureResourceId: '/subscriptions/…/accounts/face', featureFlags: ['Face.Verification'] }
 */
export function parseLimitedAccessTokenBody(bytes: Uint8Array): LimitedAccessTokenBody {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw badRequest(limitedAccessTokenMessages.bodyInvalid);
  }
  if (text.trim() === '') throw badRequest(limitedAccessTokenMessages.bodyEmpty);
  // The real body nests 2 deep; anything far deeper is refused before the parser builds it.
  if (jsonNestingExceeds(text, MAX_JSON_DEPTH)) throw badRequest(limitedAccessTokenMessages.bodyInvalid);

  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badRequest(limitedAccessTokenMessages.bodyInvalid);
  }
  if (body === null) throw badRequest(limitedAccessTokenMessages.bodyEmpty);
  if (typeof body !== 'object' || Array.isArray(body)) throw badRequest(limitedAccessTokenMessages.bodyInvalid);
  const fields = body as Record<string, unknown>;

  const target = property(fields, 'targetAzureResourceId') ?? property(fields, 'resourceId');
  if (typeof target !== 'string' || !COGNITIVE_ACCOUNT_ID.test(target)) {
    throw badRequest(limitedAccessTokenMessages.targetResourceId);
  }

  const rawFlags = property(fields, 'featureFlags');
  const flags = typeof rawFlags === 'string' ? [rawFlags] : rawFlags;
  if (!Array.isArray(flags) || flags.length === 0) throw badRequest(limitedAccessTokenMessages.featureFlags);
  const featureFlags: string[] = [];
  for (const flag of flags as unknown[]) {
    if (typeof flag !== 'string' || flag.trim() === '') throw badRequest(limitedAccessTokenMessages.featureFlags);
    if (!featureFlags.includes(flag.trim())) featureFlags.push(flag.trim());
  }
  return { targetAzureResourceId: target, featureFlags };
}

/** The value of `name`, spelled exactly or else in any case; undefined when absent or `null`. */
function property(fields: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(fields, name) && fields[name] !== null) return fields[name];
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(fields)) {
    if (key.toLowerCase() === lower && value !== null) return value;
  }
  return undefined;
}
