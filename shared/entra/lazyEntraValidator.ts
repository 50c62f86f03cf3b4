import type { EntraSettings } from '../config.js';
import type { EntraTokenValidator } from './entraTokenValidator.js';

/**
 * The Entra validator, built on the first Entra token: until then neither its modules nor jose are loaded,
 * so enabling the feature costs a key-only cold start nothing.
 *
 * @example
 * const entra = config.entra ? lazyEntraValidator(config.entra, clock) : undefined;
 */
export function lazyEntraValidator(settings: EntraSettings, clock: () => Date): EntraTokenValidator {
  let validator: Promise<EntraTokenValidator> | undefined;
  const load = (): Promise<EntraTokenValidator> =>
    (validator ??= Promise.all([import('./entraTokenValidator.js'), import('./authorityKeys.js')]).then(
      ([validation, cache]) => {
        // One key cache per authority: a token is only ever checked with the keys its own issuer publishes.
        const keys = new Map(
          settings.authorities.map((authority) => [authority, new cache.AuthorityKeys({ authority, clock })]),
        );
        return validation.createEntraTokenValidator(settings, keys);
      },
    ));
  return { validate: async (token, now) => (await load()).validate(token, now) };
}
