import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../shared/config.js';
import { tokenFlowNames, type TokenFlowName } from '../../shared/flowCatalogue.js';
import { ensureDemoCredentials, type DemoCredentials } from '../../tools/demoCredentials.js';
import { demoRequests, issuedTokenOf } from '../flows/demoRequests.js';
import { APP_ROOT_ENV, snapshotCompiledApp } from './appSnapshot.js';

/**
 * What every part of the benchmark shares: a temp embedded store holding the demo credentials (created with
 * the same bootstrap as `npm start`), the requests each flow is loaded with, and the environment of the
 * server processes.
 */

/** The issuer every server signs as (configuration, as in production; never the request URL). */
export const BENCH_ISSUER = 'https://sts.bench.example/';

/** One request, as the load generator sends it again and again. */
export interface BenchRequest {
  readonly method: 'GET' | 'POST';
  /** Path and query. */
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
  /** Route parameters, as the host binds them (for the in-process calls). */
  readonly params: Record<string, string>;
  /** True when a response body is a token of this flow (checked once before loading). */
  readonly looksIssued: (body: string) => boolean;
}

/** The benchmarked flows: the catalogue's token flows, by their function names. */
export type FlowId = TokenFlowName;

export interface BenchFixtures {
  readonly storePath: string;
  /** The private copy of the compiled app every process imports (see `appSnapshot.ts`). */
  readonly appRoot: string;
  readonly credentials: DemoCredentials;
  readonly requests: Readonly<Record<FlowId, BenchRequest>>;
  /** The environment of a benchmark child: the parent's, minus any STS/vault/identity setting, plus `extra`. */
  childEnv(extra?: Record<string, string>): NodeJS.ProcessEnv;
  remove(): Promise<void>;
}

/** Settings a child must not inherit from the shell that started the benchmark. */
const FOREIGN_SETTINGS = /^(STS_|KEY_VAULT_|AZURE_|IDENTITY_|MSI_|WEBSITE_|NODE_EXTRA_CA_CERTS$|NODE_OPTIONS$)/;

/** Snapshots the compiled app and creates the temp store with demo credentials; `remove()` deletes both. */
export async function createBenchFixtures(): Promise<BenchFixtures> {
  const directory = await mkdtemp(join(tmpdir(), 'sts-bench-'));
  const storePath = join(directory, 'secrets.json');
  const bootstrap = await ensureDemoCredentials(
    loadConfig({ STS_LOCAL_STORE_PATH: storePath, STS_LEDGER_MODE: 'off', STS_ISSUER: BENCH_ISSUER }),
  );
  if (bootstrap.outcome !== 'created') throw new Error(`demo credentials were not created (${bootstrap.outcome})`);
  const { credentials } = bootstrap;
  const snapshot = await snapshotCompiledApp();
  // This process imports compiled modules too (cold start reads the function list): from the same copy.
  process.env[APP_ROOT_ENV] = snapshot.root;
  const requests = Object.fromEntries(
    tokenFlowNames.map((flow) => {
      const { method, path, headers, body, params } = demoRequests[flow](credentials);
      const request: BenchRequest = {
        method,
        path,
        headers: { ...headers },
        ...(body === undefined ? {} : { body }),
        params: { ...params },
        looksIssued: (answer) => issuedTokenOf[flow](answer) !== undefined,
      };
      return [flow, request];
    }),
  ) as Record<FlowId, BenchRequest>;

  return {
    storePath,
    appRoot: snapshot.root,
    credentials,
    requests,
    childEnv(extra = {}) {
      const env: NodeJS.ProcessEnv = {};
      for (const [name, value] of Object.entries(process.env)) if (!FOREIGN_SETTINGS.test(name)) env[name] = value;
      return {
        ...env,
        STS_LOCAL_STORE_PATH: storePath,
        STS_ISSUER: BENCH_ISSUER,
        STS_LEDGER_MODE: 'off',
        [APP_ROOT_ENV]: snapshot.root,
        ...extra,
      };
    },
    remove: async () => {
      await rm(directory, { recursive: true, force: true });
      await snapshot.remove();
    },
  };
}
