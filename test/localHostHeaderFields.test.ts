import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { readHeaderFields } from '../tools/localHost/requestHeaderFields.js';

/** What the local host reads of a request's header fields, from the fields as received (`rawHeaders`). */
const read = (...rawHeaders: string[]) => readHeaderFields({ rawHeaders } as unknown as IncomingMessage);

describe("the local host's reading of request header fields", () => {
  it('counts every field as sent, and its bytes as `name: value` plus CRLF', () => {
    const head = read('Host', 'a:1', 'X-Twice', 'one', 'x-twice', 'two');
    expect(head.count).toBe(3);
    expect(head.bytes).toBe(4 + 3 + 4 + (7 + 3 + 4) + (7 + 3 + 4));
  });

  it('hands one value per lower-case name, repeats joined with ", " and cookies with "; "', () => {
    const { fields } = read('X-Twice', 'one', 'x-twice', 'two', 'Cookie', 'a=1', 'cookie', 'b=2', '__proto__', 'p');
    expect(Object.entries(fields)).toEqual([
      ['x-twice', 'one, two'],
      ['cookie', 'a=1; b=2'],
      ['__proto__', 'p'],
    ]);
    expect(Object.getPrototypeOf(fields)).toBeNull();
  });

  it('takes the first Host, as Node does', () => {
    expect(read('Host', 'first:1', 'host', 'second:2').host).toBe('first:1');
    expect(read('Accept', '*/*').host).toBeUndefined();
  });

  it('sees a body when the request is chunked or its first Content-Length is above 0', () => {
    expect(read('Transfer-Encoding', 'chunked').hasBody).toBe(true);
    expect(read('Content-Length', '12').hasBody).toBe(true);
    expect(read('Content-Length', '0').hasBody).toBe(false);
    expect(read('Host', 'a').hasBody).toBe(false);
  });
});
