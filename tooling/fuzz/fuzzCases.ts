import { randomUUID } from 'node:crypto';
import type { DemoCredentials } from '../../tools/demoCredentials.js';
import { flowDeclaration, flowNames, routePath, tokenFlowNames, type FlowName } from '../../shared/flowCatalogue.js';
import { demoRequests, type DemoRequest } from '../flows/demoRequests.js';
import type { Random } from './random.js';

/**
 * The requests of a fuzz run: for every route a valid request built from the demo credentials, sent as is
 * (about a quarter of the time) or with one to three mutations from the catalogue below: methods, path
 * casing and percent-encoding, query parameters (odd `expiredTime` values among them), duplicated, oversized,
 * non-ASCII and CR/LF-laden headers, credential variants, huge, binary, deeply nested and invalid UTF-8
 * bodies, repeated form fields, wrong content types, and HTTP framing (chunked, conflicting lengths,
 * pipelined garbage, odd versions). A request is sent with undici when undici can express it, else as raw
 * bytes over a socket.
 */

/** A function of the app by its catalogue name, or `unknown` for paths no function serves. */
export type RouteName = FlowName | 'unknown';
export const TOKEN_ROUTES: ReadonlySet<RouteName> = new Set(tokenFlowNames);

export interface FuzzRequest {
  readonly route: RouteName;
  method: string;
  /** Path and query exactly as written on the request line (raw bytes allowed, latin1). */
  target: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** How the body is framed on the wire (raw sends only). */
  framing:
    | 'content-length'
    | 'chunked'
    | 'bad-chunked'
    | 'cl-and-te'
    | 'two-lengths'
    | 'short-length'
    | 'huge-length'
    | 'none';
  httpVersion: string;
  /**
   * Whether the request still presents a valid credential ({@link credentialPresented}): when false, a 200
   * with a token is an authentication bypass; undefined when the bytes are too mangled to tell.
   */
  credentialIntact: boolean | undefined;
  /** Mutations applied, for the report. */
  readonly mutations: string[];
  /** Set by mutations undici cannot express. */
  needsRaw: boolean;
  /** Raw sends add `Host: 127.0.0.1:<port>` unless the request has a Host header or this is set. */
  omitHost: boolean;
}

const STANDARD_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];
const ODD_METHODS = [
  'TRACE',
  'CONNECT',
  'FOO',
  'get',
  'Post',
  'PROPFIND',
  'M-SEARCH',
  'PURGE',
  'LINK',
  'GE T',
  'G\u00c9T',
  '',
];
const EXPIRED_TIMES = [
  '3600abc',
  '1e3',
  '-1',
  '0x10',
  '',
  ' 3600',
  '3600 ',
  '+3600',
  '03600',
  '86401',
  '59',
  '60',
  '86400',
  '0',
  '-0',
  '999999999999999999999',
  'NaN',
  'Infinity',
  '3600.0',
  '3_600',
  '1e309',
  '%33600',
  '3600%00',
  '\uff13\uff16\uff10\uff10',
  '0b111',
  '0o7',
  '36 00',
  '3600,3600',
  "3600'",
  '${3600}',
  '[3600]',
];
const CONTENT_TYPES = [
  'text/plain',
  'application/xml',
  'application/json; charset=utf-16',
  'application/x-www-form-urlencoded; charset=ISO-8859-1',
  'multipart/form-data; boundary=----x',
  'application/atom+xml;type=entry;charset=utf-8',
  '*/*',
  ';;;',
  'application/json;charset=',
  'application/jwt',
  '\u00e9/\u00e9',
];
const FORBIDDEN_FOR_UNDICI = new Set([
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'expect',
  'content-length',
]);
const TOKEN_CHARS = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Builds the valid request of `route` from the demo credentials (`tooling/flows/demoRequests.ts`), varied. */
export function validRequest(route: RouteName, credentials: DemoCredentials, random: Random): FuzzRequest {
  const base = {
    framing: 'content-length' as const,
    httpVersion: 'HTTP/1.1',
    credentialIntact: true,
    mutations: [],
    needsRaw: false,
    omitHost: false,
  };
  if (route === 'unknown') {
    return {
      ...base,
      route,
      method: random.pick(STANDARD_METHODS),
      target: random.pick([
        '/',
        '/api/sts/v1.0/issueToken',
        '/sts/v2.0/issueToken',
        '/accounts',
        '/WRAPv0.8',
        '/favicon.ico',
        `/${random.text(random.int(1, 40))}`,
      ]),
      headers: [],
      body: Buffer.alloc(0),
    };
  }
  // A flow declared without a demo request yet (a test's throwaway flow) is fuzzed on its route alone.
  const demo: Omit<DemoRequest, 'params'> = (demoRequests as Partial<typeof demoRequests>)[route]?.(credentials) ?? {
    method: flowDeclaration(route).methods[0] === 'POST' ? 'POST' : 'GET',
    path: routePath(route),
    headers: {},
  };
  const request: FuzzRequest = {
    ...base,
    route,
    method: demo.method,
    target: demo.path,
    // undici sets Content-Length itself (and refuses one given as a header).
    headers: Object.entries(demo.headers).filter(([name]) => name.toLowerCase() !== 'content-length'),
    body: Buffer.from(demo.body ?? ''),
  };
  VARIANTS[route]?.(request, credentials, random);
  return request;
}

/**
 * How a flow's valid request varies in ways the real API accepts (casing, optional members, values); a flow
 * without an entry is sent as its demo request.
 */
const VARIANTS: {
  readonly [F in FlowName]?: (request: FuzzRequest, credentials: DemoCredentials, random: Random) => void;
} = {
  mixedRealityToken(request, { mixedReality: { accountId } }, random) {
    request.target = `/${random.pick(['accounts', 'Accounts'])}/${accountId}/token${random.chance(0.6) ? '?api-version=2019-02-28-preview' : ''}`;
    request.headers.push(['X-MRC-CV', random.text(22)]);
  },
  issueToken(request, _credentials, random) {
    request.target = `/sts/v1.0/${random.pick(['issueToken', 'issuetoken'])}`;
    request.headers.push(['Content-Type', 'application/x-www-form-urlencoded']);
  },
  issueLimitedAccessToken(request, credentials, random) {
    request.target = `/sts/v1.0/issueLimitedAccessToken?expiredTime=${random.pick(['60', '3600', '86400'])}`;
    request.body = Buffer.from(
      JSON.stringify({
        [random.pick(['targetAzureResourceId', 'resourceId'])]: credentials.speech.resourceId,
        featureFlags: random.pick([
          ['Face.Identification'],
          ['Face.Verification'],
          ['Face.Identification', 'Face.Verification'],
        ]),
      }),
    );
  },
  wrapToken(request, credentials, random) {
    request.target = random.pick(['/WRAPv0.9/', '/WRAPv0.9', '/wrapv0.9/']);
    request.body = Buffer.from(
      new URLSearchParams({
        wrap_name: credentials.wrap.name,
        wrap_password: credentials.wrap.key,
        wrap_scope: wrapScope(credentials, random),
      }).toString(),
    );
  },
};

function wrapScope(credentials: DemoCredentials, random: Random): string {
  return random.pick([
    credentials.wrap.scope,
    `${credentials.wrap.scope}queue-${random.int(1, 9)}`,
    `${credentials.wrap.scope}topic/subscriptions/s1?timeout=60`,
  ]);
}

type Mutation = (request: FuzzRequest, random: Random, credentials: DemoCredentials) => void;

/** The catalogue: each entry mutates in place and says what it did. */
const MUTATIONS: Readonly<Record<string, Mutation>> = {
  method(request, random) {
    if (random.chance(0.7)) {
      request.method = random.pick(STANDARD_METHODS.filter((m) => m !== request.method));
    } else {
      request.method = random.pick(ODD_METHODS);
      request.needsRaw = true;
    }
  },
  pathCase(request, random) {
    const [path, query] = splitTarget(request.target);
    request.target = joinTarget(random.mixCase(path), query);
  },
  pathPercentEncoding(request, random) {
    const [path, query] = splitTarget(request.target);
    let out = '';
    for (const c of path) {
      if (c !== '/' && random.chance(0.3))
        out += `%${c
          .charCodeAt(0)
          .toString(16)
          .padStart(2, random.pick(['0']))
          .toUpperCase()}`;
      else if (c === '/' && random.chance(0.1)) out += random.pick(['%2F', '%2f', '//', '/./', '\\']);
      else out += c;
    }
    request.target = joinTarget(out, query);
    if (out.includes('\\')) request.needsRaw = true;
  },
  pathShape(request, random) {
    const [path, query] = splitTarget(request.target);
    const shapes = [
      `${path}/`,
      `${path}//`,
      `/${path}`,
      `${path}/..`,
      `${path}/../${path}`,
      `${path}%00`,
      `${path}%`,
      `${path}%zz`,
      `${path};x=1`,
      `${path}/${'a'.repeat(random.int(100, 5_000))}`,
      path.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/i, (id) =>
        random.pick([
          id.toUpperCase(),
          `{${id}}`,
          id.replace(/-/g, ''),
          `${id}0`,
          id.slice(1),
          randomUUID(),
          '00000000-0000-0000-0000-000000000000',
          `${id}%20`,
          '..',
          '%2e%2e',
        ]),
      ),
      `${path}?`,
      `${path}#frag`,
      '*',
      `http://127.0.0.1${path}`,
      `HTTP://EVIL.EXAMPLE:1${path}`,
      `//evil.example${path}`,
    ];
    const shaped = random.pick(shapes);
    request.target = joinTarget(shaped, query);
    // Another account id (or none) in the path: the key presented no longer belongs to it.
    if (shaped.includes('#') || !shaped.startsWith('/') || shaped.startsWith('//')) request.needsRaw = true;
  },
  pathNonAscii(request, random) {
    const [path, query] = splitTarget(request.target);
    request.target = joinTarget(
      `${path}${random.pick(['\u00e9', '\u00ff', '\u0080', 'caf\u00e9', ' x', '\t'])}`,
      query,
    );
    request.needsRaw = true;
  },
  queryParameters(request, random) {
    const [path, query] = splitTarget(request.target);
    const extra: string[] = [];
    const count = random.pick([1, 3, 31, 33, 200, 1_500]);
    for (let i = 0; i < count; i += 1) {
      extra.push(
        random.pick([
          `p${i}=${random.text(random.int(0, 20))}`,
          `p${i}`,
          '=x',
          '&',
          `${random.text(3)}=%zz`,
          'x=%C3%28',
          'x=%',
          `a+b=c+d`,
        ]),
      );
    }
    request.target = joinTarget(path, [query, ...extra].filter(Boolean).join('&'));
  },
  expiredTime(request, random) {
    const [path, query] = splitTarget(request.target);
    const kept = query.split('&').filter((part) => part !== '' && !/^expiredtime=/i.test(part));
    const values = random.chance(0.2)
      ? [random.pick(EXPIRED_TIMES), random.pick(EXPIRED_TIMES)]
      : [random.pick(EXPIRED_TIMES)];
    const name = random.pick(['expiredTime', 'EXPIREDTIME', 'expiredtime', 'expired%54ime']);
    const encoded = values.map((value) => `${name}=${random.chance(0.5) ? encodeURIComponent(value) : value}`);
    request.target = joinTarget(path, [...kept, ...encoded].join('&'));
    if (encoded.some((part) => /[^\x21-\x7e]/.test(part))) request.needsRaw = true;
  },
  queryNonAscii(request, random) {
    const [path, query] = splitTarget(request.target);
    request.target = joinTarget(
      path,
      [query, `q=${random.pick(['\u00e9', '\u00ff\u00fe', 'a b', '"<>', '{}|'])}`].filter(Boolean).join('&'),
    );
    request.needsRaw = true;
  },
  subscriptionKeyInQuery(request, random, credentials) {
    const [path, query] = splitTarget(request.target);
    const name = random.pick(['Subscription-Key', 'subscription-key', 'SUBSCRIPTION-KEY', 'subscription%2Dkey']);
    const value = random.pick([
      credentials.speech.key,
      credentials.isvFace.key,
      '',
      random.text(32, '0123456789abcdef'),
      '%zz',
      'a%00b',
    ]);
    const twice = random.chance(0.3);
    request.target = joinTarget(
      path,
      [query, `${name}=${value}`, twice ? `${name}=${random.text(32, '0123456789abcdef')}` : '']
        .filter(Boolean)
        .join('&'),
    );
    if (random.chance(0.5)) {
      request.headers = request.headers.filter(([name]) => name.toLowerCase() !== 'ocp-apim-subscription-key');
    }
  },
  junkHeaders(request, random) {
    for (let i = random.int(1, 5); i > 0; i -= 1) {
      request.headers.push([
        random.pick([
          'X-Junk',
          'X-Forwarded-For',
          'Forwarded',
          'X-Original-URL',
          'Cookie',
          'Accept',
          'Accept-Encoding',
          'Origin',
          'Referer',
          'X-Ms-Client-Request-Id',
          'Authorization2',
          `X-${random.text(8)}`,
        ]),
        random.text(random.int(0, 60), 'abcdefghijklmnopqrstuvwxyz0123456789 ;=,./:-_'),
      ]);
    }
  },
  duplicateHeaders(request, random) {
    const candidates = request.headers.length > 0 ? request.headers : ([['Accept', '*/*']] as Array<[string, string]>);
    const [name, value] = random.pick(candidates);
    request.headers.push([random.mixCase(name), random.chance(0.5) ? value : random.text(random.int(1, 40))]);
  },
  oversizedHeader(request, random) {
    const size = random.pick([1_000, 8_000, 16_400, 20_000, 40_000]);
    const name = random.pick(['X-Big', 'Authorization', 'Ocp-Apim-Subscription-Key', 'Cookie', 'Content-Type']);
    request.headers.push([name, 'A'.repeat(size)]);
  },
  manyHeaders(request, random) {
    const count = random.pick([99, 101, 150, 2_100]);
    for (let i = 0; i < count; i += 1) request.headers.push([`X-H${i}`, String(i)]);
  },
  nonAsciiHeader(request, random) {
    request.headers.push([
      random.pick(['X-Name', 'Accept', 'User-Agent']),
      random.pick(['caf\u00e9', '\u00ff\u00fe\u00fd', 'Bj\u00f6rk', '\u0080\u0081', 'na\u00efve \u00e9t\u00e9']),
    ]);
    request.needsRaw = true;
  },
  crlfHeader(request, random) {
    const value = random.pick([
      'a\rb',
      'a\nX-Injected: 1',
      'a\r\nX-Injected: 1',
      'a\u0000b',
      '\r\n\r\nGET / HTTP/1.1',
      'x\r\n continued',
    ]);
    const name = random.pick(['X-Crlf', 'Authorization', 'Ocp-Apim-Subscription-Key']);
    request.headers.push([name, value]);
    request.needsRaw = true;
  },
  brokenHeaderLine(request, random) {
    request.headers.push(
      random.pick<[string, string]>([
        ['', 'no-name'],
        ['No-Colon-Here', '\u0001'],
        ['Space Name', 'x'],
        ['Trailing ', 'x'],
        ['X-Tab\t', 'x'],
        ['X\u00e9', 'x'],
        ['(x)', 'y'],
      ]),
    );
    request.needsRaw = true;
  },
  hostHeader(request, random) {
    request.headers = request.headers.filter(([name]) => name.toLowerCase() !== 'host');
    const choice = random.pick(['none', 'two', 'odd']);
    if (choice === 'none') request.omitHost = true;
    else if (choice === 'two') request.headers.push(['Host', 'a.example'], ['Host', 'b.example']);
    else
      request.headers.push([
        'Host',
        random.pick(['', 'evil.example:99999', '[::1', 'a b', '\u00e9.example', 'x'.repeat(300)]),
      ]);
    request.needsRaw = true;
  },
  contentType(request, random) {
    request.headers = request.headers.filter(([name]) => name.toLowerCase() !== 'content-type');
    if (random.chance(0.8)) request.headers.push(['Content-Type', random.pick(CONTENT_TYPES)]);
    if (/[^\x20-\x7e]/.test(request.headers.at(-1)?.[1] ?? '')) request.needsRaw = true;
  },
  mixedRealityAuthorization(request, random, credentials) {
    const { accountId, accountKey } = credentials.mixedReality;
    request.headers = request.headers.filter(([name]) => name.toLowerCase() !== 'authorization');
    const value = random.pick<string | undefined>([
      undefined,
      'Bearer',
      'Bearer ',
      `Basic ${Buffer.from(`${accountId}:${accountKey}`).toString('base64')}`,
      `Bearer ${accountId}:`,
      `Bearer :${accountKey}`,
      `Bearer ${accountId}:${accountKey}:extra`,
      `Bearer ${accountId}:${accountKey.slice(0, -1)}`,
      `Bearer ${accountId}:${accountKey}x`,
      `Bearer ${randomUUID()}:${accountKey}`,
      `Bearer ${accountId}:${'k'.repeat(2_000)}`,
      `Bearer ${accountId}:${random.text(44)}`,
      `Bearer ${accountId}:${accountKey} `,
      `bearer ${accountId.toUpperCase()}:${accountKey}`,
      `Bearer\t${accountId}:${accountKey}`,
      `Bearer  ${accountId}:${accountKey}`,
      `Bearer ${accountId}:\u00e9${accountKey}`,
      `Bearer ${accountId}:${encodeURIComponent(accountKey)}`,
    ]);
    if (value !== undefined) request.headers.push(['Authorization', value]);
    if (value !== undefined && /[^\x20-\x7e\t]/.test(value)) request.needsRaw = true;
  },
  subscriptionKeyHeader(request, random, credentials) {
    const original =
      request.headers.find(([name]) => name.toLowerCase() === 'ocp-apim-subscription-key')?.[1] ??
      credentials.speech.key;
    request.headers = request.headers.filter(([name]) => name.toLowerCase() !== 'ocp-apim-subscription-key');
    const value = random.pick<string | undefined>([
      undefined,
      '',
      '   ',
      original.slice(0, -1),
      `${original}0`,
      original.toUpperCase(),
      random.text(32, '0123456789abcdef'),
      'k'.repeat(300),
      ` ${original} `,
      `${original}, ${original}`,
      '\u00e9'.repeat(32),
    ]);
    if (value !== undefined)
      request.headers.push([
        random.pick(['Ocp-Apim-Subscription-Key', 'ocp-apim-subscription-key', 'OCP-APIM-SUBSCRIPTION-KEY']),
        value,
      ]);
    if (value !== undefined && /[^\x20-\x7e]/.test(value)) request.needsRaw = true;
  },
  wrapForm(request, random, credentials) {
    const fields: Array<[string, string]> = [
      ['wrap_name', credentials.wrap.name],
      ['wrap_password', credentials.wrap.key],
      ['wrap_scope', credentials.wrap.scope],
    ];
    const choice = random.int(0, 14);
    let body: string;
    switch (choice) {
      case 0: // a field repeated, same or other value
        fields.push([
          random.pick(['wrap_name', 'wrap_password', 'wrap_scope']),
          random.chance(0.5) ? credentials.wrap.key : random.text(10),
        ]);
        body = form(fields);
        break;
      case 1: // a field missing
        fields.splice(random.int(0, 2), 1);
        body = form(fields);
        break;
      case 2: // wrong password
        fields[1] = [
          'wrap_password',
          random.pick([
            credentials.wrap.key.slice(0, -2),
            `${credentials.wrap.key}=`,
            random.text(44),
            '',
            credentials.speech.key,
          ]),
        ];
        body = form(fields);
        break;
      case 3: // other issuer names
        fields[0] = [
          'wrap_name',
          random.pick(['Owner', 'owner ', 'OWNER', 'root', '', 'owner\u0000', '../owner', 'x'.repeat(5_000)]),
        ];
        body = form(fields);
        break;
      case 4: // other scopes
        fields[2] = [
          'wrap_scope',
          random.pick([
            'http://other.servicebus.windows.net/',
            'http://demo.servicebus.windows.net/../x',
            'http://demo.servicebus.windows.net/%2e%2e/x',
            'http://user:pw@demo.servicebus.windows.net/',
            'http://demo.servicebus.windows.net/#f',
            'ftp://demo.servicebus.windows.net/',
            'demo',
            'http://demo.servicebus.windows.net:99999/',
            'http://[::1]/',
            'http://DEMO.servicebus.windows.net/',
            'http://demo\u00e9.servicebus.windows.net/',
            `http://demo.servicebus.windows.net/${'a'.repeat(3_000)}`,
            'http://xn--demo-9ua.servicebus.windows.net/',
            'https://demo.servicebus.windows.net/q',
            'http://demo.attacker.example/',
            'http://demo.servicebus.windows.net.evil.com/',
            'http://demo.servicebus.windows.net/q/..;/q2',
          ]),
        ];
        body = form(fields);
        break;
      case 5: // many fields
        for (let i = 0; i < random.pick([61, 62, 63, 500]); i += 1) fields.push([`x${i}`, String(i)]);
        body = form(fields);
        break;
      case 6: // malformed escapes
        body = `${form(fields)}&${random.pick(['%', '%z', '%zz', '%C3%28', '%ED%A0%80', '%FF', 'a=%00'])}`;
        break;
      case 7: // raw non-ASCII or control bytes
        body = `${form(fields)}&x=${random.pick(['\u00e9', '\u0000', '\t', '\r\nx', '\u007f'])}`;
        break;
      case 8: // separators only
        body = random.pick([
          '&&&',
          '=',
          '====',
          '&=&=&',
          'wrap_name',
          'wrap_name&wrap_password&wrap_scope',
          '+',
          '++=++',
        ]);
        break;
      case 9: // JSON instead of a form
        body = JSON.stringify(Object.fromEntries(fields));
        break;
      case 10: // upper-case escapes and a trailing CRLF (valid)
        body = `${form(fields).replace(/%[0-9a-f]{2}/gi, (e) => e.toUpperCase())}\r\n`;
        break;
      case 11: // names in another case
        body = form(fields.map(([name, value]) => [random.mixCase(name), value]));
        break;
      case 12: // plus signs and spaces in the password
        fields[1] = ['wrap_password', credentials.wrap.key.replace(/\+/g, ' ')];
        body = form(fields).replace(/%20/g, '+');
        break;
      case 13: // double-encoded
        body = encodeURIComponent(form(fields));
        break;
      default: // valid fields in another order
        body = form([fields[2] as [string, string], fields[0] as [string, string], fields[1] as [string, string]]);
    }
    request.body = Buffer.from(body, 'latin1');
  },
  latBody(request, random, credentials) {
    const target = credentials.speech.resourceId;
    const bodies: Array<string | Buffer> = [
      '',
      'null',
      '[]',
      '"text"',
      '1',
      'true',
      '{}',
      '{body}',
      '{"targetAzureResourceId":null,"featureFlags":null}',
      JSON.stringify({ targetAzureResourceId: target }),
      JSON.stringify({ featureFlags: ['Face.Identification'] }),
      JSON.stringify({ targetAzureResourceId: target, featureFlags: [] }),
      JSON.stringify({ targetAzureResourceId: target, featureFlags: [1, {}, null] }),
      JSON.stringify({ targetAzureResourceId: target, featureFlags: 'Face.Identification' }),
      JSON.stringify({ targetAzureResourceId: target, featureFlags: ['LimitedAccess.HighRisk'] }),
      JSON.stringify({ targetAzureResourceId: `${target}/../x`, featureFlags: ['Face.Identification'] }),
      JSON.stringify({ targetAzureResourceId: 'x'.repeat(10_000), featureFlags: ['a'] }),
      `{"__proto__":{"featureFlags":["Face.Identification"]},"targetAzureResourceId":"${target}"}`,
      `{"constructor":{"prototype":{"x":1}},"targetAzureResourceId":"${target}","featureFlags":["Face.Identification"]}`,
      `{"targetAzureResourceId":"${target}","TARGETAZURERESOURCEID":"x","featureFlags":["Face.Identification"],"featureflags":[]}`,
      `{"targetAzureResourceId":"\\ud800","featureFlags":["\\udfff"]}`,
      `{"a":1e999999}`,
      `{"a":-0.0e-400}`,
      `{"a":"${'\\u0000'.repeat(100)}"}`,
      `\ufeff${JSON.stringify({ targetAzureResourceId: target, featureFlags: ['Face.Identification'] })}`,
      Buffer.from(JSON.stringify({ targetAzureResourceId: target, featureFlags: ['Face.Identification'] }), 'utf16le'),
      `${'['.repeat(random.pick([17, 1_000, 8_000]))}${']'.repeat(random.int(0, 3))}`,
      `${'{"a":'.repeat(random.pick([17, 2_000]))}1${'}'.repeat(random.int(0, 30))}`,
      `{"targetAzureResourceId":"${target}","featureFlags":["Face.Identification"]`,
      `{"targetAzureResourceId":"${target}","featureFlags":["Face.Identification"]}}`,
      `{"targetAzureResourceId":"${target}","featureFlags":["Face.Identification"],}`,
      `{'targetAzureResourceId':'${target}'}`,
    ];
    const chosen = random.pick(bodies);
    request.body = typeof chosen === 'string' ? Buffer.from(chosen, 'utf8') : chosen;
  },
  binaryBody(request, random) {
    request.body = random.bytes(random.pick([1, 16, 300, 2_000, 16_000]));
  },
  invalidUtf8Body(request, random) {
    const bad = random.pick([
      Buffer.from([0xc3, 0x28]),
      Buffer.from([0xff, 0xfe]),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
      Buffer.from([0x80]),
    ]);
    request.body = Buffer.concat([
      request.body.subarray(0, random.int(0, request.body.length)),
      bad,
      request.body.subarray(random.int(0, request.body.length)),
    ]);
  },
  hugeBody(request, random) {
    const size = random.chance(0.02) ? 1_100_000 : random.pick([16_384, 16_385, 20_000, 100_000]);
    const filler = request.route === 'wrapToken' ? '&x=1' : ' ';
    request.body = Buffer.concat([
      request.body,
      Buffer.from(filler.repeat(Math.ceil(size / filler.length)).slice(0, size)),
    ]);
  },
  framing(request, random) {
    request.framing = random.pick([
      'chunked',
      'bad-chunked',
      'cl-and-te',
      'two-lengths',
      'short-length',
      'huge-length',
      'none',
    ] as const);
    if (request.framing === 'none' && request.body.length === 0) request.body = Buffer.from('x');
    request.needsRaw = true;
  },
  httpVersion(request, random) {
    request.httpVersion = random.pick([
      'HTTP/1.0',
      'HTTP/1.2',
      'HTTP/2.0',
      'HTTP/0.9',
      'HTTP/1.1 x',
      'http/1.1',
      'HTTP/11',
      '',
    ]);
    request.needsRaw = true;
  },
  expectContinue(request) {
    request.headers.push(['Expect', '100-continue']);
    request.needsRaw = true;
  },
};

/** Mutations that fit a route (credential mutations only where that credential is used). */
function mutationsFor(route: RouteName): string[] {
  const general = Object.keys(MUTATIONS).filter(
    (name) =>
      ![
        'mixedRealityAuthorization',
        'subscriptionKeyHeader',
        'subscriptionKeyInQuery',
        'wrapForm',
        'latBody',
        'expiredTime',
      ].includes(name),
  );
  switch (route) {
    case 'mixedRealityToken':
      return [...general, 'mixedRealityAuthorization', 'mixedRealityAuthorization'];
    case 'issueToken':
      return [...general, 'subscriptionKeyHeader', 'subscriptionKeyHeader', 'subscriptionKeyInQuery'];
    case 'issueLimitedAccessToken':
      return [
        ...general,
        'subscriptionKeyHeader',
        'subscriptionKeyInQuery',
        'latBody',
        'latBody',
        'latBody',
        'expiredTime',
        'expiredTime',
        'expiredTime',
      ];
    case 'wrapToken':
      return [...general, 'wrapForm', 'wrapForm', 'wrapForm', 'wrapForm'];
    default:
      return general;
  }
}

/** Every function of the catalogue (token flows 20 each, the documents 4 each) and unknown paths (10). */
function routeWeights(): ReadonlyArray<[RouteName, number]> {
  return [...flowNames.map((flow): [RouteName, number] => [flow, TOKEN_ROUTES.has(flow) ? 20 : 4]), ['unknown', 10]];
}

/**
 * The next fuzz request: a route by weight, its valid request, and (three times in four) one to three
 * mutations; `needsRaw` is set when undici cannot send it.
 */
export function nextFuzzRequest(random: Random, credentials: DemoCredentials): FuzzRequest {
  const weights = routeWeights();
  let roll = random.next() * weights.reduce((sum, [, weight]) => sum + weight, 0);
  let route: RouteName = 'unknown';
  for (const [name, weight] of weights) {
    roll -= weight;
    if (roll < 0) {
      route = name;
      break;
    }
  }
  const request = validRequest(route, credentials, random);
  if (random.chance(0.75)) {
    const catalogue = mutationsFor(route);
    for (let i = random.int(1, 3); i > 0; i -= 1) {
      const name = random.pick(catalogue);
      MUTATIONS[name]?.(request, random, credentials);
      request.mutations.push(name);
    }
  }
  request.credentialIntact = credentialPresented(request, credentials);
  if (!request.needsRaw && !undiciCanSend(request)) request.needsRaw = true;
  if (!request.needsRaw && random.chance(0.15)) request.needsRaw = true; // the raw path also sees clean requests
  return request;
}

function undiciCanSend(request: FuzzRequest): boolean {
  if (!STANDARD_METHODS.includes(request.method)) return false;
  if ((request.method === 'GET' || request.method === 'HEAD') && request.body.length > 0) return false;
  if (!/^\/[\x21-\x7e]*$/.test(request.target) || request.target.includes('#')) return false;
  for (const [name, value] of request.headers) {
    if (!TOKEN_CHARS.test(name) || FORBIDDEN_FOR_UNDICI.has(name.toLowerCase())) return false;
    if (/[^\x20-\x7e\t]/.test(value)) return false;
  }
  return !request.omitHost && !request.headers.some(([name]) => name.toLowerCase() === 'host');
}

/**
 * Whether the request, as finally mutated, still presents a valid credential the way the flow reads it
 * (docs/contracts/mixed-reality-sts.md#request, docs/contracts/cognitive-issue-token.md#request, docs/contracts/acs-wrap.md#request). When it does not, a 200 with a token is an authentication bypass. The
 * check errs towards "valid" where the wire is ambiguous, so that it never reports a false bypass.
 */
export function credentialPresented(request: FuzzRequest, credentials: DemoCredentials): boolean | undefined {
  // CR/LF or NUL inside a header can end the header block early or split a line: which headers the server
  // saw is then not what the list says.
  if (request.headers.some(([name, value]) => /[\r\n\0]/.test(name + value))) return undefined;
  const headerValues = (wanted: string): string[] =>
    request.headers.filter(([name]) => name.toLowerCase() === wanted).map(([, value]) => value);
  // As the app reads a URL: the query is everything after the first `?` (a second `?` belongs to it).
  const [rawPath, query] = splitTarget(request.target.split('#')[0] ?? '');
  switch (request.route) {
    case 'mixedRealityToken': {
      const { accountId, accountKey } = credentials.mixedReality;
      const segments = routedSegments(rawPath);
      if (segments === undefined) return false;
      const [first, pathId, last, ...rest] = segments;
      const routed = first?.toLowerCase() === 'accounts' && last?.toLowerCase() === 'token' && rest.length === 0;
      const authorization = headerValues('authorization');
      if (!routed || pathId?.toLowerCase() !== accountId.toLowerCase() || authorization.length !== 1) return false;
      const presented = /^Bearer[ \t]+([^:]+):(.*)$/i.exec((authorization[0] ?? '').trim());
      return presented?.[1]?.toLowerCase() === accountId.toLowerCase() && presented[2] === accountKey;
    }
    case 'issueToken':
    case 'issueLimitedAccessToken': {
      const valid =
        request.route === 'issueToken' ? [credentials.speech.key, credentials.isvFace.key] : [credentials.isvFace.key];
      const header = headerValues('ocp-apim-subscription-key')
        .map((value) => value.trim())
        .filter((value) => value !== '');
      if (header.length > 0) return header.length === 1 && valid.includes(header[0] as string);
      let keys: string[];
      try {
        keys = [...new URLSearchParams(query)]
          .filter(([name]) => name.toLowerCase() === 'subscription-key')
          .map(([, v]) => v.trim())
          .filter(Boolean);
      } catch {
        return false;
      }
      return keys.length === 1 && valid.includes(keys[0] as string);
    }
    case 'wrapToken': {
      const fields = new URLSearchParams(request.body.toString('latin1').replace(/[\r\n]+$/, ''));
      const names = fields.getAll('wrap_name');
      const passwords = fields.getAll('wrap_password');
      return (
        names.length === 1 &&
        names[0] === credentials.wrap.name &&
        passwords.length === 1 &&
        passwords[0] === credentials.wrap.key
      );
    }
    default:
      return true;
  }
}

/**
 * The path segments as the host routes them, written here independently of the host: dot segments removed
 * first (RFC 3986 section 5.2.4, with `%2E` counted as a dot, as Kestrel does), one leading and one trailing
 * slash dropped, then each segment percent-decoded (so an encoded `/` stays inside its segment; literals match
 * in any case, which the caller does). Undefined when a segment is not valid percent-encoding (the host answers
 * 400).
 */
export function routedSegments(rawPath: string): string[] | undefined {
  const kept: string[] = [];
  const segments = rawPath.split('/').slice(1);
  segments.forEach((segment, index) => {
    const dots = segment.replace(/%2e/gi, '.');
    if (dots === '.' || dots === '..') {
      if (dots === '..') kept.pop();
      if (index === segments.length - 1) kept.push('');
    } else {
      kept.push(segment);
    }
  });
  const path = `/${kept.join('/')}`.replace(/^\//, '').replace(/\/$/, '');
  try {
    return path === '' ? [] : path.split('/').map((segment) => decodeURIComponent(segment));
  } catch {
    return undefined;
  }
}

/**
 * Whether a function answers `request`'s route and method. When none does, the host's 404 comes before any of
 * the body is read (as Azure's host answers an unknown route), so an oversized body is cut short by that 404
 * instead of a 413: the same early close, a different right answer.
 */
export function servedByAFunction(request: FuzzRequest): boolean {
  if (request.route === 'unknown') return false;
  const methods: readonly string[] = flowDeclaration(request.route).methods;
  return methods.includes(request.method.toUpperCase());
}

/**
 * Whether the host or the app refuses `request` on its size before reading all of it: a URL over the limit
 * (414), header fields over theirs (431), a body over the body limit (413, from its declared length). The
 * server may then close the connection while the client is still writing, so the client sees EPIPE or
 * ECONNRESET instead of the answer.
 */
export function refusedOnSize(request: FuzzRequest, limits: SizeLimits): boolean {
  let headerBytes = 0;
  for (const [name, value] of request.headers)
    headerBytes += Buffer.byteLength(name, 'latin1') + Buffer.byteLength(value, 'utf8') + 4;
  return (
    request.body.length > limits.maxBodyBytes ||
    request.target.length > limits.maxUrlLength ||
    headerBytes > limits.maxHeaderBytes ||
    request.headers.length > limits.maxHeaderCount
  );
}

/** The size limits the app enforces (`limits` of the host's configuration). */
export interface SizeLimits {
  readonly maxBodyBytes: number;
  readonly maxUrlLength: number;
  readonly maxHeaderBytes: number;
  readonly maxHeaderCount: number;
}

function splitTarget(target: string): [string, string] {
  const at = target.indexOf('?');
  return at === -1 ? [target, ''] : [target.slice(0, at), target.slice(at + 1)];
}

function joinTarget(path: string, query: string): string {
  return query === '' ? path : `${path}?${query}`;
}

function form(fields: ReadonlyArray<readonly [string, string]>): string {
  return fields.map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`).join('&');
}

/** A one-line description for the report: route, method, mutations (never a key). */
export function describeRequest(request: FuzzRequest): string {
  const path = request.target.split('?')[0] ?? '';
  const shown = path.length > 60 ? `${path.slice(0, 60)}…` : path;
  return `${request.route} ${JSON.stringify(request.method)} ${JSON.stringify(shown).replace(/[0-9a-f]{8}-[0-9a-f-]{27}/gi, '{id}')} [${request.mutations.join(', ') || 'valid'}] via ${request.needsRaw ? 'raw socket' : 'undici'}`;
}
