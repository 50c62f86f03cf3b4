import { randomBytes } from 'node:crypto';
import { LEDGER_ADDRESS_KEY_SECRET } from '../../../shared/ledger/ledgerAddress.js';
import type { StsCommand } from '../command.js';
import { JSON_FLAG, parseOptions, report, withAdminStore } from './credentialCommandSupport.js';

/** `create-address-key`: the HMAC key of `STS_LEDGER_CLIENT_ADDRESS=keyed-hash`; never printed. */
export const command: StsCommand = {
  name: 'create-address-key',
  summary: 'Create (or replace) the key the ledger hashes client addresses with (STS_LEDGER_CLIENT_ADDRESS=keyed-hash)',
  usage: [
    'Usage: npm run sts -- create-address-key [--json]',
    '',
    `Writes 32 random bytes as a new version of the secret ${LEDGER_ADDRESS_KEY_SECRET}. The value is never printed.`,
    'A new key starts new groups: rows hashed under the old key no longer match an address hashed under the new one',
    '(audit --client-ip finds only rows written after the change). Instances pick the new key up within 5 minutes.',
  ].join('\n'),
  async run(args) {
    const options = parseOptions(args, { ...JSON_FLAG });
    return withAdminStore(async ({ store, description }) => {
      const version = await store.setSecret(LEDGER_ADDRESS_KEY_SECRET, randomBytes(32).toString('base64url'), {
        contentType: 'text/plain',
      });
      report(
        options.json,
        { secret: LEDGER_ADDRESS_KEY_SECRET, version: version.version, createdOn: version.createdOn },
        [`Wrote ${LEDGER_ADDRESS_KEY_SECRET} version ${version.version} in ${description}.`],
      );
      return 0;
    });
  },
};
