import { listCredentials } from '../credentials/provisioning.js';
import type { StsCommand } from '../command.js';
import { JSON_FLAG, parseOptions, report, withAdminStore } from './credentialCommandSupport.js';

const KIND_LABEL = {
  mixedRealityAccount: 'mixed-reality',
  cognitiveResource: 'cognitive',
  wrapIssuer: 'wrap-issuer',
} as const;

/** `list`: every credential and signing key version, never a key. */
export const command: StsCommand = {
  name: 'list',
  summary: 'List credentials and signing key versions (never prints keys)',
  usage: ['Usage: npm run sts -- list [--json]', '', '  --json   print the listing as JSON'].join('\n'),
  async run(args) {
    const options = parseOptions(args, { ...JSON_FLAG });
    return withAdminStore(async ({ store, description }) => {
      const listing = await listCredentials(store);
      const lines = [`Credentials in ${description}:`];
      if (listing.credentials.length === 0) lines.push('  (none)');
      for (const c of listing.credentials) {
        const details = Object.entries(c.details)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        lines.push(`  ${KIND_LABEL[c.kind].padEnd(13)} ${c.id}  ${c.enabled ? 'enabled' : 'DISABLED'}  ${details}`);
      }
      if (listing.wrapNamespaces.length > 0) lines.push(`WRAP namespaces: ${listing.wrapNamespaces.join(', ')}`);
      lines.push(`Cognitive key index entries: ${listing.cognitiveKeyIndexEntries}`);
      lines.push('Signing key versions (newest first):');
      if (listing.signingKeys.length === 0) lines.push('  (none)');
      for (const k of listing.signingKeys) {
        lines.push(
          `  ${k.version}  ${k.alg}  ${k.enabled ? 'enabled' : 'disabled'}  created ${k.createdOn.toISOString()}`,
        );
      }
      if (listing.unreadable.length > 0) lines.push(`Unreadable secrets: ${listing.unreadable.join(', ')}`);
      report(options.json, listing, lines);
      return 0;
    });
  },
};
