import type { KeyObject } from 'node:crypto';
import { WRAP_RIGHTS, type WrapIssuer, type WrapNamespace } from '../credentials/records.js';
import { NAMESPACE_PATTERN } from '../credentials/vaultLayout.js';
import { badRequest, forbidden, invalidCredentials } from '../errors.js';
import { parseFormBody } from '../http/formBody.js';
import { formFieldCount, MAX_FORM_FIELDS } from '../security/requestLimits.js';
import { encodeSwtClaims, encodeSwtComponent, swtSignaturePair, swtSigningKey } from '../tokens/swt.js';
import { servedWrapToken, type UpstreamProvenance } from '../upstream/servedUpstreamToken.js';
import type { FlowDependencies } from './flowDependencies.js';
import { requestedWrapScope } from './requestedWrapScopes.js';
import { parseWrapScope, scopeCoveredByParsed, type WrapScope } from './wrapScope.js';

/** What the WRAP endpoint reads from a request: the form body (docs/contracts/acs-wrap.md#request). */
export interface WrapTokenRequest {
  readonly body: Uint8Array;
  readonly now: Date;
  /** Passed to the upstream fetch it may trigger (ledger). */
  readonly requestId?: string;
}

/** A WRAP token response body, with the facts the ledger records. */
export interface WrapTokenResult {
  /** Exactly `wrap_access_token=<url-encoded SWT>&wrap_access_token_expires_in=<L-1>`. */
  readonly responseBody: string;
  readonly issuer: WrapIssuer;
  readonly keySlot: 1 | 2;
  /** The requested scope (the SWT's `Audience`). */
  readonly scope: string;
  /** `ExpiresOn`, seconds since the epoch. */
  readonly expiresOn: number;
  /** Set when the SWT is the real ACS's, served in upstream mode. */
  readonly upstream?: UpstreamProvenance;
}

/** The `Detail` texts of the ACS error body (docs/contracts/acs-wrap.md#errors); never an echo of the request. */
export const wrapMessages = {
  malformedBody: 'ACS50000: There was an error issuing a token. The request body is not a valid form.',
  tooManyFields: `ACS50000: There was an error issuing a token. The request body has more than ${MAX_FORM_FIELDS} parameters.`,
  missing: (name: string): string => `ACS50000: There was an error issuing a token. The ${name} parameter is missing.`,
  repeated: (name: string): string =>
    `ACS50000: There was an error issuing a token. The ${name} parameter is repeated.`,
  invalidScope:
    'ACS50000: There was an error issuing a token. The wrap_scope parameter must be an absolute http(s) URI on a Service Bus namespace host, without percent-encoding, dot segments, path parameters or a fragment.',
  authenticationFailed: 'ACS50012: Authentication failed.',
  scopeNotAllowed:
    'ACS50000: There was an error issuing a token. The issuer is not allowed tokens for this wrap_scope.',
} as const;

const ACTION_CLAIM = 'net.windows.servicebus.action';
const IDENTITY_PROVIDER_CLAIM = 'http://schemas.microsoft.com/accesscontrolservice/2010/07/claims/identityprovider';

/**
 * Issues an ACS WRAP v0.9 token for `POST /WRAPv0.9` (docs/contracts/acs-wrap.md).
 *
 * The body is parsed as a form whatever the Content-Type (at most {@link MAX_FORM_FIELDS} fields); `wrap_name`, `wrap_password` and `wrap_scope` are
 * required, non-empty and given once (else 400). The namespace is the first DNS label of the scope's host;
 * the issuer `wrap_name` of that namespace must present either of its keys and be enabled (else 401, one
 * message for every cause), and one of its scope prefixes must cover the scope ({@link scopeCoveredBy};
 * else 403). The SWT carries, in the order of both real samples (docs/contracts/acs-wrap.md#swt), the issuer's rights, the identity
 * provider and `Issuer` (both the configured WRAP issuer), `Audience` = the scope as requested and
 * `ExpiresOn` = now + L, signed with the namespace's key; the response announces `L - 1` seconds (docs/contracts/acs-wrap.md#response).
 *
 * @example
 * const { responseBody } = await issueWrapToken({ body: Buffer.from(
 *   'wrap_name=owner&wrap_password=…&wrap_scope=http%3a%2f%2fcontoso.servicebus.windows.net%2f'), now: new Date() }, services);
 * // 'wrap_access_token=net.windows.servicebus.action%3dListen%252cManage%252cSend%26…&wrap_access_token_expires_in=10799'
 */
export async function issueWrapToken(request: WrapTokenRequest, deps: FlowDependencies): Promise<WrapTokenResult> {
  const { issuerName, password, scope } = parseWrapRequest(request.body);
  const credentialId = `${scope.namespace}/${issuerName}`.slice(0, 200);
  if (!NAMESPACE_PATTERN.test(scope.namespace)) {
    throw invalidCredentials(wrapMessages.authenticationFailed, { reason: 'unknown_credential', credentialId });
  }
  const verification = await deps.credentials.verifyWrapIssuer(scope.namespace, issuerName, password);
  if (!verification.ok) {
    throw invalidCredentials(wrapMessages.authenticationFailed, { reason: verification.reason, credentialId });
  }
  const { record: issuer, keySlot } = verification.credential;
  const facts = issuerFactsOf(issuer);
  const covering = coveringPrefixes(facts, scope);
  if (covering.length === 0) {
    throw forbidden(wrapMessages.scopeNotAllowed, { reason: 'scope_not_allowed', credentialId });
  }
  if (issuer.upstream)
    return upstreamWrapToken(request, deps, { issuer, issuerName, keySlot, scope, covering, credentialId });

  const namespace = await deps.credentials.wrapNamespace(scope.namespace);
  // An issuer without its namespace record is a provisioning fault, not a client mistake: a bare 500.
  if (!namespace) throw new Error(`WRAP namespace ${scope.namespace} has no signing key record`);
  const lifetimeSeconds = deps.config.lifetimes.wrapSeconds;
  const expiresOn = Math.floor(request.now.getTime() / 1000) + lifetimeSeconds;
  return {
    responseBody: wrapResponseBody(facts, deps.config.wrapIssuer, scope.scope, expiresOn, lifetimeSeconds, namespace),
    issuer,
    keySlot,
    scope: scope.scope,
    expiresOn,
  };
}

/** The three fields of a WRAP request body, checked (else 400 in the ACS shape). */
function parseWrapRequest(body: Uint8Array): { issuerName: string; password: string; scope: WrapScope } {
  if (formFieldCount(body) > MAX_FORM_FIELDS) throw badRequest(wrapMessages.tooManyFields);
  const form = parseFormBody(body);
  if (!form.ok) throw badRequest(wrapMessages.malformedBody);
  const issuerName = requiredField(form.fields, 'wrap_name');
  const password = requiredField(form.fields, 'wrap_password');
  const scope = requestedWrapScope(requiredField(form.fields, 'wrap_scope'));
  if (!scope) throw badRequest(wrapMessages.invalidScope);
  return { issuerName, password, scope };
}

/** The issuer's configured prefixes that cover the requested scope, in configuration order. */
function coveringPrefixes(facts: IssuerFacts, scope: WrapScope): string[] {
  const covering: string[] = [];
  for (let i = 0; i < facts.prefixes.length; i += 1) {
    const [prefix, parsed] = facts.prefixes[i] as IssuerFacts['prefixes'][number];
    if (scopeCoveredByParsed(scope, parsed)) covering.push(prefix);
  }
  return covering;
}

/**
 * The SWT this STS signs (claims in the order of both real samples) inside the form-encoded answer:
 * `wrap_access_token=<encoded SWT>&wrap_access_token_expires_in=<L-1>`. The claims that never change for an
 * issuer (its rights, the identity provider) are encoded once, and encoded again for the answer once
 * ({@link issuerSwtHeadOf}); form encoding is per character, so the answer is byte for byte what encoding the
 * whole SWT twice per token gives.
 */
function wrapResponseBody(
  facts: IssuerFacts,
  wrapIssuer: string,
  audience: string,
  expiresOn: number,
  lifetimeSeconds: number,
  namespace: WrapNamespace,
): string {
  const head = issuerSwtHeadOf(facts, wrapIssuer);
  const rest = `&${encodeSwtClaims([
    ['Audience', audience],
    ['ExpiresOn', String(expiresOn)],
    ['Issuer', wrapIssuer],
  ])}`;
  const signed = `${rest}${swtSignaturePair(head.claims + rest, signingKeyOf(namespace))}`;
  return `wrap_access_token=${head.encodedForAnswer}${encodeSwtComponent(signed)}&wrap_access_token_expires_in=${lifetimeSeconds - 1}`;
}

/** An issuer's unchanging leading claims, as the SWT holds them and as the answer encodes them again. */
interface IssuerSwtHead {
  readonly wrapIssuer: string;
  readonly claims: string;
  readonly encodedForAnswer: string;
}

/** Per issuer facts, for the configured WRAP issuer (made again if a host runs with another). */
const issuerSwtHeads = new WeakMap<IssuerFacts, IssuerSwtHead>();

function issuerSwtHeadOf(facts: IssuerFacts, wrapIssuer: string): IssuerSwtHead {
  let head = issuerSwtHeads.get(facts);
  if (head?.wrapIssuer !== wrapIssuer) {
    const claims = encodeSwtClaims([
      [ACTION_CLAIM, facts.rights],
      [IDENTITY_PROVIDER_CLAIM, wrapIssuer],
    ]);
    head = { wrapIssuer, claims, encodedForAnswer: encodeSwtComponent(claims) };
    issuerSwtHeads.set(facts, head);
  }
  return head;
}

/**
 * Upstream mode (docs/upstream.md#caching): password and scope prefixes were checked here; the SWT (and the
 * rights it carries) is the real ACS's, asked for the narrowest of our prefixes that covers the client's
 * scope, so clients varying the scope below it share one token and one upstream call.
 */
async function upstreamWrapToken(
  request: WrapTokenRequest,
  deps: FlowDependencies,
  checked: {
    readonly issuer: WrapIssuer;
    readonly issuerName: string;
    readonly keySlot: 1 | 2;
    readonly scope: WrapScope;
    readonly covering: readonly string[];
    readonly credentialId: string;
  },
): Promise<WrapTokenResult> {
  const { issuer, scope, covering } = checked;
  const prefix = [...covering].sort((a, b) => b.length - a.length)[0] ?? scope.scope;
  const served = await deps.upstream.wrapToken(
    issuer.upstream as NonNullable<WrapIssuer['upstream']>,
    { issuerName: checked.issuerName, scope: prefix },
    { requestId: request.requestId, credentialId: `wrap/${checked.credentialId}` },
  );
  return { ...servedWrapToken(served, request.now), issuer, keySlot: checked.keySlot, scope: scope.scope };
}

/** A required field's one value: present once and not empty (else 400, naming the field). */
function requiredField(fields: ReadonlyMap<string, readonly string[]>, name: string): string {
  const given = fields.get(name);
  if (given && given.length > 1) throw badRequest(wrapMessages.repeated(name));
  const value = given?.[0];
  if (value === undefined || value === '') throw badRequest(wrapMessages.missing(name));
  return value;
}

/** What a token needs of an issuer record: its scope prefixes parsed, and its rights as the SWT writes them. */
interface IssuerFacts {
  /** Each configured prefix with its parse (undefined: it does not parse, so it covers nothing). */
  readonly prefixes: readonly (readonly [prefix: string, parsed: WrapScope | undefined])[];
  /** The action claim's value: the issuer's rights in {@link WRAP_RIGHTS} order, comma-separated. */
  readonly rights: string;
}

/**
 * Derived once per record: the credential directory hands out the same record object until its secret
 * changes, so a warm issuer's prefixes are not parsed again on every request.
 */
const issuerFacts = new WeakMap<WrapIssuer, IssuerFacts>();

function issuerFactsOf(issuer: WrapIssuer): IssuerFacts {
  let facts = issuerFacts.get(issuer);
  if (!facts) {
    facts = {
      prefixes: issuer.scopes.map((prefix) => [prefix, parseWrapScope(prefix)] as const),
      rights: WRAP_RIGHTS.filter((right) => issuer.rights.includes(right)).join(','),
    };
    issuerFacts.set(issuer, facts);
  }
  return facts;
}

/** The namespace's HMAC key, decoded once per record (an undecodable key throws every time: a bare 500). */
const signingKeys = new WeakMap<WrapNamespace, KeyObject>();

function signingKeyOf(namespace: WrapNamespace): KeyObject {
  let key = signingKeys.get(namespace);
  if (!key) {
    key = swtSigningKey(namespace.signingKey);
    signingKeys.set(namespace, key);
  }
  return key;
}
