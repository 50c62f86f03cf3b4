import {
  credentialRefFrom,
  describeCredential,
  parseKeySlot,
  rotateCredentialKey,
} from '../credentials/provisioning.js';
import type { StsCommand } from '../command.js';
import {
  CREDENTIAL_CHOICE,
  CREDENTIAL_FLAGS,
  CREDENTIAL_USAGE,
  JSON_FLAG,
  parseOptions,
  report,
  required,
  withAdminStore,
} from './credentialCommandSupport.js';

/** `rotate-key`: replaces key 1 or key 2 of a credential; the other key keeps working. */
export const command: StsCommand = {
  name: 'rotate-key',
  summary: 'Replace key 1 or key 2 of a credential (prints the new key once)',
  usage: [
    `Usage: npm run sts -- rotate-key ${CREDENTIAL_CHOICE} --slot 1|2 [--json]`,
    '',
    CREDENTIAL_USAGE,
    '  --slot 1|2                       which key to replace; the other keeps working',
    '  --json                           print the result as JSON',
    '',
    'Running instances pick the new key up within STS_SECRET_CACHE_MAX_AGE_SECONDS (Key Vault) or at once (file store).',
  ].join('\n'),
  async run(args) {
    const options = parseOptions(args, { ...CREDENTIAL_FLAGS, slot: { type: 'string' }, ...JSON_FLAG });
    const slotText = required(options.slot, '--slot');
    return withAdminStore(async ({ store, description }) => {
      const ref = credentialRefFrom(options);
      const slot = parseKeySlot(slotText);
      const rotation = await rotateCredentialKey(store, ref, slot);
      report(
        options.json,
        {
          credential: ref,
          slot,
          key: rotation.newKey,
          ...(rotation.cleanupProblem ? { warning: rotation.cleanupProblem } : {}),
        },
        [
          `Rotated key ${slot} of ${describeCredential(ref)} in ${description}.`,
          `  new key ${slot}  ${rotation.newKey}`,
          'The new key is shown once.',
        ],
      );
      if (!rotation.cleanupProblem) return 0;
      console.error(`rotate-key: warning: ${rotation.cleanupProblem}`);
      return 1;
    });
  },
};
