import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import {
  createCognitiveResource,
  createMixedRealityAccount,
  createWrapIssuer,
} from '../../tools/sts/credentials/provisioning.js';
import { KeyVaultSecretStore } from '../../shared/secrets/keyVaultSecretStore.js';
import { createServices, type StsServices } from '../../shared/services.js';
import { startAzuriteFixture, type AzuriteFixture } from '../support/azuriteFixture.js';
import { startKeyVaultTestServer, type KeyVaultTestServer } from '../../tooling/doubles/keyVaultTestServer.js';
import { startTestHost, type TestHost } from '../support/localHostFixture.js';
import { readLedgerEntities } from '../support/ledgerTables.js';
import { createTestCredentials, type TestCredentials } from '../support/testCredentials.js';
import {
  expectFlowErrorShape,
  flowRequest,
  sendHttp,
  TOKEN_FLOWS,
  type Answer,
  type ClientRequest,
  type TokenFlow,
} from './hardeningSupport.js';

/**
 * Fault injection (docs/hardening.md#failing-dependencies), end to end over HTTP through the local host, for all four flows at once:
 * the real Key Vault SDKs and managed identity against the Key Vault test server (latency beyond the vault
 * timeout, 429 storms, a flaky vault under load, a failing identity endpoint, an outage during a flood of
 * unknown credentials) and Azurite for the ledger (stopped while the vault is down too). The promise: warm
 * credentials keep being served, cold ones get 503 + Retry-After in the flow's own shape quickly, never a
 * 500 or a hang, recovery is automatic, and the ledger behaves per its mode.
 *
 * The single-flow cache behaviour (one vault read per credential, stale window, rotation) is covered by
 * test/keyVault/secretCacheEndToEnd.test.ts; this file covers the combinations and the HTTP-level shapes.
 */

/**
 * The app's vault timeout. Generous, so that a loaded machine never turns a slow first read (SDK load, token,
 * challenge) into a 503: no assertion here measures time; the faults are chosen so that only a time bound
 * can end a request (a vault slower than this, an identity endpoint that never answers).
 */
const VAULT_TIMEOUT_MS = 5_000;
const MAX_AGE = 300;
let vault: KeyVaultTestServer;
let admin: KeyVaultSecretStore;
let credentials: TestCredentials;
let nowMs = 0;
const clock = (): Date => new Date(nowMs);
const advance = (seconds: number): void => {
  nowMs += seconds * 1000;
};

beforeAll(async () => {
  vault = await startKeyVaultTestServer();
  process.env.IDENTITY_ENDPOINT = vault.identityEndpoint;
  process.env.IDENTITY_HEADER = vault.identityHeader;
  admin = new KeyVaultSecretStore({ vaultUrl: vault.vaultUrl, timeoutMs: 5_000 });
  // The test credentials, provisioned as the admin CLI does, then copied version by version into the vault.
  credentials = await createTestCredentials();
  for (const name of await credentials.store.listSecretNames()) {
    for (const version of [...(await credentials.store.getSecretVersions(name))].reverse()) {
      vault.seed(name, version.value, { contentType: version.contentType, enabled: version.enabled });
    }
  }
  nowMs = Date.now() + 1_000; // after the seeded signing key's creation second
});
afterAll(async () => {
  await vault.close();
  await credentials.remove();
});
afterEach(() => {
  vault.resetFaults();
  // Whatever the fault, the operator is never told a key.
  const keys = [
    ...credentials.mixedReality.account.keys,
    ...credentials.cognitive.speech.keys,
    ...credentials.cognitive.isvFace.keys,
    ...credentials.wrap.owner.keys,
    ...coldKeys,
  ];
  for (const line of warnings) for (const key of keys) expect(line).not.toContain(key);
});

/**
 * What the latest app told the operator (`createServices`' `warn`): a list of its own per {@link startApp}, so
 * a line an earlier test's app logs late never lands in a later test's list.
 */
let warnings: string[] = [];
/** The keys of every credential {@link coldRequests} created. */
const coldKeys: string[] = [];

/** The lines among {@link warnings} that start with `prefix` (one component's). */
const warningsOf = (prefix: string): string[] => warnings.filter((line) => line.startsWith(prefix));

/**
 * `lines` tell of each outage once and of its end once: "failing" and "answering again" lines alternate, a
 * failing one first. (A flaky dependency may have several short outages; none is told twice.)
 */
function expectOneLinePerEpisode(lines: readonly string[], failing: RegExp, recovered: RegExp): void {
  lines.forEach((line, i) => expect(line).toMatch(i % 2 === 0 ? failing : recovered));
}

const STORE_FAILING =
  /^secret store: DependencyUnavailableError .+; serving cached answers up to 3600 s past their max age until it answers$/;
const STORE_RECOVERED = /^secret store: answering again$/;

/** The app as configured for Key Vault, served over HTTP; `env` adds settings (ledger, identity). */
async function startApp(env: Record<string, string> = {}): Promise<{ host: TestHost; services: StsServices }> {
  const config = loadConfig({
    STS_ISSUER: 'https://sts.test.example/',
    STS_LEDGER_MODE: 'off',
    KEY_VAULT_URL: vault.vaultUrl,
    STS_VAULT_TIMEOUT_MS: String(VAULT_TIMEOUT_MS),
    STS_SECRET_CACHE_MAX_AGE_SECONDS: String(MAX_AGE),
    STS_SECRET_CACHE_MAX_STALE_SECONDS: '3600',
    ...env,
  });
  const told: string[] = [];
  const services = await createServices(config, clock, (line) => told.push(line));
  warnings = told;
  const host = await startTestHost({ services });
  return { host, services };
}

/** One valid request per flow for credentials created in the vault now: nothing of them is cached yet. */
async function coldRequests(): Promise<Record<TokenFlow, ClientRequest>> {
  const suffix = randomUUID().slice(0, 8);
  const account = await createMixedRealityAccount(admin, { accountDomain: 'westus2.mixedreality.azure.com' });
  const speech = await createCognitiveResource(admin, {
    name: `cold-speech-${suffix}`,
    region: 'eastus',
    resourceKind: 'SpeechServices',
  });
  const face = await createCognitiveResource(admin, {
    name: `cold-face-${suffix}`,
    region: 'westus',
    resourceKind: 'Face',
    limitedAccessTokens: true,
    grantableFeatureFlags: ['Face.Identification'],
  });
  const issuer = await createWrapIssuer(admin, { namespace: `cold${suffix}`, name: 'owner' });
  coldKeys.push(...account.keys, ...speech.keys, ...face.keys, ...issuer.keys);
  return {
    mixedRealityToken: {
      method: 'GET',
      path: `/accounts/${account.accountId}/token`,
      headers: { authorization: `Bearer ${account.accountId}:${account.keys[0]}` },
    },
    issueToken: {
      method: 'POST',
      path: '/sts/v1.0/issueToken',
      headers: { 'ocp-apim-subscription-key': speech.keys[0] },
      body: '',
    },
    issueLimitedAccessToken: {
      method: 'POST',
      path: '/sts/v1.0/issueLimitedAccessToken?expiredTime=600',
      headers: { 'ocp-apim-subscription-key': face.keys[0], 'content-type': 'application/json' },
      body: JSON.stringify({
        targetAzureResourceId: credentials.cognitive.speech.resourceId,
        featureFlags: ['Face.Identification'],
      }),
    },
    wrapToken: {
      method: 'POST',
      path: '/WRAPv0.9/',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        wrap_name: 'owner',
        wrap_password: issuer.keys[0],
        wrap_scope: `http://cold${suffix}.servicebus.windows.net/`,
      }).toString(),
    },
  };
}

/** The answer to `request` sent up to three times, the app's clock moved by each 503's Retry-After in between. */
async function servedHonouringRetryAfter(host: TestHost, request: ClientRequest): Promise<Answer> {
  let answer = await sendHttp(host.url, request);
  for (let retry = 0; retry < 2 && answer.status === 503; retry += 1) {
    advance(Number(answer.headers.get('retry-after')) || 1);
    answer = await sendHttp(host.url, request);
  }
  return answer;
}

/** Every flow answers 200 with its test credential (and the signing keys are loaded). */
async function warmUp(host: TestHost): Promise<void> {
  for (const flow of TOKEN_FLOWS) expect((await sendHttp(host.url, flowRequest(flow, credentials))).status).toBe(200);
  expect((await sendHttp(host.url, { method: 'GET', path: '/.well-known/jwks.json', headers: {} })).status).toBe(200);
}

describe('Key Vault faults over HTTP, all four flows', () => {
  it('a latency spike beyond the vault timeout: warm served at once, cold 503 within the timeout, recovery after', async () => {
    const cold = await coldRequests(); // created before the app lists the vault: listed, never read
    const { host } = await startApp();
    try {
      await warmUp(host);
      vault.faults.latencyMs = VAULT_TIMEOUT_MS * 4;

      // Warm answers come from the cache: not one request reaches the slow vault (else they would wait for it).
      const beforeWarm = vault.stats.vaultRequests;
      for (const flow of TOKEN_FLOWS)
        expect((await sendHttp(host.url, flowRequest(flow, credentials))).status).toBe(200);
      expect(vault.stats.vaultRequests).toBe(beforeWarm);
      // Cold answers are 503s: the vault would have answered 200 after its delay, so the vault timeout cut them short.
      const answers = await Promise.all(
        TOKEN_FLOWS.map(async (flow) => [flow, await sendHttp(host.url, cold[flow])] as const),
      );
      for (const [flow, answer] of answers) expectFlowErrorShape(flow, answer, 503);
      expect(vault.stats.vaultRequests).toBeGreaterThan(beforeWarm);
      const retryAfter = Math.max(...answers.map(([, answer]) => Number(answer.headers.get('retry-after'))));

      vault.resetFaults();
      advance(retryAfter);
      for (const flow of TOKEN_FLOWS) expect((await sendHttp(host.url, cold[flow])).status).toBe(200);
      // Four cold reads cut short at once: one line for the spike, one when the vault answers again.
      expect(warningsOf('secret store: ')).toEqual([
        'secret store: DependencyUnavailableError ERR_STS_DEPENDENCY_UNAVAILABLE: Key Vault did not answer in time;' +
          ' serving cached answers up to 3600 s past their max age until it answers',
        'secret store: answering again',
      ]);
    } finally {
      await host.close();
    }
  });

  it('a 429 storm: warm served, cold 503 with the vault’s Retry-After in each flow’s shape, the vault spared', async () => {
    const cold = await coldRequests(); // created before the app lists the vault: listed, never read
    const { host } = await startApp();
    try {
      await warmUp(host);
      vault.faults.throttleRetryAfterSeconds = 9;
      const throttledBefore = vault.stats.throttled;

      for (let round = 0; round < 5; round += 1) {
        for (const flow of TOKEN_FLOWS) {
          expect((await sendHttp(host.url, flowRequest(flow, credentials))).status).toBe(200);
          const answer = await sendHttp(host.url, cold[flow]);
          expectFlowErrorShape(flow, answer, 503);
          expect(Number(answer.headers.get('retry-after'))).toBeLessThanOrEqual(9);
        }
      }
      // One throttled call starts the backoff; 20 cold requests later the vault has seen hardly more.
      expect(vault.stats.throttled - throttledBefore).toBeLessThanOrEqual(2);

      vault.resetFaults();
      advance(9);
      for (const flow of TOKEN_FLOWS) expect((await sendHttp(host.url, cold[flow])).status).toBe(200);
      expect(warningsOf('secret store: ')).toEqual([
        'secret store: DependencyUnavailableError ERR_STS_DEPENDENCY_UNAVAILABLE: Key Vault throttled the request (429);' +
          ' serving cached answers up to 3600 s past their max age until it answers',
        'secret store: answering again',
      ]);
    } finally {
      await host.close();
    }
  });

  it('a flaky vault (half its answers 500) under concurrent load: only 200, 401 or 503 + Retry-After, never a 500', async () => {
    const colds = await Promise.all([coldRequests(), coldRequests(), coldRequests()]);
    // The wrong keys would otherwise trip this IP's failed-attempt limit (429s); that is tested elsewhere.
    const { host } = await startApp({
      STS_FAILED_ATTEMPTS_PER_WINDOW: '100000',
      STS_FAILED_ATTEMPTS_PER_CREDENTIAL: '100000',
    });
    try {
      await warmUp(host);
      vault.faults.errorRate = 0.5;
      vault.faults.errorStatus = 500;
      const requests: Array<[TokenFlow, ClientRequest]> = [];
      for (let i = 0; i < 40; i += 1) {
        for (const flow of TOKEN_FLOWS) {
          const pick = i % 4;
          requests.push([
            flow,
            pick === 0
              ? flowRequest(flow, credentials)
              : pick === 1
                ? flowRequest(flow, credentials, `wrong-${i}`)
                : (colds[i % 3] as Record<TokenFlow, ClientRequest>)[flow],
          ]);
        }
      }
      const answers = await Promise.all(
        requests.map(async ([flow, request]) => [flow, await sendHttp(host.url, request)] as const),
      );
      const statuses = new Map<number, number>();
      for (const [flow, answer] of answers) {
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        expect([200, 401, 503]).toContain(answer.status);
        if (answer.status === 503) expectFlowErrorShape(flow, answer, 503);
      }
      expect(statuses.get(200)).toBeGreaterThanOrEqual(40); // every warm request at least
      // Many short outages, perhaps: each told once, never per failed read.
      expectOneLinePerEpisode(warningsOf('secret store: '), STORE_FAILING, STORE_RECOVERED);
    } finally {
      await host.close();
    }
  });

  it.each(['hang', 500] as const)(
    'the managed-identity endpoint failing (%s): 503 + Retry-After everywhere, then recovery',
    async (mode) => {
      // A user-assigned identity with no token yet in this process: the identity endpoint must be asked.
      const { host } = await startApp({ AZURE_CLIENT_ID: randomUUID() });
      try {
        vault.faults.identity = mode;
        let retryAfter = 0;
        // With a hanging endpoint only the time bounds can end these requests: each answer is proof of them.
        for (const flow of TOKEN_FLOWS) {
          const answer = await sendHttp(host.url, flowRequest(flow, credentials));
          expectFlowErrorShape(flow, answer, 503);
          retryAfter = Math.max(retryAfter, Number(answer.headers.get('retry-after')));
        }
        const jwks = await sendHttp(host.url, { method: 'GET', path: '/.well-known/jwks.json', headers: {} });
        expect(jwks.status).toBe(503);
        expect(JSON.parse(jwks.text)).toMatchObject({ error: 'temporarily_unavailable' });

        vault.resetFaults();
        advance(retryAfter);
        // As a client that honours Retry-After sees it: a request that joins the SDK's still-open token request
        // (until its own time bound ends it) gets one more 503; after the next Retry-After every flow is served.
        for (const flow of TOKEN_FLOWS)
          expect((await servedHonouringRetryAfter(host, flowRequest(flow, credentials))).status).toBe(200);
        expect(
          (await servedHonouringRetryAfter(host, { method: 'GET', path: '/.well-known/jwks.json', headers: {} }))
            .status,
        ).toBe(200);
        // The operator learns why every lookup answered 503 (nothing could be listed), and that it lists again.
        const indexLines = warningsOf('secret name index: ');
        expect(indexLines[0]).toMatch(
          /^secret name index: the first listing failed \(DependencyUnavailableError .+\); lookups answer 503 until it succeeds$/,
        );
        expectOneLinePerEpisode(
          indexLines,
          /^secret name index: (the first listing|a refresh) failed /,
          /^secret name index: listing again \(\d+ names\)$/,
        );
        expectOneLinePerEpisode(warningsOf('secret store: '), STORE_FAILING, STORE_RECOVERED);
      } finally {
        await host.close();
      }
    },
  );

  it('an outage during a flood of unknown credentials: refused from the name index, the vault sees nothing', async () => {
    const { host } = await startApp();
    try {
      await warmUp(host);
      vault.faults.outage = 503;
      const before = vault.stats.vaultRequests;
      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, i) => {
          const accountId = randomUUID();
          return sendHttp(host.url, {
            method: 'GET',
            path: `/accounts/${accountId}/token`,
            headers: { authorization: `Bearer ${accountId}:k${i}` },
          });
        }),
      );
      // Unknown ids are not in the vault's name index: a plain refusal, whatever the vault's state, and no call.
      for (const answer of answers) expectFlowErrorShape('mixedRealityToken', answer, 401);
      expect(vault.stats.vaultRequests - before).toBe(0);
      // Warm credentials are still served during the outage.
      for (const flow of TOKEN_FLOWS)
        expect((await sendHttp(host.url, flowRequest(flow, credentials))).status).toBe(200);
      // A flood of refusals is no news to the operator: nothing failed, nothing is logged.
      expect(warnings).toEqual([]);
    } finally {
      await host.close();
    }
  });
});

describe('the ledger per its mode while the vault is down too (Azurite)', () => {
  let azurite: AzuriteFixture;
  beforeAll(async () => {
    azurite = await startAzuriteFixture();
  }, 90_000);
  afterAll(async () => {
    await azurite.dispose();
  });

  async function issuedRows(tableName: string): Promise<Array<Record<string, unknown>>> {
    return (await readLedgerEntities(azurite.connectionString, tableName)).filter(
      (entity) => entity.Outcome === 'issued',
    );
  }

  it('required: warm tokens during a vault outage each have their row; with the table down too, 503 and no token', async () => {
    const tableName = `faults${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const { host } = await startApp({
      STS_LEDGER_MODE: 'required',
      STS_LEDGER_CONNECTION_STRING: azurite.connectionString,
      STS_LEDGER_TABLE: tableName,
    });
    try {
      await warmUp(host);
      vault.faults.outage = 'reset';
      let served = 4; // the warm-up
      for (let round = 0; round < 3; round += 1) {
        for (const flow of TOKEN_FLOWS) {
          expect((await sendHttp(host.url, flowRequest(flow, credentials))).status).toBe(200);
          served += 1;
        }
      }
      expect((await issuedRows(tableName)).length).toBe(served);

      await azurite.stop();
      for (const flow of TOKEN_FLOWS) {
        const answer = await sendHttp(host.url, flowRequest(flow, credentials));
        expectFlowErrorShape(flow, answer, 503);
        expect(answer.text).not.toMatch(/eyJ|wrap_access_token/);
      }
      await azurite.restart();
      expect((await issuedRows(tableName)).length).toBe(served);
      // The first row that could not be committed is told (later ones within the minute are counted into the next line).
      expect(warningsOf('ledger ')).toEqual([
        expect.stringMatching(/^ledger \(required\): \d+ ledger row\(s\) not committed/),
      ]);
    } finally {
      await host.close();
    }
  }, 90_000);

  it('best-effort: with the vault and the table both down, warm credentials are still served', async () => {
    const tableName = `faults${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const { host, services } = await startApp({
      STS_LEDGER_MODE: 'best-effort',
      STS_LEDGER_CONNECTION_STRING: azurite.connectionString,
      STS_LEDGER_TABLE: tableName,
    });
    try {
      await warmUp(host);
      vault.faults.outage = 503;
      await azurite.stop();
      for (const flow of TOKEN_FLOWS)
        expect((await sendHttp(host.url, flowRequest(flow, credentials))).status).toBe(200);
      await services.ledger.close();
      // Tokens went out without their rows: the operator is told (once a minute at most).
      expect(warningsOf('ledger ')).toEqual([
        expect.stringMatching(/^ledger \(best-effort\): \d+ ledger row\(s\) not committed/),
      ]);
    } finally {
      await host.close();
      await azurite.restart();
    }
  }, 90_000);
});
