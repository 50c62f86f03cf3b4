import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HttpResponseInit } from '@azure/functions';
import { Agent, request } from 'undici';
import { startLocalHost, type HttpFunctionLike, type RunningLocalHost } from '../../tools/localHost/localHost.js';
import { createSetUpstreamCommand } from '../../tools/sts/commands/setUpstream.js';
import { loadConfig } from '../../shared/config.js';
import { CredentialDirectory } from '../../shared/credentials/credentialDirectory.js';
import {
  createCognitiveResource,
  createMixedRealityAccount,
  createWrapIssuer,
  ensureSigningKey,
} from '../../tools/sts/credentials/provisioning.js';
import {
  parseRecord,
  type CognitiveResource,
  type MixedRealityAccount,
  type WrapIssuer,
} from '../../shared/credentials/records.js';
import { setCredentialUpstream } from '../../tools/sts/credentials/upstreamProvisioning.js';
import { vaultLayout } from '../../shared/credentials/vaultLayout.js';
import type { Ledger, LedgerEntry } from '../../shared/ledger/ledger.js';
import { CachedSecretStore } from '../../shared/secrets/cachedSecretStore.js';
import { FileSecretStore } from '../../shared/secrets/fileSecretStore.js';
import { createServices, type StsServices } from '../../shared/services.js';
import { createServiceUpstreamTokens } from '../../shared/upstream/serviceUpstreamTokens.js';
import { UpstreamTokenCache } from '../../shared/upstream/upstreamTokenCache.js';
import { importFunctionFiles } from '../support/localHostFixture.js';
import { startUpstreamStub, type UpstreamStub, type UpstreamStubCredentials } from '../support/upstreamStub.js';
import { loopbackHostPolicy } from './loopbackHostPolicy.js';
import { upstreamTestTls, type UpstreamTestTls } from './upstreamTestTls.js';

/**
 * Two instances of this STS in one process, for the upstream-mode tests (docs/upstream.md):
 *
 * - **azure**, playing the real Azure STSs: the real function definitions on the local host over HTTPS
 *   (certificate from the test CA), with its own temp store of "real" credentials and its own services (each
 *   handler bound to them with `definition.handlerFor`). A thin wrapper counts its calls and has two
 *   fault switches (slow, any status with `Retry-After`).
 * - **ours**, the STS under test: the same definitions on the local host (HTTP), bound to its own services
 *   over a temp store of client credentials, some switched to upstream mode (one with the
 *   admin CLI's `set-upstream`, run in process). Its secret store is cached (as in front of Key Vault, with
 *   a long max age) so that a rotated real key is only found by the key re-read after an upstream 401.
 * - the phase-1 **stub** (`test/support/upstreamStub.ts`), for the faults a handler cannot produce
 *   (connection reset, a token without `exp`), behind one more credential of ours.
 *
 * Both instances, the stub and the tests share one clock, moved only by `advance`.
 */

export const START = new Date('2026-03-01T09:30:00.000Z');
export const AZURE_ENV = {
  STS_ISSUER: 'https://sts.azure.test.example/',
  STS_AUDIENCE_MIXED_REALITY: 'https://mr.azure.test.example/',
  STS_AUDIENCE_COGNITIVE: 'urn:ms.speechservices.{region}',
  STS_WRAP_ISSUER: 'https://contoso-sb.accesscontrol.azure.test.example/',
  STS_LEDGER_MODE: 'off',
} as const;
export const OURS_ENV = {
  STS_ISSUER: 'https://sts.ours.test.example/',
  STS_AUDIENCE_MIXED_REALITY: 'https://mr.ours.test.example/',
  STS_AUDIENCE_COGNITIVE: 'urn:ours.speechservices.{region}',
  STS_WRAP_ISSUER: 'https://sb.accesscontrol.ours.test.example/',
  STS_LEDGER_MODE: 'off',
  // As in front of Key Vault: records and real keys stay cached, so only the 401 path finds a rotated key.
  STS_SECRET_CACHE_MAX_AGE_SECONDS: '86400',
} as const;
export const FACE_TARGET =
  '/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/client-rg/providers/Microsoft.CognitiveServices/accounts/client-face';
export const STUB_KEYS: Readonly<UpstreamStubCredentials> = {
  mixedReality: {
    accountId: '9a1c3f52-8e7b-4d2a-b6c4-0f1e2d3c4b5a',
    accountKey: 'c3R1Yi1tci1hY2NvdW50LWtleS1mb3ItdGVzdHMtb25seQ==',
  },
  cognitiveKey: '5b0f3c2a9d8e7f6a5b4c3d2e1f0a9b8c',
  wrap: { issuerName: 'owner', password: 'c3R1Yi13cmFwLXBhc3N3b3JkLWZvci10ZXN0cy1vbmx5' },
};

export type AzureFault =
  | { readonly kind: 'slow'; readonly ms: number }
  | { readonly kind: 'status'; readonly status: number; readonly retryAfter?: string };

export interface ObservedResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface StsPair {
  readonly now: () => Date;
  advance(seconds: number): void;
  readonly azure: {
    readonly url: string;
    readonly services: StsServices;
    /** The "real" credentials' store (rotate real keys here). */
    readonly store: FileSecretStore;
    readonly ledgerRows: LedgerEntry[];
    readonly logLines: string[];
    readonly mixedReality: MixedRealityAccount;
    readonly speech: CognitiveResource;
    readonly face: CognitiveResource;
    readonly owner: WrapIssuer;
    /** Base64 key that signs the `contoso` namespace's SWTs. */
    readonly contosoSigningKey: string;
    /** Requests that reached a handler, by function name. */
    calls(name?: string): number;
    setFault(fault: AzureFault | undefined): void;
    resetCalls(): void;
  };
  readonly ours: {
    readonly url: string;
    readonly services: StsServices;
    /** The file store itself (provisioning writes here); `cached` is what the functions read. */
    readonly store: FileSecretStore;
    readonly cached: CachedSecretStore;
    readonly upstreamCache: UpstreamTokenCache;
    readonly ledgerRows: LedgerEntry[];
    readonly logLines: string[];
    /** The upstream client's and token source's log lines. */
    readonly upstreamLog: string[];
    /** Minting locally. */
    readonly local: {
      readonly mixedReality: MixedRealityAccount;
      readonly speech: CognitiveResource;
      readonly face: CognitiveResource;
      readonly owner: WrapIssuer;
    };
    /** In upstream mode (azure). The Mixed Reality account was switched with the CLI. */
    readonly upstream: {
      readonly mixedReality: MixedRealityAccount;
      readonly speech: CognitiveResource;
      readonly face: CognitiveResource;
      readonly owner: WrapIssuer;
    };
    /** In upstream mode, against the stub. */
    readonly stubbed: { readonly mixedReality: MixedRealityAccount; readonly speech: CognitiveResource };
  };
  readonly stub: UpstreamStub;
  /** Every response the tests received from ours. */
  readonly responses: ObservedResponse[];
  /** Sends a request to ours and records the response. */
  send(
    method: 'GET' | 'POST',
    path: string,
    headers?: Record<string, string>,
    body?: string,
  ): Promise<ObservedResponse>;
  close(): Promise<void>;
}

export async function startStsPair(): Promise<StsPair> {
  let nowMs = START.getTime();
  const clock = () => new Date(nowMs);
  const cleanups: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  };
  try {
    const tls: UpstreamTestTls = await upstreamTestTls();
    cleanups.push(() => tls.dispose());
    const dir = await mkdtemp(join(tmpdir(), 'sts-upstream-pair-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const definitions = (await importFunctionFiles()).map((file) => file.definition);

    // ---- azure: the "real" STS ----
    const azureStorePath = join(dir, 'azure.json');
    const azureStore = new FileSecretStore(azureStorePath, clock);
    await ensureSigningKey(azureStore);
    const azureMr = await createMixedRealityAccount(azureStore, { accountDomain: 'eastus2.mixedreality.azure.com' });
    const azureSpeech = await createCognitiveResource(azureStore, {
      name: 'speech-real',
      region: 'eastus',
      resourceKind: 'SpeechServices',
    });
    const azureFace = await createCognitiveResource(azureStore, {
      name: 'face-isv-real',
      region: 'westus',
      resourceKind: 'Face',
      limitedAccessTokens: true,
      grantableFeatureFlags: ['Face.Identification', 'Face.Verification'],
    });
    const azureOwner = await createWrapIssuer(azureStore, { namespace: 'contoso', name: 'owner' });
    const contoso = parseRecord(
      (await azureStore.getSecret(vaultLayout.wrapNamespace('contoso')))?.value ?? '',
      'wrapNamespace',
    );
    if (!contoso) throw new Error('the azure contoso namespace was not written');

    const azureBase = await createServices(loadConfig({ ...AZURE_ENV, STS_LOCAL_STORE_PATH: azureStorePath }), clock);
    const azureLedgerRows: LedgerEntry[] = [];
    // Credentials read through `azureStore` itself, so a rotation written there is seen at once.
    const azureServices: StsServices = {
      ...azureBase,
      secrets: azureStore,
      credentials: new CredentialDirectory(azureStore),
      ledger: capturingLedger(azureLedgerRows),
    };
    cleanups.push(() => azureBase.upstream.close());
    const azureCalls: string[] = [];
    let azureFault: AzureFault | undefined;
    const timers = new Set<NodeJS.Timeout>();
    const azureDefinitions = definitions.map((definition): HttpFunctionLike => {
      const azureHandler = definition.handlerFor(azureServices);
      return {
        ...definition,
        handler: async (req, context) => {
          azureCalls.push(definition.name);
          const fault = azureFault;
          if (fault?.kind === 'status') {
            const answer: HttpResponseInit = {
              status: fault.status,
              headers: fault.retryAfter ? { 'Retry-After': fault.retryAfter } : {},
              body: '',
            };
            return answer;
          }
          if (fault?.kind === 'slow') {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(() => {
                timers.delete(timer);
                resolve();
              }, fault.ms);
              timers.add(timer);
            });
          }
          return azureHandler(req, context);
        },
      };
    });
    const azureLog: string[] = [];
    const azureHost: RunningLocalHost = await startLocalHost({
      definitions: azureDefinitions,
      host: '127.0.0.1',
      port: 0,
      https: tls.server,
      shutdownGraceMs: 500,
      log: (line) => azureLog.push(line),
    });
    cleanups.push(async () => {
      for (const timer of timers) clearTimeout(timer);
      await azureHost.close();
    });

    // ---- the stub, for faults a handler cannot produce ----
    const stub = await startUpstreamStub({ tls: tls.server, clock, credentials: structuredClone(STUB_KEYS) });
    cleanups.push(() => stub.close());

    // ---- ours: the STS under test ----
    const oursStorePath = join(dir, 'ours.json');
    const oursStore = new FileSecretStore(oursStorePath, clock);
    await ensureSigningKey(oursStore);
    const localMr = await createMixedRealityAccount(oursStore, { accountDomain: 'westeurope.mixedreality.azure.com' });
    const upstreamMr = await createMixedRealityAccount(oursStore, { accountDomain: 'eastus2.mixedreality.azure.com' });
    const stubbedMr = await createMixedRealityAccount(oursStore, { accountDomain: 'eastus2.mixedreality.azure.com' });
    const localSpeech = await createCognitiveResource(oursStore, {
      name: 'speech-local',
      region: 'eastus',
      resourceKind: 'SpeechServices',
    });
    await createCognitiveResource(oursStore, { name: 'speech', region: 'eastus', resourceKind: 'SpeechServices' });
    await createCognitiveResource(oursStore, {
      name: 'speech-stubbed',
      region: 'eastus',
      resourceKind: 'SpeechServices',
    });
    const faceGrants = { resourceKind: 'Face', region: 'westus', limitedAccessTokens: true } as const;
    const localFace = await createCognitiveResource(oursStore, {
      name: 'face-local',
      ...faceGrants,
      grantableFeatureFlags: ['Face.Identification'],
    });
    // Ours may grant Identification only, although the real key could grant Verification too.
    await createCognitiveResource(oursStore, {
      name: 'face',
      ...faceGrants,
      grantableFeatureFlags: ['Face.Identification'],
    });
    const localOwner = await createWrapIssuer(oursStore, { namespace: 'fabrikam', name: 'owner' });
    // Ours lets this issuer ask for the orders queue only; the real issuer may ask for the whole namespace.
    await createWrapIssuer(oursStore, {
      namespace: 'contoso',
      name: 'owner',
      scopes: ['http://contoso.servicebus.windows.net/orders'],
    });

    // The Mixed Reality account is switched with the admin CLI, in process, against ours' file store.
    const savedEnv = { ...process.env };
    try {
      process.env = { ...savedEnv, STS_LOCAL_STORE_PATH: oursStorePath, REAL_MR_ACCOUNT_KEY: azureMr.keys[0] };
      delete process.env.KEY_VAULT_URL;
      const printed: string[] = [];
      const log = console.log;
      console.log = (...parts: unknown[]) => void printed.push(parts.join(' '));
      let code: number;
      try {
        code = await createSetUpstreamCommand(loopbackHostPolicy).run([
          '--account',
          upstreamMr.accountId,
          '--endpoint',
          azureHost.url,
          '--key-env',
          'REAL_MR_ACCOUNT_KEY',
          '--upstream-account',
          azureMr.accountId,
        ]);
      } finally {
        console.log = log;
      }
      if (code !== 0 || printed.join('\n').includes(azureMr.keys[0]))
        throw new Error(`set-upstream failed or printed the key: ${printed.join('\n')}`);
    } finally {
      process.env = savedEnv;
    }
    const switched = async <T>(work: Promise<{ record: unknown }>): Promise<T> => (await work).record as T;
    const oursUpstreamSpeech = await switched<CognitiveResource>(
      setCredentialUpstream(
        oursStore,
        { kind: 'cognitiveResource', name: 'speech' },
        { endpoint: azureHost.url, key: azureSpeech.keys[0] },
        { hostPolicy: loopbackHostPolicy },
      ),
    );
    const oursUpstreamFace = await switched<CognitiveResource>(
      setCredentialUpstream(
        oursStore,
        { kind: 'cognitiveResource', name: 'face' },
        { endpoint: azureHost.url, key: azureFace.keys[0] },
        { hostPolicy: loopbackHostPolicy },
      ),
    );
    const oursUpstreamOwner = await switched<WrapIssuer>(
      setCredentialUpstream(
        oursStore,
        { kind: 'wrapIssuer', namespace: 'contoso', name: 'owner' },
        { endpoint: `${azureHost.url}/WRAPv0.9`, key: azureOwner.keys[1] },
        { hostPolicy: loopbackHostPolicy },
      ),
    );
    const oursStubbedSpeech = await switched<CognitiveResource>(
      setCredentialUpstream(
        oursStore,
        { kind: 'cognitiveResource', name: 'speech-stubbed' },
        { endpoint: stub.url, key: STUB_KEYS.cognitiveKey },
        { hostPolicy: loopbackHostPolicy },
      ),
    );
    const oursStubbedMr = await switched<MixedRealityAccount>(
      setCredentialUpstream(
        oursStore,
        { kind: 'mixedRealityAccount', accountId: stubbedMr.accountId },
        {
          endpoint: stub.url,
          key: STUB_KEYS.mixedReality.accountKey,
          upstreamAccountId: STUB_KEYS.mixedReality.accountId,
        },
        { hostPolicy: loopbackHostPolicy },
      ),
    );
    const oursUpstreamMr = parseRecord(
      (await oursStore.getSecret(vaultLayout.mixedRealityAccount(upstreamMr.accountId)))?.value ?? '',
      'mixedRealityAccount',
    );
    if (!oursUpstreamMr?.upstream) throw new Error('set-upstream did not switch the account');

    const oursConfig = loadConfig({ ...OURS_ENV, STS_LOCAL_STORE_PATH: oursStorePath });
    const oursBase = await createServices(oursConfig, clock);
    cleanups.push(() => oursBase.upstream.close());
    // The cache wraps `oursStore`, where provisioning writes, so a write is in the store at once (and in the
    // cache only when its entry is dropped or re-read).
    const cached = new CachedSecretStore(oursStore, oursConfig.secretCache, clock);
    const oursLedgerRows: LedgerEntry[] = [];
    const oursLedger = capturingLedger(oursLedgerRows);
    const upstreamLog: string[] = [];
    const upstreamCache = new UpstreamTokenCache({ clock });
    const oursUpstream = createServiceUpstreamTokens({
      secrets: cached,
      clock,
      ledger: oursLedger,
      log: (line) => upstreamLog.push(line),
      cache: upstreamCache,
      client: tls.clientCa ? { testTrustedCa: tls.clientCa } : {},
      hostPolicy: loopbackHostPolicy,
    });
    cleanups.push(() => oursUpstream.close());
    const oursServices: StsServices = {
      ...oursBase,
      secrets: cached,
      credentials: new CredentialDirectory(cached),
      ledger: oursLedger,
      upstream: oursUpstream,
    };
    const oursDefinitions = definitions.map((definition): HttpFunctionLike => ({
      ...definition,
      handler: definition.handlerFor(oursServices),
    }));
    const oursLog: string[] = [];
    const oursHost = await startLocalHost({
      definitions: oursDefinitions,
      host: '127.0.0.1',
      port: 0,
      https: false,
      shutdownGraceMs: 500,
      log: (line) => oursLog.push(line),
    });
    cleanups.push(() => oursHost.close());

    const agent = new Agent({ connections: 1_000, keepAliveTimeout: 1_000 });
    cleanups.push(() => agent.close());
    const responses: ObservedResponse[] = [];

    return {
      now: clock,
      advance(seconds) {
        nowMs += seconds * 1000;
      },
      azure: {
        url: azureHost.url,
        services: azureServices,
        store: azureStore,
        ledgerRows: azureLedgerRows,
        logLines: azureLog,
        mixedReality: azureMr,
        speech: azureSpeech,
        face: azureFace,
        owner: azureOwner,
        contosoSigningKey: contoso.signingKey,
        calls: (name) => (name ? azureCalls.filter((call) => call === name).length : azureCalls.length),
        setFault(fault) {
          azureFault = fault;
        },
        resetCalls() {
          azureCalls.length = 0;
        },
      },
      ours: {
        url: oursHost.url,
        services: oursServices,
        store: oursStore,
        cached,
        upstreamCache,
        ledgerRows: oursLedgerRows,
        logLines: oursLog,
        upstreamLog,
        local: { mixedReality: localMr, speech: localSpeech, face: localFace, owner: localOwner },
        upstream: {
          mixedReality: oursUpstreamMr,
          speech: oursUpstreamSpeech,
          face: oursUpstreamFace,
          owner: oursUpstreamOwner,
        },
        stubbed: { mixedReality: oursStubbedMr, speech: oursStubbedSpeech },
      },
      stub,
      responses,
      async send(method, path, headers = {}, body) {
        const answer = await request(`${oursHost.url}${path}`, { method, headers, body, dispatcher: agent });
        const observed: ObservedResponse = {
          status: answer.statusCode,
          headers: Object.fromEntries(
            Object.entries(answer.headers).map(([name, value]) => [
              name,
              Array.isArray(value) ? value.join(', ') : String(value),
            ]),
          ),
          body: await answer.body.text(),
        };
        responses.push(observed);
        return observed;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

function capturingLedger(rows: LedgerEntry[]): Ledger {
  return {
    record: async (entry) => {
      rows.push(entry);
    },
    close: async () => {},
  };
}
