import { credentialRefFrom, describeCredential, setCredentialEnabled } from '../../../shared/credentials/provisioning.js';
import type { StsCommand } from '../command.js';
import { CREDENTIAL_FLAGS, CREDENTIAL_USAGE, JSON_FLAG, parseOptions, report, withAdminStore } from './credentialCommandSupport.js';

/** `enable`: a disabled credential accepts its keys again. */
export const command: StsCommand = {
  name: 'enable',
  summary: 'Enable a disabled credential again',
  usage: [
    'Usage: npm run sts -- enable (--account <guid> | --cognitive <name> | --wrap-issuer <ns>/<name>) [--json]',
    '',
    CREDENTIAL_USAGE,
    '  --json                           print the result as JSON',
  ].join('\n'),
  async run(args) {
    const options = parseOptions(args, { ...CREDENTIAL_FLAGS, ...JSON_FLAG });
    return withAdminStore(async ({ store, description }) => {
      const ref = credentialRefFrom({ account: options.account, cognitive: options.cognitive, wrapIssuer: options['wrap-issuer'] });
      const { changed } = await setCredentialEnabled(store, ref, true);
      report(options.json, { credential: ref, enabled: true, changed }, [
        `${describeCredential(ref)} ${changed ? 'is now' : 'was already'} enabled in ${description}.`,
      ]);
      return 0;
    });
  },
};
