import { credentialRefFrom, describeCredential, setCredentialEnabled } from '../../../shared/credentials/provisioning.js';
import type { StsCommand } from '../command.js';
import { CREDENTIAL_FLAGS, CREDENTIAL_USAGE, JSON_FLAG, parseOptions, report, withAdminStore } from './credentialCommandSupport.js';

/** `disable`: a disabled credential's keys are refused (401) until it is enabled again. */
export const command: StsCommand = {
  name: 'disable',
  summary: 'Disable a credential: its keys are refused until it is enabled again',
  usage: [
    'Usage: npm run sts -- disable (--account <guid> | --cognitive <name> | --wrap-issuer <ns>/<name>) [--json]',
    '',
    CREDENTIAL_USAGE,
    '  --json                           print the result as JSON',
  ].join('\n'),
  async run(args) {
    const options = parseOptions(args, { ...CREDENTIAL_FLAGS, ...JSON_FLAG });
    return withAdminStore(async ({ store, description }) => {
      const ref = credentialRefFrom({ account: options.account, cognitive: options.cognitive, wrapIssuer: options['wrap-issuer'] });
      const { changed } = await setCredentialEnabled(store, ref, false);
      report(options.json, { credential: ref, enabled: false, changed }, [
        `${describeCredential(ref)} ${changed ? 'is now' : 'was already'} disabled in ${description}.`,
      ]);
      return 0;
    });
  },
};
