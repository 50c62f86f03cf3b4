import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FlowDependencies } from '../../shared/flows/flowDependencies.js';
import {
  EXPIRED_TIME_DEFAULT_SECONDS,
  limitedAccessTokenMessages,
  parseExpiredTime,
  parseLimitedAccessTokenBody,
} from '../../shared/flows/limitedAccessTokenRequest.js';
import { issueMixedRealityToken } from '../../shared/flows/mixedRealityToken.js';
import { StsError } from '../../shared/errors.js';
import { parseFormBody } from '../../shared/http/formBody.js';
import { queryParameterValueLists, queryParameterValues } from '../../shared/http/queryParameters.js';
import { jsonNestingExceeds, requestLimitViolation } from '../../shared/security/requestLimits.js';
import { encodeSwtComponent, signSwt, SwtError, verifySwt, type SwtClaim } from '../../shared/tokens/swt.js';

/**
 * Property tests (fast-check) for every parser a client's bytes reach (docs/hardening.md#property-tests): whatever the input,
 * each either answers or throws its own typed error (never a TypeError, RangeError or SyntaxError, which
 * would be a 500), and what can round-trip does.
 */

const RUNS = { numRuns: 500 } as const;

/** Whether `s` is well-formed UTF-16 (no lone surrogate): what any client can encode. */
function isWellFormed(s: string): boolean {
  try {
    encodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}
/** Well-formed Unicode text (lone surrogates cannot be encoded by any client). */
const text = (maxLength = 40) => fc.string({ unit: 'binary', maxLength }).filter(isWellFormed);
/** Bytes that are mostly ASCII with form punctuation, and sometimes anything: where parsers break. */
const hostileBytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc
    .array(fc.constantFrom(...'ab=&%+0f9Z \r\n\t\u0000'.split('')), { maxLength: 200 })
    .map((chars) => Buffer.from(chars.join(''), 'latin1')),
  fc.string({ maxLength: 200 }).map((s) => Buffer.from(s, 'utf8')),
);

/** Whether `action` throws only the allowed typed error (or nothing). */
function throwsOnly<E>(action: () => unknown, type: new (...args: never[]) => E): boolean {
  try {
    action();
    return true;
  } catch (error) {
    return error instanceof type;
  }
}

describe('form body parser (WRAP, docs/contracts/acs-wrap.md#request)', () => {
  it('never throws, and says why when it refuses', () => {
    fc.assert(
      fc.property(hostileBytes, (bytes) => {
        const result = parseFormBody(bytes);
        if (!result.ok) expect(result.problem.length).toBeGreaterThan(0);
        else
          for (const values of result.fields.values()) for (const value of values) expect(typeof value).toBe('string');
      }),
      RUNS,
    );
  });

  it('round-trips any fields, repeated ones in order, encoded like Node or like .NET (lower-case hex, + for space)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(text(12), text(40)), { maxLength: 12 }), fc.boolean(), (fields, dotNetStyle) => {
        const encode = dotNetStyle ? encodeSwtComponent : encodeURIComponent;
        const body = fields.map(([name, value]) => `${encode(name)}=${encode(value)}`).join('&');
        const parsed = parseFormBody(Buffer.from(body, 'latin1'));
        expect(parsed.ok).toBe(true);
        if (!parsed.ok) return;
        const expected = new Map<string, string[]>();
        for (const [name, value] of fields) expected.set(name, [...(expected.get(name) ?? []), value]);
        expect(new Map(parsed.fields)).toEqual(expected);
      }),
      RUNS,
    );
  });

  it('refuses any byte outside printable ASCII before the trailing line break', () => {
    fc.assert(
      fc.property(
        text(20),
        fc.integer({ min: 0, max: 255 }).filter((b) => b < 0x20 || b > 0x7e),
        text(20),
        (before, byte, after) => {
          const body = Buffer.concat([
            Buffer.from(encodeURIComponent(before)),
            Buffer.from([byte]),
            Buffer.from(`x${encodeURIComponent(after)}`),
          ]);
          expect(parseFormBody(body).ok).toBe(false);
        },
      ),
      RUNS,
    );
  });
});

/** A query of `parameters` (name, value, upper-case the name?), each name and value percent-encoded. */
function queryOf(parameters: readonly (readonly [string, string, boolean])[]): string {
  return parameters
    .map(
      ([name, value, upper]) =>
        `${encodeURIComponent(upper ? name.toUpperCase() : name.toLowerCase())}=${encodeURIComponent(value)}`,
    )
    .join('&');
}

describe('query parameters (docs/contracts/cross-cutting.md#query-names)', () => {
  it('never throws, whatever the URL', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), text(10), (url, name) =>
        Array.isArray(queryParameterValues(url, name)),
      ),
      RUNS,
    );
  });

  it('returns every value of a name in URL order, the name matched in any case', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('Subscription-Key', 'expiredTime', 'other', 'x'), text(20), fc.boolean()), {
          maxLength: 10,
        }),
        fc.constantFrom('Subscription-Key', 'expiredTime'),
        (parameters, wanted) => {
          const query = queryOf(parameters);
          const values = queryParameterValues(`https://sts.example/sts/v1.0/issueToken?${query}`, wanted);
          expect(values).toEqual(parameters.filter(([name]) => name === wanted).map(([, value]) => value));
        },
      ),
      RUNS,
    );
  });

  it('reads several names from one parse exactly as it reads each alone', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.constantFrom('Subscription-Key', 'expiredTime', 'resource', 'x'), text(20), fc.boolean()),
          {
            maxLength: 10,
          },
        ),
        fc.boolean(),
        (parameters, withQuery) => {
          const query = queryOf(parameters);
          const url = `https://sts.example/sts/v1.0/issueLimitedAccessToken${withQuery ? `?${query}` : ''}`;
          const lists = queryParameterValueLists(url, ['Subscription-Key', 'resource', 'expiredTime']);
          for (const name of ['Subscription-Key', 'resource', 'expiredTime'] as const) {
            const expected = withQuery ? parameters.filter(([given]) => given === name).map(([, value]) => value) : [];
            expect(lists[name]).toEqual(expected);
          }
        },
      ),
      RUNS,
    );
  });
});

describe('expiredTime (docs/contracts/cognitive-limited-access-token.md#request)', () => {
  it('accepts exactly the decimal integers 60..86400, written with digits only, and refuses anything else with a 400', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: -100, max: 100_000 }).map(String),
          fc.string({ maxLength: 12 }),
          fc.constantFrom(
            '3600abc',
            '1e3',
            '-1',
            '0x10',
            ' 3600',
            '3600 ',
            '+3600',
            '3600.0',
            '\uff13\uff16\uff10\uff10',
            '0000000060',
            '1'.repeat(40),
          ),
        ),
        (value) => {
          const wellFormed = /^[0-9]{1,9}$/.test(value) && Number(value) >= 60 && Number(value) <= 86_400;
          if (wellFormed) {
            expect(parseExpiredTime([value])).toBe(Number(value));
          } else {
            const error = captured(() => parseExpiredTime([value]));
            expect(error).toBeInstanceOf(StsError);
            expect(error).toMatchObject({ status: 400, publicMessage: limitedAccessTokenMessages.expiredTime });
          }
        },
      ),
      RUNS,
    );
  });

  it('defaults to 3600 when absent and refuses any repetition', () => {
    expect(parseExpiredTime([])).toBe(EXPIRED_TIME_DEFAULT_SECONDS);
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 6 }), { minLength: 2, maxLength: 5 }), (values) => {
        expect(captured(() => parseExpiredTime(values))).toMatchObject({
          status: 400,
          publicMessage: limitedAccessTokenMessages.expiredTimeRepeated,
        });
      }),
    );
  });
});

describe('limited access token JSON body (docs/contracts/cognitive-limited-access-token.md#request, #response)', () => {
  const jsonText = fc.oneof(
    fc.json({ maxDepth: 6 }),
    fc.string({ maxLength: 100 }),
    fc.constantFrom('[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]', '{"a":', '\ufeff{}'),
  );

  it('never throws anything but a 400 with one of the documented messages', () => {
    const documented = new Set<string>([
      limitedAccessTokenMessages.bodyEmpty,
      limitedAccessTokenMessages.bodyInvalid,
      limitedAccessTokenMessages.targetResourceId,
      limitedAccessTokenMessages.featureFlags,
    ]);
    fc.assert(
      fc.property(
        fc.oneof(
          jsonText.map((t) => Buffer.from(t, 'utf8')),
          fc.uint8Array({ maxLength: 200 }),
        ),
        (bytes) => {
          const error = captured(() => parseLimitedAccessTokenBody(bytes));
          if (error === undefined) return;
          expect(error).toBeInstanceOf(StsError);
          expect((error as StsError).status).toBe(400);
          expect(documented.has((error as StsError).publicMessage)).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it('round-trips a valid body: the target as sent, the flags trimmed and deduplicated in order', () => {
    const resourceId = fc
      .tuple(
        fc.uuid(),
        fc.stringMatching(/^[-\w.()]{0,20}[-\w()]$/),
        fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?$/),
      )
      .map(
        ([subscription, group, name]) =>
          `/subscriptions/${subscription}/resourceGroups/${group}/providers/Microsoft.CognitiveServices/accounts/${name}`,
      );
    const flag = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => s.trim() !== '' && isWellFormed(s));
    fc.assert(
      fc.property(
        resourceId,
        fc.array(flag, { minLength: 1, maxLength: 6 }),
        fc.constantFrom('targetAzureResourceId', 'resourceId', 'TARGETAZURERESOURCEID'),
        (id, flags, property) => {
          const parsed = parseLimitedAccessTokenBody(
            Buffer.from(JSON.stringify({ [property]: id, featureFlags: flags })),
          );
          expect(parsed.targetAzureResourceId).toBe(id);
          expect(parsed.featureFlags).toEqual([...new Set(flags.map((f) => f.trim()))]);
        },
      ),
      RUNS,
    );
  });

  it('measures nesting exactly: depth n is refused above the limit only', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), (depth, limit) => {
        expect(jsonNestingExceeds(`${'['.repeat(depth)}${']'.repeat(depth)}`, limit)).toBe(depth > limit);
      }),
    );
  });
});

describe('Mixed Reality Authorization header (docs/contracts/mixed-reality-sts.md#request)', () => {
  /** Flow dependencies whose directory records what it was asked and knows no account. */
  function recordingDeps(): { deps: FlowDependencies; asked: Array<[string, string]> } {
    const asked: Array<[string, string]> = [];
    const deps = {
      credentials: {
        verifyAccountKey: async (accountId: string, key: string) => {
          asked.push([accountId, key]);
          return { ok: false as const, reason: 'unknown_credential' as const };
        },
      },
    } as unknown as FlowDependencies; // only the directory is reached before the lookup
    return { deps, asked };
  }

  it('answers any header with a 400/401 StsError, never anything else', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uuid(),
        fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('Bearer', 'Bearer :', 'Basic x', 'Bearer a:b:c')),
        async (accountId, header) => {
          const { deps } = recordingDeps();
          const error = await issueMixedRealityToken({ accountId, authorization: header, now: new Date() }, deps).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(StsError);
          expect([400, 401]).toContain((error as StsError).status);
        },
      ),
      RUNS,
    );
  });

  it('splits `Bearer {id}:{key}` at the first colon and looks up exactly that id and key', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uuid(),
        fc.stringMatching(/^[\x21-\x7e]{1,100}$/),
        fc.constantFrom('Bearer ', 'bearer ', 'BEARER\t', 'Bearer   '),
        fc.boolean(),
        async (accountId, key, scheme, upperInHeader) => {
          const { deps, asked } = recordingDeps();
          const headerId = upperInHeader ? accountId.toUpperCase() : accountId;
          await issueMixedRealityToken(
            { accountId, authorization: `${scheme}${headerId}:${key}`, now: new Date() },
            deps,
          ).catch(() => undefined);
          expect(asked).toEqual([[accountId.toLowerCase(), key]]);
        },
      ),
      RUNS,
    );
  });
});

describe('SWT (docs/contracts/acs-wrap.md#swt)', () => {
  const key = randomBytes(32).toString('base64');
  const claimName = text(16).filter((name) => name !== '' && name !== 'HMACSHA256' && name !== 'ExpiresOn');
  const claims = fc
    .uniqueArray(fc.tuple(claimName, text(40)), { selector: ([name]) => name, maxLength: 6 })
    .chain((pairs) =>
      fc.integer({ min: 0, max: pairs.length }).map((at): SwtClaim[] => {
        const list: SwtClaim[] = [...pairs];
        list.splice(at, 0, ['ExpiresOn', '4102444800']); // 2100-01-01
        return list.length > 1 && list[list.length - 1]?.[0] === 'ExpiresOn' ? [...list, ['z', 'last']] : list;
      }),
    )
    .filter((list) => list[list.length - 1]?.[0] !== 'ExpiresOn' && new Set(list.map(([n]) => n)).size === list.length);

  it('verifies what it signs, claims decoded in token order', () => {
    fc.assert(
      fc.property(claims, (list) => {
        expect(verifySwt(signSwt(list, key), key, { now: new Date('2030-01-01T00:00:00Z') })).toEqual(list);
      }),
      RUNS,
    );
  });

  it('refuses any change to the signed part with a typed error', () => {
    fc.assert(
      fc.property(
        claims,
        fc.nat(),
        fc.constantFrom('a', 'Z', '0', '%', '&', '=', '+', '.'),
        (list, position, replacement) => {
          const token = signSwt(list, key);
          const signedLength = token.lastIndexOf('&HMACSHA256=');
          const at = position % signedLength;
          fc.pre(token[at] !== replacement);
          const tampered = `${token.slice(0, at)}${replacement}${token.slice(at + 1)}`;
          const error = captured(() => verifySwt(tampered, key, { now: new Date('2030-01-01T00:00:00Z') }));
          expect(error).toBeInstanceOf(SwtError);
        },
      ),
      RUNS,
    );
  });

  it('never throws anything but SwtError on arbitrary input', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.constantFrom('HMACSHA256=', 'a=b&HMACSHA256=x', '&HMACSHA256=%zz', 'a=%E0%A4&HMACSHA256=x'),
        ),
        (token) => throwsOnly(() => verifySwt(token, key), SwtError),
      ),
      RUNS,
    );
  });
});

describe('request limits', () => {
  it('never throw, whatever the URL and headers, and refuse only with 400/414/431', () => {
    const limits = { maxUrlLength: 100, maxQueryParameters: 5, maxHeaderBytes: 200, maxHeaderCount: 5 };
    fc.assert(
      fc.property(
        fc.string({ maxLength: 300 }),
        fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 80 })), { maxLength: 10 }),
        (url, headers) => {
          const refusal = requestLimitViolation({ url, headers }, limits);
          if (refusal) expect([400, 414, 431]).toContain(refusal.status);
        },
      ),
      RUNS,
    );
  });
});

function captured(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return undefined;
}
