import { createCognitiveResource } from '../credentials/provisioning.js';
import type { StsCommand } from '../command.js';
import { JSON_FLAG, parseOptions, report, required, table, withAdminStore } from './credentialCommandSupport.js';

/** `create-cognitive`: a Cognitive Services resource (two new subscription keys shown once). */
export const command: StsCommand = {
  name: 'create-cognitive',
  summary: 'Create a Cognitive Services resource (prints its two new keys once)',
  usage: [
    'Usage: npm run sts -- create-cognitive --name <name> --region <region> --kind <kind> [options] [--json]',
    '',
    '  --name <name>              resource name: 2-64 letters, digits, hyphens',
    '  --region <region>          e.g. eastus',
    '  --kind <kind>              resource kind, e.g. SpeechServices, Face, TextTranslation',
    '  --product-id <id>          `product-id` claim (default <kind>.S0)',
    '  --limited-access           may issue limited access tokens (issueLimitedAccessToken)',
    '  --feature-flags <a,b>      feature flags it may grant, e.g. Face.Identification,Face.Verification',
    '  --json                     print the result as JSON',
  ].join('\n'),
  async run(args) {
    const options = parseOptions(args, {
      name: { type: 'string' },
      region: { type: 'string' },
      kind: { type: 'string' },
      'product-id': { type: 'string' },
      'limited-access': { type: 'boolean' },
      'feature-flags': { type: 'string' },
      ...JSON_FLAG,
    });
    const name = required(options.name, '--name');
    const region = required(options.region, '--region');
    const resourceKind = required(options.kind, '--kind');
    const flags = (options['feature-flags'] ?? '')
      .split(',')
      .map((f) => f.trim())
      .filter(Boolean);
    return withAdminStore(async ({ store, description }) => {
      const resource = await createCognitiveResource(store, {
        name,
        region,
        resourceKind,
        ...(options['product-id'] !== undefined ? { productId: options['product-id'] } : {}),
        limitedAccessTokens: options['limited-access'] ?? false,
        grantableFeatureFlags: flags,
      });
      report(options.json, resource, [
        `Created Cognitive Services resource ${resource.name} in ${description}.`,
        ...table([
          ['region', resource.region],
          ['kind', resource.resourceKind],
          ['product id', resource.productId],
          [
            'limited access',
            resource.limitedAccessTokens
              ? `yes${flags.length ? ` (${resource.grantableFeatureFlags.join(', ')})` : ''}`
              : 'no',
          ],
          ['key 1', resource.keys[0]],
          ['key 2', resource.keys[1]],
        ]),
        'The keys are shown once; `show-key` prints one again on request.',
      ]);
      return 0;
    });
  },
};
