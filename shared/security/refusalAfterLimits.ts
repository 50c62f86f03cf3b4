import { rateLimited, type RefusalReason, type StsError } from '../errors.js';
import type { FailedAttemptLimiter } from './failedAttemptLimiter.js';

/** What a refusal becomes once it is counted: the error to answer with, and whether to log and ledger it. */
export interface CountedRefusal {
  readonly error: StsError;
  readonly report: boolean;
}

/** Reasons that say the credential's record was found: only these create per-credential counters. */
const EXISTING_CREDENTIAL_REASONS: ReadonlySet<RefusalReason> = new Set([
  'wrong_key',
  'credential_disabled',
  'principal_not_allowed',
]);

/**
 * Counts a refusal (every 4xx a flow answers except 429 itself) against the client address and, when its
 * record exists, the credential (docs/failed-attempts.md). Over a limit, a 401, the refusal of a credential
 * that was not proven, turns into 429 + `Retry-After`; other refusals keep their status, since they either
 * carry no credential (400, 413) or follow a key that was right (a WRAP scope the issuer may not have, 403).
 * The request has been refused either way: a request whose key is right never gets here for its key. Over a
 * limit, only the first refusal per window is reported (logged and ledgered).
 *
 * @example
 * const { error, report } = refusalAfterLimits(services.failedAttempts, refusal, clientIp);
 */
export function refusalAfterLimits(
  limiter: FailedAttemptLimiter,
  refusal: StsError,
  clientIp: string | undefined,
): CountedRefusal {
  if (refusal.status < 400 || refusal.status >= 500 || refusal.status === 429) return { error: refusal, report: true };
  const existing = EXISTING_CREDENTIAL_REASONS.has(refusal.reason) ? refusal.credentialId : undefined;
  const verdict = limiter.recordRefusal({ clientIp, existingCredentialId: existing });
  if (verdict.retryAfterSeconds === 0) return { error: refusal, report: true };
  if (refusal.status !== 401) return { error: refusal, report: verdict.report };
  const error = rateLimited(verdict.retryAfterSeconds, {
    reason: 'rate_limited',
    ...(refusal.credentialId ? { credentialId: refusal.credentialId.slice(0, 200) } : {}),
    ...(refusal.principal ? { principal: refusal.principal } : {}),
  });
  return { error, report: verdict.report };
}
