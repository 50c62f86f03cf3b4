import { parseSigningAlgorithm, rotateSigningKey } from '../credentials/provisioning.js';
import type { StsCommand } from '../command.js';
import { JSON_FLAG, parseOptions, report, withAdminStore } from './credentialCommandSupport.js';

/** `rotate-signing-key`: a new version of `sts-signing-key`; the private key is never printed. */
export const command: StsCommand = {
  name: 'rotate-signing-key',
  summary: 'Add a new JWT signing key version (published first, signs once verifiers can know it)',
  usage: [
    'Usage: npm run sts -- rotate-signing-key [--alg ES256|RS256] [--json]',
    '',
    '  --alg ES256|RS256   algorithm of the new key (default ES256)',
    '  --json              print the result as JSON',
    '',
    'Older versions stay enabled so tokens they signed keep verifying; the key ring retires them.',
  ].join('\n'),
  async run(args) {
    const options = parseOptions(args, { alg: { type: 'string' }, ...JSON_FLAG });
    return withAdminStore(async ({ store, description }) => {
      const alg = parseSigningAlgorithm(options.alg);
      const version = await rotateSigningKey(store, alg);
      report(options.json, { version: version.version, alg, createdOn: version.createdOn }, [
        `Added ${alg} signing key version ${version.version} in ${description}.`,
      ]);
      return 0;
    });
  },
};
