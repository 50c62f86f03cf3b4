import {
  allowPrincipal,
  describeHolder,
  describePrincipal,
  parsePrincipal,
  revokePrincipal,
  type PrincipalHolder,
} from '../credentials/principalProvisioning.js';
import { UsageError, type StsCommand } from '../command.js';
import { JSON_FLAG, parseOptions, report, required, withAdminStore } from './credentialCommandSupport.js';

/** `allow-principal` and `revoke-principal` take the same flags and differ in the change: one definition serves both. */
export function principalCommand(allow: boolean): StsCommand {
  const name = allow ? 'allow-principal' : 'revoke-principal';
  return {
    name,
    summary: allow
      ? 'Let a Microsoft Entra principal obtain tokens for an account or Cognitive resource without its key'
      : 'Stop a Microsoft Entra principal from obtaining tokens for an account or Cognitive resource',
    usage: [
      `Usage: npm run sts -- ${name} (--account <guid> | --resource <name>)`,
      '         --tenant <tenant id> --object-id <object id> [--json]',
      '',
      '  --account <guid>        the Mixed Reality account (GET /accounts/{id}/token)',
      '  --resource <name>       the Cognitive Services resource (issueToken and issueLimitedAccessToken',
      '                          with ?resource=<name>)',
      "  --tenant <guid>         the principal's tenant (the tid claim of its Entra tokens)",
      "  --object-id <guid>      the principal's object id (oid): a managed identity's or service principal's",
      "                          object id (not its client id), or a user's",
      '  --json                  print the result as JSON',
      '',
      'Takes effect at once with the file store, within STS_SECRET_CACHE_MAX_AGE_SECONDS with Key Vault.',
      ...(allow ? [] : ['Tokens already issued to the principal stay valid until they expire.']),
    ].join('\n'),
    async run(args) {
      const options = parseOptions(args, {
        account: { type: 'string' },
        resource: { type: 'string' },
        tenant: { type: 'string' },
        'object-id': { type: 'string' },
        ...JSON_FLAG,
      });
      if ((options.account === undefined) === (options.resource === undefined)) {
        throw new UsageError('Give exactly one of --account <guid> and --resource <name>');
      }
      const holder: PrincipalHolder =
        options.resource !== undefined
          ? { cognitiveResource: options.resource }
          : required(options.account, '--account');
      const tenant = required(options.tenant, '--tenant');
      const objectId = required(options['object-id'], '--object-id');
      return withAdminStore(async ({ store, description }) => {
        const principal = parsePrincipal(tenant, objectId);
        const change = allow
          ? await allowPrincipal(store, holder, principal)
          : await revokePrincipal(store, holder, principal);
        const state = allow ? 'allowed' : 'not allowed';
        const target =
          change.record.kind === 'mixedRealityAccount'
            ? { account: change.record.accountId }
            : { resource: change.record.name };
        report(options.json, { ...target, principal, allowed: allow, changed: change.changed }, [
          `Principal ${describePrincipal(principal)} ${change.changed ? 'is now' : 'was already'} ${state} ` +
            `on ${describeHolder(change.record)} in ${description}.`,
        ]);
        return 0;
      });
    },
  };
}
