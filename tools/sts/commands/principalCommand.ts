import { allowPrincipal, describePrincipal, parsePrincipal, revokePrincipal } from '../credentials/principalProvisioning.js';
import type { StsCommand } from '../command.js';
import { JSON_FLAG, parseOptions, report, required, withAdminStore } from './credentialCommandSupport.js';

/** `allow-principal` and `revoke-principal` take the same flags and differ in the change: one definition serves both. */
export function principalCommand(allow: boolean): StsCommand {
  const name = allow ? 'allow-principal' : 'revoke-principal';
  return {
    name,
    summary: allow
      ? 'Let a Microsoft Entra principal obtain Mixed Reality tokens for an account without its key'
      : 'Stop a Microsoft Entra principal from obtaining Mixed Reality tokens for an account',
    usage: [
      `Usage: npm run sts -- ${name} --account <guid> --tenant <tenant id> --object-id <object id> [--json]`,
      '',
      '  --account <guid>        the Mixed Reality account',
      '  --tenant <guid>         the principal\'s tenant (the tid claim of its Entra tokens)',
      '  --object-id <guid>      the principal\'s object id (oid): a managed identity\'s or service principal\'s',
      '                          object id (not its client id), or a user\'s',
      '  --json                  print the result as JSON',
      '',
      'Takes effect at once with the file store, within STS_SECRET_CACHE_MAX_AGE_SECONDS with Key Vault.',
      ...(allow ? [] : ['Tokens already issued to the principal stay valid until they expire.']),
    ].join('\n'),
    async run(args) {
      const options = parseOptions(args, {
        account: { type: 'string' },
        tenant: { type: 'string' },
        'object-id': { type: 'string' },
        ...JSON_FLAG,
      });
      const accountId = required(options.account, '--account');
      const tenant = required(options.tenant, '--tenant');
      const objectId = required(options['object-id'], '--object-id');
      return withAdminStore(async ({ store, description }) => {
        const principal = parsePrincipal(tenant, objectId);
        const change = allow ? await allowPrincipal(store, accountId, principal) : await revokePrincipal(store, accountId, principal);
        const state = allow ? 'allowed' : 'not allowed';
        report(options.json, { account: change.record.accountId, principal, allowed: allow, changed: change.changed }, [
          `Principal ${describePrincipal(principal)} ${change.changed ? 'is now' : 'was already'} ${state} on Mixed Reality account ${change.record.accountId} in ${description}.`,
        ]);
        return 0;
      });
    },
  };
}
