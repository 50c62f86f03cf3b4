import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The loopback escape hatch of docs/upstream.md#hosts lives in test code only: nothing that is deployed or run by
 * an operator builds a host policy other than the documented Azure hosts, and no setting can select one.
 */

const SHIPPED = ['functions', 'shared', 'tools', 'tooling'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|js|mjs)$/.test(name) ? [path] : [];
  });
}

describe('the loopback host policy is test code only', () => {
  const files = SHIPPED.flatMap((dir) => sources(dir)).map((path) => ({ path, text: readFileSync(path, 'utf8') }));

  it('no shipped module imports it or builds a policy that admits IP literals', () => {
    expect(files.length).toBeGreaterThan(50);
    const offending = files
      .filter(({ text }) => /loopbackHostPolicy|allowsIpLiterals\s*:\s*true/.test(text))
      .map(({ path }) => path);
    expect(offending).toEqual([]);
  });

  it('the only policy the product constructs is the documented-hosts one', () => {
    const policies = files
      .filter(({ text }) => /:\s*UpstreamHostPolicy\s*=\s*\{/.test(text))
      .map(({ path }) => path.replaceAll('\\', '/'));
    expect(policies).toEqual(['shared/upstream/upstreamHosts.ts']);
  });

  it('no setting reaches a host policy: the services and the config never name one', () => {
    for (const path of ['shared/services.ts', 'shared/config.ts']) {
      expect(readFileSync(path, 'utf8')).not.toMatch(/hostPolicy|HostPolicy/);
    }
  });
});
