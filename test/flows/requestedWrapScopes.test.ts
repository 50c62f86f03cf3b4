import { describe, expect, it } from 'vitest';
import { requestedWrapScope } from '../../shared/flows/requestedWrapScopes.js';
import { parseWrapScope } from '../../shared/flows/wrapScope.js';

/** A remembered scope parse answers exactly as a fresh parse, however many scopes came before it. */
const SCOPES = [
  'http://contoso.servicebus.windows.net/',
  'https://Contoso.servicebus.windows.net/orders/messages/head?timeout=60',
  'http://contoso.servicebus.windows.net/q/..;/q2',
  'http://demo.attacker.example/',
  'http://contoso.servicebus.windows.net/%71',
  'not a scope',
];

describe('requestedWrapScope', () => {
  it('gives the answer of parseWrapScope, the first time and again', () => {
    for (let round = 0; round < 2; round += 1) {
      for (const scope of SCOPES) expect(requestedWrapScope(scope)).toEqual(parseWrapScope(scope));
    }
    expect(requestedWrapScope(SCOPES[1] as string)?.namespace).toBe('contoso');
    expect(requestedWrapScope(SCOPES[3] as string)).toBeUndefined();
  });

  it('still answers right after a flood of distinct scopes', () => {
    for (let i = 0; i < 2_000; i += 1) {
      const scope = `http://ns${i}.servicebus.windows.net/q${i}`;
      expect(requestedWrapScope(scope)?.namespace).toBe(`ns${i}`);
    }
    for (const scope of SCOPES) expect(requestedWrapScope(scope)).toEqual(parseWrapScope(scope));
  });
});
