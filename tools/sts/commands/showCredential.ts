import { credentialRefFrom, readCredential, summariseCredential } from '../credentials/provisioning.js';
import type { StsCommand } from '../command.js';
import {
  CREDENTIAL_FLAGS,
  CREDENTIAL_USAGE,
  JSON_FLAG,
  parseOptions,
  report,
  table,
  withAdminStore,
} from './credentialCommandSupport.js';

/** `show`: one credential's settings (Entra principals and upstream endpoint included), never a key. */
export const command: StsCommand = {
  name: 'show',
  summary: "Show one credential's settings and allowed Entra principals (never prints keys)",
  usage: [
    'Usage: npm run sts -- show (--account <guid> | --cognitive <name> | --wrap-issuer <ns>/<name>) [--json]',
    '',
    CREDENTIAL_USAGE,
    '  --json                           print the credential as JSON',
  ].join('\n'),
  async run(args) {
    const options = parseOptions(args, { ...CREDENTIAL_FLAGS, ...JSON_FLAG });
    return withAdminStore(async ({ store, description }) => {
      const ref = credentialRefFrom({
        account: options.account,
        cognitive: options.cognitive,
        wrapIssuer: options['wrap-issuer'],
      });
      const record = await readCredential(store, ref);
      const { principals: _listed, ...details } = summariseCredential(record).details;
      const allowedPrincipals =
        record.kind === 'mixedRealityAccount' || record.kind === 'cognitiveResource'
          ? (record.allowedPrincipals ?? [])
          : undefined;
      const upstream = record.upstream?.endpoint;
      const document = {
        kind: record.kind,
        id: summariseCredential(record).id,
        enabled: record.enabled,
        details,
        ...(upstream ? { upstream } : {}),
        ...(allowedPrincipals ? { allowedPrincipals } : {}),
      };
      const lines = [
        `${document.id} in ${description}:`,
        ...table([
          ['kind', record.kind],
          ['state', record.enabled ? 'enabled' : 'DISABLED'],
          ...Object.entries(details),
          ...(upstream ? ([['upstream', upstream]] as const) : []),
        ]),
      ];
      if (allowedPrincipals) {
        lines.push(
          `  Entra principals allowed without a key (tenant/object id):${allowedPrincipals.length === 0 ? ' (none)' : ''}`,
        );
        for (const p of allowedPrincipals) lines.push(`    ${p.tenantId}/${p.objectId}`);
      }
      report(options.json, document, lines);
      return 0;
    });
  },
};
