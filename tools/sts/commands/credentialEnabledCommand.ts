import { credentialRefFrom, describeCredential, setCredentialEnabled } from '../credentials/provisioning.js';
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

/** `enable` and `disable` differ only in the state they set: one definition serves both. */
export function credentialEnabledCommand(enabled: boolean, summary: string): StsCommand {
  const name = enabled ? 'enable' : 'disable';
  return {
    name,
    summary,
    usage: [
      `Usage: npm run sts -- ${name} ${CREDENTIAL_CHOICE} [--json]`,
      '',
      CREDENTIAL_USAGE,
      '  --json                           print the result as JSON',
    ].join('\n'),
    async run(args) {
      const options = parseOptions(args, { ...CREDENTIAL_FLAGS, ...JSON_FLAG });
      return withAdminStore(async ({ store, description }) => {
        const ref = credentialRefFrom(options);
        const { changed } = await setCredentialEnabled(store, ref, enabled);
        report(options.json, { credential: ref, enabled, changed }, [
          `${describeCredential(ref)} ${changed ? 'is now' : 'was already'} ${name}d in ${description}.`,
        ]);
        return 0;
      });
    },
  };
}
