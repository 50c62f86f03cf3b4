import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  signSwt,
  verifySwt,
  SwtError,
  encodeSwtComponent,
  swtSigningKey,
  type SwtClaim,
} from '../../shared/tokens/swt.js';

/** SWT 0.9.5.1 spec vector (docs/contracts/acs-wrap.md#swt, source A2). */
const specVector = {
  key: 'N4QeKa3c062VBjnVK6fb+rnwURkcwGXh7EoNK34n0uM=',
  claims: [
    ['Issuer', 'issuer.example.com'],
    ['ExpiresOn', '1262304000'],
    ['com.example.group', 'gold'],
    ['over18', 'true'],
  ] as SwtClaim[],
  message: 'Issuer=issuer.example.com&ExpiresOn=1262304000&com.example.group=gold&over18=true',
  signature: 'AT55+2jLQeuigpg0xm/vn7tjpSGXBUfFe0UXb0/9opE=',
  encodedSignature: 'AT55%2b2jLQeuigpg0xm%2fvn7tjpSGXBUfFe0UXb0%2f9opE%3d',
};

/** OAuth WRAP 0.9 draft-hardt-oauth-01 Appendix A vector (docs/contracts/acs-wrap.md#swt, source A1). */
const wrapVector = {
  key: '3iK5ZYAoBQuOqSgF/YqlDw70HKRmbyXkrl5f4SJ4Toc=',
  claims: [
    ['net.example.auth.account', 'datadumper'],
    ['ExpiresOn', '1265202306'],
    ['Audience', 'crm.example.com'],
    ['Issuer', 'auth.example.net'],
  ] as SwtClaim[],
  message: 'net.example.auth.account=datadumper&ExpiresOn=1265202306&Audience=crm.example.com&Issuer=auth.example.net',
  signature: 'N9//0tSos78Me36+ioBH0sFKfd7eCsURlEIheoUbCJk=',
  encodedSignature: 'N9%2f%2f0tSos78Me36%2bioBH0sFKfd7eCsURlEIheoUbCJk%3d',
};

const key = Buffer.alloc(32, 7).toString('base64');
const before = (seconds: number) => new Date((seconds - 60) * 1000);

describe('signSwt reproduces the published vectors', () => {
  for (const [label, vector] of [
    ['SWT spec', specVector],
    ['WRAP appendix A', wrapVector],
  ] as const) {
    it(`${label}: same message bytes and same HMACSHA256`, () => {
      const token = signSwt(vector.claims, vector.key);
      expect(token).toBe(`${vector.message}&HMACSHA256=${vector.encodedSignature}`);
    });

    it(`${label}: verifySwt accepts it and returns the claims in order`, () => {
      const expiresOn = Number(new Map(vector.claims).get('ExpiresOn'));
      const token = `${vector.message}&HMACSHA256=${vector.encodedSignature}`;
      expect(verifySwt(token, vector.key, { now: before(expiresOn) })).toEqual(vector.claims);
    });
  }
});

describe('signSwt encodes like .NET HttpUtility.UrlEncode', () => {
  it('reproduces the claim bytes of the real ACS token in the Service Bus doc example', () => {
    // docs/contracts/acs-wrap.md#response: the wrap_access_token value, decoded once, is the single-encoded SWT.
    const wrapAccessToken =
      'net.windows.servicebus.action%3dListen%252cManage%252cSend%26http%253a%252f%252fschemas.microsoft.com%252faccesscontrolservice%252f2010%252f07%252fclaims%252fidentityprovider%3dhttps%253a%252f%252fyour-namespace-sb.accesscontrol.windows.net%252f%26Audience%3dhttp%253a%252f%252fyour-namespace.servicebus.windows.net%252f%26ExpiresOn%3d1404435127%26Issuer%3dhttps%253a%252f%252fyour-namespace-sb.accesscontrol.windows.net%252f%26HMACSHA256%3dF%252bBoXUoifWdT%252fly8Oic9V1oPBbc3KmXKbSJbVhGSopU%253d';
    const swt = decodeURIComponent(wrapAccessToken);
    const unsigned = swt.slice(0, swt.lastIndexOf('&HMACSHA256='));
    const claims: SwtClaim[] = [
      ['net.windows.servicebus.action', 'Listen,Manage,Send'],
      [
        'http://schemas.microsoft.com/accesscontrolservice/2010/07/claims/identityprovider',
        'https://your-namespace-sb.accesscontrol.windows.net/',
      ],
      ['Audience', 'http://your-namespace.servicebus.windows.net/'],
      ['ExpiresOn', '1404435127'],
      ['Issuer', 'https://your-namespace-sb.accesscontrol.windows.net/'],
    ];
    const token = signSwt(claims, key);
    expect(token.startsWith(`${unsigned}&HMACSHA256=`)).toBe(true);
    expect(verifySwt(token, key, { now: before(1404435127) })).toEqual(claims);
  });

  it('escapes = & % + space and non-ASCII so no raw separator appears inside a pair', () => {
    const claims: SwtClaim[] = [
      ['a=b&c', 'x=1&y=2 %+ ~é😀'],
      ['ExpiresOn', '2000000000'],
      ['safe', "-_.!*()'"],
    ];
    const token = signSwt(claims, key);
    expect(
      token.startsWith(
        'a%3db%26c=x%3d1%26y%3d2+%25%2b+%7e%c3%a9%f0%9f%98%80&ExpiresOn=2000000000&safe=-_.!*()%27&HMACSHA256=',
      ),
    ).toBe(true);
    for (const pair of token.split('&')) expect(pair.split('=')).toHaveLength(2);
    expect(verifySwt(token, key, { now: before(2000000000) })).toEqual(claims);
  });
});

describe('signSwt refuses tokens clients cannot parse', () => {
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      return error instanceof SwtError ? error.code : 'not an SwtError';
    }
    return 'no error';
  };

  it('ExpiresOn last, duplicate names, reserved or empty names, no claims', () => {
    expect(
      code(() =>
        signSwt(
          [
            ['Audience', 'a'],
            ['ExpiresOn', '1'],
          ],
          key,
        ),
      ),
    ).toBe('ERR_SWT_INVALID_CLAIMS');
    expect(
      code(() =>
        signSwt(
          [
            ['Audience', 'a'],
            ['Audience', 'b'],
            ['ExpiresOn', '1'],
            ['x', 'y'],
          ],
          key,
        ),
      ),
    ).toBe('ERR_SWT_INVALID_CLAIMS');
    expect(code(() => signSwt([['HMACSHA256', 'a']], key))).toBe('ERR_SWT_INVALID_CLAIMS');
    expect(code(() => signSwt([['', 'a']], key))).toBe('ERR_SWT_INVALID_CLAIMS');
    expect(code(() => signSwt([], key))).toBe('ERR_SWT_INVALID_CLAIMS');
  });

  it('a key that is not base64', () => {
    expect(code(() => signSwt([['a', 'b']], 'not base64!'))).toBe('ERR_SWT_INVALID_KEY');
    expect(code(() => signSwt([['a', 'b']], ''))).toBe('ERR_SWT_INVALID_KEY');
  });
});

describe('verifySwt', () => {
  const expiresOn = 1_700_000_000;
  const claims: SwtClaim[] = [
    ['net.windows.servicebus.action', 'Listen,Manage,Send'],
    ['Audience', 'http://ns.servicebus.example/q'],
    ['ExpiresOn', String(expiresOn)],
    ['Issuer', 'https://ns-sb.sts.example/'],
  ];
  const token = signSwt(claims, key);
  const now = new Date((expiresOn - 10) * 1000);
  const failure = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      return error instanceof SwtError ? error.code : 'not an SwtError';
    }
    return 'verified';
  };

  it('accepts a fresh token with the expected audience and issuer', () => {
    expect(
      verifySwt(token, key, { now, audience: 'http://ns.servicebus.example/q', issuer: 'https://ns-sb.sts.example/' }),
    ).toEqual(claims);
  });

  it('rejects a signature made with another key', () => {
    expect(failure(() => verifySwt(token, Buffer.alloc(32, 8).toString('base64'), { now }))).toBe(
      'ERR_SWT_SIGNATURE_INVALID',
    );
  });

  it('rejects a changed claim', () => {
    const tampered = token.replace('Listen%2cManage%2cSend', 'Manage');
    expect(failure(() => verifySwt(tampered, key, { now }))).toBe('ERR_SWT_SIGNATURE_INVALID');
  });

  it('rejects a changed signature', () => {
    const sig = token.slice(token.lastIndexOf('=') + 1);
    const tampered = token.slice(0, token.length - sig.length) + (sig.startsWith('A') ? 'B' : 'A') + sig.slice(1);
    expect(failure(() => verifySwt(tampered, key, { now }))).toBe('ERR_SWT_SIGNATURE_INVALID');
  });

  it('rejects an expired token, honouring the clock skew', () => {
    const at = new Date(expiresOn * 1000);
    expect(failure(() => verifySwt(token, key, { now: at }))).toBe('ERR_SWT_EXPIRED');
    expect(failure(() => verifySwt(token, key, { now: at, clockSkewSeconds: 30 }))).toBe('verified');
    expect(failure(() => verifySwt(token, key, { now: new Date((expiresOn + 30) * 1000), clockSkewSeconds: 30 }))).toBe(
      'ERR_SWT_EXPIRED',
    );
  });

  it('rejects another audience or issuer', () => {
    expect(failure(() => verifySwt(token, key, { now, audience: 'http://ns.servicebus.example/other' }))).toBe(
      'ERR_SWT_AUDIENCE_MISMATCH',
    );
    expect(failure(() => verifySwt(token, key, { now, issuer: 'https://evil.example/' }))).toBe(
      'ERR_SWT_ISSUER_MISMATCH',
    );
  });

  it('rejects malformed tokens without leaking them', () => {
    for (const bad of [
      '',
      'Audience=a',
      'Audience=a=b&ExpiresOn=1&HMACSHA256=x',
      'a=%zz&HMACSHA256=x',
      '&HMACSHA256=x',
      `${token}&extra=1`,
    ]) {
      expect(failure(() => verifySwt(bad, key, { now }))).toMatch(/^ERR_SWT_(MALFORMED|SIGNATURE_INVALID)$/);
    }
    const noExpiry = signSwt([['Audience', 'a']], key);
    expect(failure(() => verifySwt(noExpiry, key, { now }))).toBe('ERR_SWT_MALFORMED');
    const message = (() => {
      try {
        verifySwt(token, Buffer.alloc(32, 8).toString('base64'), { now });
        return 'verified';
      } catch (error) {
        return (error as Error).message;
      }
    })();
    expect(message).toBe('The signature does not match');
  });

  it('rejects duplicate claim names, even when signed', () => {
    const unsigned = 'Audience=a&Audience=b&ExpiresOn=2000000000';
    const forged = `${unsigned}&HMACSHA256=${encodeSwtComponent(
      // a correct HMAC over the duplicate-bearing message, so only the duplicate check can fail it
      createHmac('sha256', Buffer.from(key, 'base64')).update(unsigned).digest('base64'),
    )}`;
    expect(failure(() => verifySwt(forged, key, { now }))).toBe('ERR_SWT_MALFORMED');
  });
});

describe('encodeSwtComponent follows the .NET rule for text of any length and script', () => {
  /** The rule, byte by byte over UTF-8: letters, digits and -_.!*() kept, space as +, the rest %xx in lower case. */
  const byRule = (text: string) =>
    [...Buffer.from(text, 'utf8')]
      .map((byte) => {
        const char = String.fromCharCode(byte);
        if (/^[A-Za-z0-9\-_.!*()]$/.test(char)) return char;
        return byte === 0x20 ? '+' : `%${byte.toString(16).padStart(2, '0')}`;
      })
      .join('');

  it('matches the rule for short and long text, ASCII or not, lone surrogates included', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 40 }),
          fc.string({ unit: 'grapheme-ascii', maxLength: 3_000 }),
          fc.string({ unit: 'binary', maxLength: 3_000 }),
        ),
        (text) => {
          expect(encodeSwtComponent(text)).toBe(byRule(text));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives each call its own answer (the working buffer is reused)', () => {
    const first = encodeSwtComponent('a b/c');
    const second = encodeSwtComponent('x:y');
    expect([first, second]).toEqual(['a+b%2fc', 'x%3ay']);
  });
});

describe('swtSigningKey', () => {
  it('signs exactly as the base64 key does, and refuses what signSwt refuses', () => {
    const claims: SwtClaim[] = [
      ['Audience', 'http://ns.servicebus.windows.net/'],
      ['ExpiresOn', '2000000000'],
      ['Issuer', 'x'],
    ];
    expect(signSwt(claims, swtSigningKey(key))).toBe(signSwt(claims, key));
    expect(() => swtSigningKey('not base64!')).toThrow(SwtError);
  });
});
