import type { HttpMethod } from '@azure/functions';
import type { CredentialRecord, KeyPair } from './credentials/records.js';

/**
 * The error body shape of a real API, by name: `shared/http/errorShapes.ts` holds one renderer per name
 * (docs/contracts/README.md), plus OAuth-style JSON for our own documents (discovery, JWKS).
 */
export type ErrorShape = 'mixedReality' | 'cognitive' | 'wrap' | 'oauthJson';

/**
 * The correlation header a real API sends on every answer, and what it carries: our request id, or a new
 * correlation vector (Mixed Reality's `MS-CV`).
 */
export interface CorrelationHeader {
  readonly name: string;
  readonly value: 'requestId' | 'correlationVector';
}

/** Where a token endpoint appears in the discovery document, and which configured base URL it hangs off. */
export interface DiscoveryEntry {
  /** Member name in `/.well-known/openid-configuration`. */
  readonly member: string;
  /** `issuer` (`STS_ISSUER`) or `wrapIssuer` (`STS_WRAP_ISSUER`: WRAP clients are pointed at their own host). */
  readonly base: 'issuer' | 'wrapIssuer';
}

/**
 * What the rest of the system knows about one function of this app, as data: names and values only, no
 * code. Everything that enumerates flows (registrations, discovery, error rendering, correlation headers,
 * credential kinds, upstream fetches, the ledger's flow names, and the tests, bench, fuzz and soak) reads it
 * from {@link flowCatalogue}; the code a declaration names (an error renderer, an upstream fetcher) is looked
 * up by name where it is used.
 */
export interface FlowDeclaration {
  /** Route relative to the issuer (host.json `routePrefix` is empty), exactly as the real API spells it. */
  readonly route: string;
  readonly methods: readonly HttpMethod[];
  /** The error body shape of the real API, by name (its renderer: `shared/http/errorShapes.ts`). */
  readonly errorShape: ErrorShape;
  /** Absent: `x-ms-request-id` carries the request id (our own documents). */
  readonly correlationHeader?: CorrelationHeader;
  /** A public document that may be cached: its successful answers carry no no-store headers. */
  readonly cacheable?: boolean;
  /** The kind of credential record a client of this flow presents the key of. */
  readonly credentialKind?: Extract<CredentialRecord, { readonly keys: KeyPair }>['kind'];
  /**
   * Whether a credential in upstream mode can be served by this flow, with a token from the real Azure STS
   * (its fetcher, by flow name: `shared/upstream/upstreamFetchers.ts`).
   */
  readonly upstream?: true;
  /** The flow's endpoint in the discovery document. */
  readonly discovery?: DiscoveryEntry;
}

/**
 * Every function of this app, declared once, in the order the discovery document lists the endpoints. The
 * keys are the function names (registrations, ledger `flow`, logs) and the file names under `functions/`.
 * How to add one: `docs/adding-a-flow.md`.
 *
 * @example
 * flowCatalogue.issueToken.route; // 'sts/v1.0/issueToken'
 */
export const flowCatalogue = {
  /** Mixed Reality STS: `GET /accounts/{accountId}/token`; `{accountId}` is the account GUID (docs/contracts/mixed-reality-sts.md). */
  mixedRealityToken: {
    route: 'accounts/{accountId}/token',
    methods: ['GET'],
    errorShape: 'mixedReality',
    correlationHeader: { name: 'MS-CV', value: 'correlationVector' },
    credentialKind: 'mixedRealityAccount',
    upstream: true,
    discovery: { member: 'mixed_reality_token_endpoint', base: 'issuer' },
  },
  /** Cognitive Services `POST /sts/v1.0/issueToken` (docs/contracts/cognitive-issue-token.md). */
  issueToken: {
    route: 'sts/v1.0/issueToken',
    methods: ['POST'],
    errorShape: 'cognitive',
    correlationHeader: { name: 'apim-request-id', value: 'requestId' },
    credentialKind: 'cognitiveResource',
    upstream: true,
    discovery: { member: 'cognitive_services_token_endpoint', base: 'issuer' },
  },
  /** Face limited access token `POST /sts/v1.0/issueLimitedAccessToken?expiredTime=N` (docs/contracts/cognitive-limited-access-token.md). */
  issueLimitedAccessToken: {
    route: 'sts/v1.0/issueLimitedAccessToken',
    methods: ['POST'],
    errorShape: 'cognitive',
    correlationHeader: { name: 'apim-request-id', value: 'requestId' },
    credentialKind: 'cognitiveResource',
    upstream: true,
    discovery: { member: 'limited_access_token_endpoint', base: 'issuer' },
  },
  /** ACS OAuth WRAP v0.9 `POST /WRAPv0.9` (and `/WRAPv0.9/`), on the configured WRAP host; SWTs, not JWTs (docs/contracts/acs-wrap.md). */
  wrapToken: {
    route: 'WRAPv0.9',
    methods: ['POST'],
    errorShape: 'wrap',
    correlationHeader: { name: 'request-id', value: 'requestId' },
    credentialKind: 'wrapIssuer',
    upstream: true,
    discovery: { member: 'wrap_token_endpoint', base: 'wrapIssuer' },
  },
  /** `GET /.well-known/openid-configuration`: the discovery document. */
  openidConfiguration: {
    route: '.well-known/openid-configuration',
    methods: ['GET'],
    errorShape: 'oauthJson',
    cacheable: true,
  },
  /** `GET /.well-known/jwks.json`: the public signing keys (the document's `jwks_uri`). */
  jwks: {
    route: '.well-known/jwks.json',
    methods: ['GET'],
    errorShape: 'oauthJson',
    cacheable: true,
  },
} as const satisfies Record<string, FlowDeclaration>;

type Catalogue = typeof flowCatalogue;

/** The functions of this app, as named in the ledger, logs and registrations. */
export type FlowName = keyof Catalogue;

/** The flows a credential in upstream mode can be served by (those that declare an upstream fetch). */
export type UpstreamFlow = { [F in FlowName]: Catalogue[F] extends { readonly upstream: true } ? F : never }[FlowName];

/** The credential kinds the flows' declarations name (each needs its administration declared in the admin CLI). */
export type FlowCredentialKind = {
  [F in FlowName]: Catalogue[F] extends { readonly credentialKind: infer K } ? K : never;
}[FlowName];

/** The flows that appear in the discovery document as token endpoints. */
export type DiscoveredFlow = {
  [F in FlowName]: Catalogue[F] extends { readonly discovery: DiscoveryEntry } ? F : never;
}[FlowName];

/** The declaration of `flow`, seen through the common interface (for code that treats every flow alike). */
export function flowDeclaration(flow: FlowName): FlowDeclaration {
  return flowCatalogue[flow];
}

/** Every function name, in catalogue order. */
export const flowNames = Object.keys(flowCatalogue) as FlowName[];

/** The token flows: those whose clients present the key of a credential. */
export type TokenFlowName = {
  [F in FlowName]: Catalogue[F] extends { readonly credentialKind: string } ? F : never;
}[FlowName];

/** The token flows, in catalogue order. */
export const tokenFlowNames = flowNames.filter(
  (flow): flow is TokenFlowName => flowDeclaration(flow).credentialKind !== undefined,
);

/**
 * An example path of `flow`'s route: each `{parameter}` replaced by `values[parameter]` (URL-encoded), or by
 * `{parameter}` itself when none is given.
 *
 * @example
 * routePath('mixedRealityToken', { accountId: id }); // '/accounts/<id>/token'
 */
export function routePath(flow: FlowName, values: Readonly<Record<string, string>> = {}): string {
  const route = flowDeclaration(flow).route.replace(/\{(\w+)\??\}/g, (whole, name: string) =>
    values[name] === undefined ? whole : encodeURIComponent(values[name]),
  );
  return `/${route}`;
}
