import { createMixedRealityAccount } from '../credentials/provisioning.js';
import type { StsCommand } from '../command.js';
import { JSON_FLAG, parseOptions, report, required, table, withAdminStore } from './credentialCommandSupport.js';

/** `create-account`: a Mixed Reality account (account id + domain, two new keys shown once). */
export const command: StsCommand = {
  name: 'create-account',
  summary: 'Create a Mixed Reality account (prints its two new keys once)',
  usage: [
    'Usage: npm run sts -- create-account --domain <account domain> [--id <guid>] [--resource-id <ARM id>] [--json]',
    '',
    '  --domain <dns name>    account domain, e.g. eastus2.mixedreality.azure.com',
    '  --id <guid>            account id (default: a new GUID)',
    '  --resource-id <id>     ARM resource id, carried in the token as `rid`',
    '  --json                 print the result as JSON',
  ].join('\n'),
  async run(args) {
    const options = parseOptions(args, {
      domain: { type: 'string' },
      id: { type: 'string' },
      'resource-id': { type: 'string' },
      ...JSON_FLAG,
    });
    const accountDomain = required(options.domain, '--domain');
    return withAdminStore(async ({ store, description }) => {
      const account = await createMixedRealityAccount(store, {
        accountDomain,
        ...(options.id !== undefined ? { accountId: options.id } : {}),
        ...(options['resource-id'] !== undefined ? { resourceId: options['resource-id'] } : {}),
      });
      report(options.json, account, [
        `Created Mixed Reality account ${account.accountId} in ${description}.`,
        ...table([
          ['domain', account.accountDomain],
          ...(account.resourceId ? ([['resource id', account.resourceId]] as const) : []),
          ['key 1', account.keys[0]],
          ['key 2', account.keys[1]],
        ]),
        'The keys are shown once; `show-key` prints one again on request.',
      ]);
      return 0;
    });
  },
};
