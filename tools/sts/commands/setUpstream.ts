import { readFile } from 'node:fs/promises';
import { credentialRefFrom, describeCredential } from '../credentials/provisioning.js';
import { setCredentialUpstream } from '../credentials/upstreamProvisioning.js';
import { azureHostPolicy, type UpstreamHostPolicy } from '../../../shared/upstream/upstreamHosts.js';
import { UsageError, type StsCommand } from '../command.js';
import {
  CREDENTIAL_CHOICE,
  CREDENTIAL_FLAGS,
  CREDENTIAL_USAGE,
  JSON_FLAG,
  parseOptions,
  report,
  table,
  withAdminStore,
} from './credentialCommandSupport.js';

/** A key file is a few dozen bytes; anything much larger is a wrong file, refused before it is read whole. */
const MAX_KEY_FILE_BYTES = 4_096;

/**
 * `set-upstream`: serve a credential's tokens from the real Azure STS (upstream mode, docs/upstream.md). The real key
 * is read from a file, stdin or an environment variable (never from the command line, where shells and `ps`
 * would keep it), stored as a vault secret, and never printed.
 */
export const command: StsCommand = createSetUpstreamCommand(azureHostPolicy);

/**
 * The command with a given host policy: the CLI uses the documented Azure hosts; tests build one that admits
 * their loopback stand-in (no flag or setting can).
 */
export function createSetUpstreamCommand(hostPolicy: UpstreamHostPolicy): StsCommand {
  return {
    name: 'set-upstream',
    summary: "Serve a credential's tokens from the real Azure STS, with the real key kept in the vault",
    usage: [
      `Usage: npm run sts -- set-upstream ${CREDENTIAL_CHOICE} --endpoint <https-url>`,
      '         (--key-file <path|-> | --key-env <VAR> | --secret-name <existing secret>) [--upstream-account <guid>] [--secret-name <name>] [--json]',
      '',
      CREDENTIAL_USAGE,
      '  --endpoint <url>                 the real STS, a documented host only: https://sts.<region>.mixedreality.azure.com',
      '                                   (Mixed Reality); https://<region>.api.cognitive.microsoft.com or',
      '                                   https://<name>.cognitiveservices.azure.com, .us/.cn clouds too (Cognitive, Face);',
      '                                   https://<ns>-sb.accesscontrol.windows.net (WRAP)',
      '  --key-file <path|->              file holding the real key (- = stdin): resource key, WRAP issuer password,',
      '                                   or Mixed Reality account key (with --upstream-account) or accountId:accountKey',
      '  --key-env <VAR>                  environment variable holding the real key',
      '  --upstream-account <guid>        Mixed Reality: the real account id (stored with the key)',
      '  --secret-name <name>             secret for the real key (default upstream-mr-…, upstream-cs-…, upstream-wrap-…;',
      '                                   another name needs the same prefix); without a key, a secret this command wrote',
      '  --json                           print the result as JSON',
      '',
      'Run it again with a new key to rotate the real key. Clients keep their own keys. Running instances switch within',
      'STS_SECRET_CACHE_MAX_AGE_SECONDS (Key Vault) or at once (file store). `clear-upstream` switches back.',
    ].join('\n'),
    async run(args) {
      const options = parseOptions(args, {
        ...CREDENTIAL_FLAGS,
        endpoint: { type: 'string' },
        'key-file': { type: 'string' },
        'key-env': { type: 'string' },
        'upstream-account': { type: 'string' },
        'secret-name': { type: 'string' },
        ...JSON_FLAG,
      });
      if (options.endpoint === undefined || options.endpoint === '') throw new UsageError('--endpoint is required');
      const endpoint = options.endpoint;
      if (options['key-file'] !== undefined && options['key-env'] !== undefined)
        throw new UsageError('Give --key-file or --key-env, not both');
      const key = await readKey(options['key-file'], options['key-env']);
      return withAdminStore(async ({ store, description }) => {
        const ref = credentialRefFrom(options);
        const result = await setCredentialUpstream(
          store,
          ref,
          { endpoint, key, upstreamAccountId: options['upstream-account'], secretName: options['secret-name'] },
          { hostPolicy },
        );
        const keyLine =
          result.keyVersion === undefined ? 'existing secret, not changed' : `new version ${result.keyVersion}`;
        report(
          options.json,
          {
            credential: ref,
            upstream: result.upstream,
            keyVersion: result.keyVersion ?? null,
            recordChanged: result.recordChanged,
          },
          [
            `${describeCredential(ref)} ${result.recordChanged ? 'now serves' : 'already served'} tokens from ${result.upstream.endpoint} (upstream mode) in ${description}.`,
            ...table([
              ['endpoint', result.upstream.endpoint],
              ['real key', `secret ${result.upstream.secretName} (${keyLine})`],
            ]),
            'The real key is never shown. Clients keep their own keys.',
          ],
        );
        return 0;
      });
    },
  };
}

/** The real key from `--key-file` (or stdin) or `--key-env`; undefined when neither is given. */
async function readKey(file: string | undefined, variable: string | undefined): Promise<string | undefined> {
  if (variable !== undefined) {
    const value = process.env[variable];
    if (!value) throw new UsageError(`Environment variable ${variable} is not set or empty`);
    return value;
  }
  if (file === undefined) return undefined;
  let bytes: Buffer;
  try {
    bytes = file === '-' ? await readStdin() : await readFile(file);
  } catch (error) {
    throw new UsageError(`Cannot read --key-file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (bytes.length > MAX_KEY_FILE_BYTES)
    throw new UsageError(`--key-file ${file} is larger than ${MAX_KEY_FILE_BYTES} bytes: not a key file`);
  return bytes.toString('utf8').trim();
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    chunks.push(buffer);
    if (size > MAX_KEY_FILE_BYTES) break;
  }
  return Buffer.concat(chunks);
}
