/**
 * Configuration, read once from the environment (app settings in Azure, `local.settings.json` under
 * `func start`, the process environment under the local host) into a validated, frozen object.
 *
 * A missing or malformed setting stops the start with the names at fault: {@link ConfigurationError}.
 * The issuer and audiences are configuration, never derived from a request.
 */

import { DEFAULT_CLIENT_ADDRESS_RULE, type ClientAddressRule } from './settings/clientAddressRule.js';
import { StsBaseError } from './errors.js';
import { parseAllowedOrigins, type CorsSettings } from './settings/corsSettings.js';

export type LedgerMode = 'required' | 'best-effort' | 'off';
export type LedgerAddressMode = 'full' | 'truncated' | 'keyed-hash';

/** `STS_LEDGER_RETENTION_HOURS` when unset: 30 days (docs/ledger.md, "Retention"). */
export const DEFAULT_LEDGER_RETENTION_HOURS = 720;

export interface StsConfig {
  /** `iss` of every JWT and the base of the discovery document, e.g. `https://sts.contoso.com/`. */
  readonly issuer: string;
  /** `aud` of Mixed Reality tokens. */
  readonly mixedRealityAudience: string;
  /** `aud` of Cognitive Services tokens; `{region}` is replaced by the resource's region. */
  readonly cognitiveAudience: string;
  /** `Issuer` and identity-provider claim of WRAP SWTs (the "ACS host" clients talk to). */
  readonly wrapIssuer: string;
  readonly lifetimes: {
    readonly mixedRealitySeconds: number;
    readonly cognitiveSeconds: number;
    readonly wrapSeconds: number;
  };
  /** Where secrets come from: the embedded file store (default) or Key Vault when `KEY_VAULT_URL` is set. */
  readonly secretStore:
    | { readonly kind: 'file'; readonly path: string }
    | { readonly kind: 'keyVault'; readonly vaultUrl: string; readonly clientId: string | undefined };
  readonly secretCache: {
    readonly maxAgeSeconds: number;
    readonly negativeMaxAgeSeconds: number;
    readonly maxEntries: number;
    readonly maxStaleSeconds: number;
    readonly vaultTimeoutMs: number;
    /** Store reads this instance may start per second (Key Vault allows 4,000 per 10 s per vault, for all instances). */
    readonly vaultReadsPerSecond: number;
    /** Of those, the reads one client address is sure of per second (docs/failed-attempts.md, "Vault work"). */
    readonly vaultReadsPerClientPerSecond: number;
    /** Mean seconds between two listings of the vault's secret names (docs/key-vault.md#index). */
    readonly indexRefreshSeconds: number;
  };
  readonly ledger: {
    readonly mode: LedgerMode;
    readonly tableName: string;
    /** Connection string (Azurite locally) or undefined when `tableUrl` with a managed identity is used. */
    readonly connectionString: string | undefined;
    /** `https://<account>.table.core.windows.net` for identity-based access in Azure. */
    readonly tableUrl: string | undefined;
    /** Longest wait of an issuance for its row, from when the row reaches the ledger (`STS_LEDGER_DEADLINE_MS`, docs/ledger.md#deadline). */
    readonly deadlineMs: number;
    /** Hours a row is kept at least; its hour's table is dropped within the next hour after that (docs/ledger.md). */
    readonly retentionHours: number;
    /** What a row stores of the client address: `full`, `truncated` (IPv4 /24, IPv6 /48) or `keyed-hash`. */
    readonly clientAddress: LedgerAddressMode;
  };
  /** Which header carries the client address and how many proxies vouch for it (docs/client-address.md). */
  readonly clientAddress: ClientAddressRule;
  readonly limits: {
    readonly maxBodyBytes: number;
    readonly maxUrlLength: number;
    readonly maxHeaderBytes: number;
    /** Most query parameters a request may carry (`STS_MAX_QUERY_PARAMETERS`). */
    readonly maxQueryParameters: number;
    /** Most request header fields a request may carry (`STS_MAX_HEADER_COUNT`). */
    readonly maxHeaderCount: number;
    /** Refusals per client address within the window before its refused credentials answer 429 (docs/failed-attempts.md). */
    readonly failedAttemptsPerWindow: number;
    /** Wrong keys per existing credential (account, WRAP issuer) within the window before its refusals answer 429. */
    readonly failedAttemptsPerCredential: number;
    readonly failedAttemptsWindowSeconds: number;
    /** Counters the failed-attempt limiter keeps at most (client IPs and credentials together). */
    readonly failedAttemptsTrackedKeys: number;
  };
  /**
   * Keyless Mixed Reality callers (docs/entra-id.md): Microsoft Entra access tokens from this authority are
   * accepted in place of an account key. Undefined (the feature is off) unless `STS_ENTRA_AUTHORITY` is set.
   */
  readonly entra: EntraSettings | undefined;
  /** Which web origins may call the STS from a page (docs/cors.md); nothing by default. */
  readonly cors: CorsSettings;
}

export interface EntraSettings {
  /**
   * The token issuers, each exactly as its discovery document and its tokens spell it (`https` only): a token's
   * `iss` must equal one of them, and its signature must verify with that authority's published keys.
   */
  readonly authorities: readonly string[];
  /** The `aud` a token must carry: the STS's app registration (client id or App ID URI). */
  readonly audience: string;
}

export class ConfigurationError extends StsBaseError {
  readonly code = 'ERR_STS_CONFIGURATION';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigurationError';
  }
}

type Environment = Readonly<Record<string, string | undefined>>;

/** Local defaults apply outside Azure only; in Azure (`WEBSITE_INSTANCE_ID` set) the issuer is required. */
const LOCAL_ISSUER = 'http://localhost:7071/';

/**
 * Reads and validates the configuration. Throws {@link ConfigurationError} listing every setting at fault.
 *
 * @example
 * const config = loadConfig(process.env);
 * config.issuer; // 'https://sts.contoso.com/'
 */
export function loadConfig(env: Environment): StsConfig {
  const problems: string[] = [];
  const runningInAzure = Boolean(env.WEBSITE_INSTANCE_ID);

  const text = (name: string, fallback?: string): string => {
    const value = env[name]?.trim();
    if (value) return value;
    if (fallback !== undefined) return fallback;
    problems.push(`${name} is required`);
    return '';
  };

  const url = (name: string, fallback?: string, { requireHttps = false } = {}): string => {
    const value = text(name, fallback);
    if (!value) return value;
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      problems.push(`${name} must be an absolute URL (got "${value}")`);
      return value;
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      problems.push(`${name} must be an http(s) URL`);
    } else if (requireHttps && parsed.protocol !== 'https:') {
      problems.push(`${name} must use https in Azure`);
    }
    return parsed.href;
  };

  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    if (!/^\d+$/.test(raw)) {
      problems.push(`${name} must be a whole number (got "${raw}")`);
      return fallback;
    }
    const value = Number(raw);
    if (value < min || value > max) {
      problems.push(`${name} must be between ${min} and ${max} (got ${value})`);
      return fallback;
    }
    return value;
  };

  const problemsBeforeIssuer = problems.length;
  const issuer = url('STS_ISSUER', runningInAzure ? undefined : LOCAL_ISSUER, { requireHttps: runningInAzure });
  // Settings derived from the issuer fall back to the local default when the issuer itself is at fault, so a
  // bad STS_ISSUER is reported once, under its own name, and not again as a bad STS_WRAP_ISSUER.
  const issuerBase = problems.length === problemsBeforeIssuer && issuer ? issuer : LOCAL_ISSUER;
  const mixedRealityAudience = text('STS_AUDIENCE_MIXED_REALITY', `${issuerBase}mixedreality`);
  const cognitiveAudience = text('STS_AUDIENCE_COGNITIVE', 'urn:ms.cognitiveservices.{region}');
  const wrapIssuer = url('STS_WRAP_ISSUER', issuerBase);

  const vaultUrl = env.KEY_VAULT_URL?.trim();
  let secretStore: StsConfig['secretStore'];
  if (vaultUrl) {
    const checked = url('KEY_VAULT_URL', undefined, { requireHttps: true });
    secretStore = { kind: 'keyVault', vaultUrl: checked, clientId: env.AZURE_CLIENT_ID?.trim() || undefined };
  } else {
    if (runningInAzure) problems.push('KEY_VAULT_URL is required in Azure (the embedded file store is for local runs)');
    secretStore = { kind: 'file', path: text('STS_LOCAL_STORE_PATH', '.sts/secrets.json') };
  }

  const ledgerModeRaw = text('STS_LEDGER_MODE', 'required');
  const ledgerModes: readonly LedgerMode[] = ['required', 'best-effort', 'off'];
  const ledgerMode = ledgerModes.find((mode) => mode === ledgerModeRaw);
  if (!ledgerMode) problems.push(`STS_LEDGER_MODE must be one of ${ledgerModes.join(', ')} (got "${ledgerModeRaw}")`);
  const ledgerTableUrl = env.STS_LEDGER_TABLE_URL?.trim() ? url('STS_LEDGER_TABLE_URL') : undefined;
  const ledgerConnectionString = env.STS_LEDGER_CONNECTION_STRING?.trim() || undefined;
  if ((ledgerMode ?? 'required') !== 'off' && !ledgerTableUrl && !ledgerConnectionString) {
    problems.push('STS_LEDGER_CONNECTION_STRING or STS_LEDGER_TABLE_URL is required unless STS_LEDGER_MODE=off');
  }
  const ledgerTableName = text('STS_LEDGER_TABLE', 'issuance');
  // Each hour's rows go to `<name><yyyyMMddHH>`: 10 digits more, within the 63 characters a table name may have.
  if (!/^[A-Za-z][A-Za-z0-9]{2,52}$/.test(ledgerTableName)) {
    problems.push('STS_LEDGER_TABLE must be 3-53 letters and digits, starting with a letter');
  }
  const addressModeRaw = text('STS_LEDGER_CLIENT_ADDRESS', 'truncated');
  const addressModes: readonly LedgerAddressMode[] = ['full', 'truncated', 'keyed-hash'];
  const addressMode = addressModes.find((mode) => mode === addressModeRaw);
  if (!addressMode)
    problems.push(`STS_LEDGER_CLIENT_ADDRESS must be one of ${addressModes.join(', ')} (got "${addressModeRaw}")`);

  const entra = entraSettings(env, problems);
  const clientAddressHeader = text('STS_CLIENT_ADDRESS_HEADER', DEFAULT_CLIENT_ADDRESS_RULE.header).toLowerCase();
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(clientAddressHeader))
    problems.push(`STS_CLIENT_ADDRESS_HEADER must be a header name (got "${clientAddressHeader}")`);

  const config: StsConfig = {
    issuer,
    mixedRealityAudience,
    cognitiveAudience,
    wrapIssuer,
    lifetimes: {
      mixedRealitySeconds: integer('STS_LIFETIME_MIXED_REALITY_SECONDS', 86_400, 60, 86_400),
      cognitiveSeconds: integer('STS_LIFETIME_COGNITIVE_SECONDS', 600, 60, 3_600),
      wrapSeconds: integer('STS_LIFETIME_WRAP_SECONDS', 10_800, 60, 86_400),
    },
    secretStore,
    secretCache: {
      maxAgeSeconds: integer('STS_SECRET_CACHE_MAX_AGE_SECONDS', 300, 1, 86_400),
      negativeMaxAgeSeconds: integer('STS_SECRET_CACHE_NEGATIVE_SECONDS', 30, 1, 3_600),
      maxEntries: integer('STS_SECRET_CACHE_MAX_ENTRIES', 10_000, 10, 1_000_000),
      maxStaleSeconds: integer('STS_SECRET_CACHE_MAX_STALE_SECONDS', 3_600, 0, 86_400),
      vaultTimeoutMs: integer('STS_VAULT_TIMEOUT_MS', 3_000, 100, 60_000),
      vaultReadsPerSecond: integer('STS_VAULT_READS_PER_SECOND', 100, 1, 4_000),
      vaultReadsPerClientPerSecond: integer('STS_VAULT_READS_PER_CLIENT_PER_SECOND', 10, 1, 4_000),
      indexRefreshSeconds: integer('STS_SECRET_INDEX_REFRESH_SECONDS', 60, 5, 3_600),
    },
    ledger: {
      mode: ledgerMode ?? 'required',
      tableName: ledgerTableName,
      connectionString: ledgerConnectionString,
      tableUrl: ledgerTableUrl,
      deadlineMs: integer('STS_LEDGER_DEADLINE_MS', 4_000, 500, 60_000),
      retentionHours: integer('STS_LEDGER_RETENTION_HOURS', DEFAULT_LEDGER_RETENTION_HOURS, 1, 87_600),
      clientAddress: addressMode ?? 'truncated',
    },
    clientAddress: {
      header: clientAddressHeader,
      trustedHops: integer('STS_TRUSTED_PROXY_HOPS', DEFAULT_CLIENT_ADDRESS_RULE.trustedHops, 1, 10),
    },
    limits: {
      maxBodyBytes: integer('STS_MAX_BODY_BYTES', 16_384, 256, 1_048_576),
      maxUrlLength: integer('STS_MAX_URL_LENGTH', 2_048, 256, 65_536),
      maxHeaderBytes: integer('STS_MAX_HEADER_BYTES', 16_384, 1_024, 65_536),
      maxQueryParameters: integer('STS_MAX_QUERY_PARAMETERS', 32, 1, 1_000),
      maxHeaderCount: integer('STS_MAX_HEADER_COUNT', 100, 10, 2_000),
      failedAttemptsPerWindow: integer('STS_FAILED_ATTEMPTS_PER_WINDOW', 300, 1, 100_000),
      failedAttemptsPerCredential: integer('STS_FAILED_ATTEMPTS_PER_CREDENTIAL', 600, 1, 100_000),
      failedAttemptsWindowSeconds: integer('STS_FAILED_ATTEMPTS_WINDOW_SECONDS', 60, 1, 86_400),
      failedAttemptsTrackedKeys: integer('STS_FAILED_ATTEMPTS_TRACKED_KEYS', 50_000, 100, 1_000_000),
    },
    entra,
    cors: {
      ...parseAllowedOrigins(env.STS_CORS_ALLOWED_ORIGINS, problems),
      maxAgeSeconds: integer('STS_CORS_MAX_AGE_SECONDS', 600, 0, 86_400),
    },
  };

  if (problems.length > 0) throw new ConfigurationError(problems);
  return deepFreeze(config);
}

/**
 * `STS_ENTRA_AUTHORITY` (off when unset): one issuer, or several separated by commas or white space (one per
 * tenant whose users may call), and `STS_ENTRA_AUDIENCE` (required with it). Each authority is kept as written:
 * it is compared with the token's `iss` exactly, so no normalisation may add or drop a slash.
 */
function entraSettings(env: Environment, problems: string[]): EntraSettings | undefined {
  const authorities = [...new Set((env.STS_ENTRA_AUTHORITY ?? '').split(/[\s,]+/).filter((entry) => entry !== ''))];
  const audience = env.STS_ENTRA_AUDIENCE?.trim();
  if (authorities.length === 0) {
    if (audience) problems.push('STS_ENTRA_AUDIENCE is set but STS_ENTRA_AUTHORITY is not (set both, or neither)');
    return undefined;
  }
  if (authorities.length > MAX_ENTRA_AUTHORITIES) {
    problems.push(`STS_ENTRA_AUTHORITY lists at most ${MAX_ENTRA_AUTHORITIES} authorities`);
  }
  for (const authority of authorities) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(authority);
    } catch {
      problems.push(`STS_ENTRA_AUTHORITY must be an absolute URL (got "${authority}")`);
    }
    if (parsed && parsed.protocol !== 'https:') problems.push('STS_ENTRA_AUTHORITY must use https');
    if (parsed && (parsed.search || parsed.hash || parsed.username || parsed.password)) {
      problems.push('STS_ENTRA_AUTHORITY must be a plain issuer URL (no query, fragment or credentials)');
    }
  }
  if (!audience) problems.push('STS_ENTRA_AUDIENCE is required when STS_ENTRA_AUTHORITY is set');
  return { authorities, audience: audience ?? '' };
}

/** Tenants one STS trusts at most: each costs a key cache and a fetch per hour per instance. */
const MAX_ENTRA_AUTHORITIES = 20;

function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) {
    if (child && typeof child === 'object') deepFreeze(child as object);
  }
  return Object.freeze(value);
}
