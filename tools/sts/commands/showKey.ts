import { credentialRefFrom, parseKeySlot, showCredentialKey } from '../credentials/provisioning.js';
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

/** `show-key`: prints one key of one credential, only when asked by name and slot. */
export const command: StsCommand = {
  name: 'show-key',
  summary: 'Print one key of one credential (explicit request only)',
  usage: [
    `Usage: npm run sts -- show-key ${CREDENTIAL_CHOICE} --slot 1|2 [--json]`,
    '',
    CREDENTIAL_USAGE,
    '  --slot 1|2                       which key',
    '  --json                           print {"key": "..."}',
  ].join('\n'),
  async run(args) {
    const options = parseOptions(args, { ...CREDENTIAL_FLAGS, slot: { type: 'string' }, ...JSON_FLAG });
    const slotText = required(options.slot, '--slot');
    return withAdminStore(async ({ store }) => {
      const ref = credentialRefFrom(options);
      const key = await showCredentialKey(store, ref, parseKeySlot(slotText));
      report(options.json, { key }, [key]);
      return 0;
    });
  },
};
