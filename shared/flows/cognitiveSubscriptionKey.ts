import type { VerifiedCredential } from '../credentials/credentialDirectory.js';
import type { CognitiveResource } from '../credentials/records.js';
import { invalidCredentials } from '../errors.js';
import type { FlowDependencies } from './flowDependencies.js';

/** The 401 texts of the Cognitive Services token service, word for word (docs/contracts/cognitive-issue-token.md#errors). */
export const subscriptionKeyMessages = {
  missing:
    'Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.',
  invalid:
    'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
} as const;

/** Where a Cognitive Services key may arrive (docs/contracts/cognitive-issue-token.md#request). */
export interface SubscriptionKeySources {
  /** The `Ocp-Apim-Subscription-Key` header, or null when absent. */
  readonly header: string | null | undefined;
  /** Every value of the `Subscription-Key` query parameter (name matched case-insensitively). */
  readonly queryValues: readonly string[];
}

/** Real keys are 32 hex characters; anything that is not a short run of printable ASCII is refused unread. */
const KEY_TEXT = /^[\x21-\x7e]{1,256}$/;

/**
 * Finds the key of a Cognitive Services request and resolves it to its resource (docs/contracts/cognitive-issue-token.md#request, #errors).
 *
 * The header wins when both are present (it is what the docs and SDKs send). An absent or empty key is the
 * "missing subscription key" 401; a repeated query key, a key that cannot be one, an unknown key, a wrong
 * key and a disabled resource are all the "invalid subscription key" 401, so the response never says which.
 *
 * @example
 * const { record } = await authenticateSubscriptionKey(
 *   { header: request.headers.get('ocp-apim-subscription-key'), queryValues: [] }, services);
 */
export async function authenticateSubscriptionKey(
  sources: SubscriptionKeySources,
  deps: Pick<FlowDependencies, 'credentials'>,
): Promise<VerifiedCredential<CognitiveResource>> {
  const header = sources.header?.trim() ?? '';
  const queryKeys = sources.queryValues.map((value) => value.trim()).filter((value) => value !== '');
  if (header === '' && queryKeys.length === 0) {
    throw invalidCredentials(subscriptionKeyMessages.missing, { reason: 'missing_credentials' });
  }
  if (header === '' && queryKeys.length > 1) {
    throw invalidCredentials(subscriptionKeyMessages.invalid, { reason: 'malformed_credentials' });
  }
  const key = header !== '' ? header : (queryKeys[0] as string);
  if (!KEY_TEXT.test(key))
    throw invalidCredentials(subscriptionKeyMessages.invalid, { reason: 'malformed_credentials' });

  const verification = await deps.credentials.verifySubscriptionKey(key);
  if (!verification.ok) {
    throw invalidCredentials(subscriptionKeyMessages.invalid, { reason: verification.reason });
  }
  return verification.credential;
}
