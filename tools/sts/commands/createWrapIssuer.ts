import { createWrapIssuer, parseWrapRights } from '../credentials/provisioning.js';
import type { StsCommand } from '../command.js';
import { JSON_FLAG, parseOptions, report, required, table, withAdminStore } from './credentialCommandSupport.js';

/** `create-wrap-issuer`: an ACS service identity (issuer name + key) for OAuth WRAP in one namespace. */
export const command: StsCommand = {
  name: 'create-wrap-issuer',
  summary: 'Create a WRAP issuer (service identity) in a namespace (prints its two new keys once)',
  usage: [
    'Usage: npm run sts -- create-wrap-issuer --namespace <ns> --name <issuer> [--scope <uri> ...] [--rights <list>] [--json]',
    '',
    '  --namespace <ns>     service namespace (DNS label), e.g. contoso',
    '  --name <issuer>      wrap_name, e.g. owner',
    '  --scope <uri>        relying-party scope prefix; repeat for several',
    '                       (default http://<ns>.servicebus.windows.net/)',
    '  --rights <list>      comma-separated from Listen,Manage,Send (default all three)',
    '  --json               print the result as JSON',
  ].join('\n'),
  async run(args) {
    const options = parseOptions(args, {
      namespace: { type: 'string' },
      name: { type: 'string' },
      scope: { type: 'string', multiple: true },
      rights: { type: 'string' },
      ...JSON_FLAG,
    });
    const namespace = required(options.namespace, '--namespace');
    const name = required(options.name, '--name');
    return withAdminStore(async ({ store, description }) => {
      const issuer = await createWrapIssuer(store, {
        namespace,
        name,
        ...(options.scope !== undefined ? { scopes: options.scope } : {}),
        ...(options.rights !== undefined ? { rights: parseWrapRights(options.rights) } : {}),
      });
      report(options.json, issuer, [
        `Created WRAP issuer ${issuer.namespace}/${issuer.name} in ${description}.`,
        ...table([
          ['scopes', issuer.scopes.join(' ')],
          ['rights', issuer.rights.join(',')],
          ['key 1', issuer.keys[0]],
          ['key 2', issuer.keys[1]],
        ]),
        'The keys are shown once; `show-key` prints one again on request.',
      ]);
      return 0;
    });
  },
};
