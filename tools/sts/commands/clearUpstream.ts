import { credentialRefFrom, describeCredential } from '../credentials/provisioning.js';
import { clearCredentialUpstream } from '../credentials/upstreamProvisioning.js';
import type { StsCommand } from '../command.js';
import {
  CREDENTIAL_CHOICE,
  CREDENTIAL_FLAGS,
  CREDENTIAL_USAGE,
  JSON_FLAG,
  parseOptions,
  report,
  withAdminStore,
} from './credentialCommandSupport.js';

/** `clear-upstream`: a credential in upstream mode mints its tokens locally again. */
export const command: StsCommand = {
  name: 'clear-upstream',
  summary: 'Switch a credential from upstream mode back to minting tokens locally',
  usage: [
    `Usage: npm run sts -- clear-upstream ${CREDENTIAL_CHOICE} [--disable-key] [--json]`,
    '',
    CREDENTIAL_USAGE,
    '  --disable-key                    also disable every version of the secret holding the real key',
    '                                   (not when another credential uses the same secret)',
    '  --json                           print the result as JSON',
  ].join('\n'),
  async run(args) {
    const options = parseOptions(args, { ...CREDENTIAL_FLAGS, 'disable-key': { type: 'boolean' }, ...JSON_FLAG });
    return withAdminStore(async ({ store, description }) => {
      const ref = credentialRefFrom(options);
      const result = await clearCredentialUpstream(store, ref, { disableKey: options['disable-key'] ?? false });
      const lines = result.changed
        ? [
            `${describeCredential(ref)} mints its tokens locally again (was upstream ${result.previous?.endpoint}) in ${description}.`,
          ]
        : [`${describeCredential(ref)} was not in upstream mode; nothing changed.`];
      if (result.changed && options['disable-key']) {
        lines.push(`  disabled ${result.disabledKeyVersions} version(s) of secret ${result.previous?.secretName}`);
      }
      report(
        options.json,
        {
          credential: ref,
          changed: result.changed,
          previous: result.previous ?? null,
          disabledKeyVersions: result.disabledKeyVersions,
        },
        lines,
      );
      return 0;
    });
  },
};
