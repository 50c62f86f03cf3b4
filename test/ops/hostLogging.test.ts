import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../tools/packageApp.js';
import { importFunctionFiles } from '../support/localHostFixture.js';

interface HostJson {
  readonly logging: {
    readonly logLevel: Record<string, string>;
    readonly applicationInsights: {
      readonly samplingSettings: {
        readonly isEnabled: boolean;
        readonly excludedTypes?: string;
        readonly includedTypes?: string;
      };
    };
  };
}

/**
 * What host.json must say so that every request's telemetry record reaches Application Insights
 * (docs/operations.md, "Sampling"): the records are traces in each function's `Function.<name>.User`
 * category, at Information, and sampling never drops a trace, a request or an exception.
 */
describe('host.json keeps every telemetry record', () => {
  it("logs each function's own lines at Information, the host's chatter at Warning", async () => {
    const host = JSON.parse(await readFile(join(projectRoot, 'host.json'), 'utf8')) as HostJson;
    const { logLevel } = host.logging;
    for (const { definition } of await importFunctionFiles()) {
      expect(logLevel[`Function.${definition.name}.User`], definition.name).toBe('Information');
    }
    expect(logLevel.Function).toBe('Warning');
    expect(logLevel['Host.Results'], 'request telemetry').toBe('Information');
  });

  it('never samples traces (the records: refusals, 5xx), requests or exceptions', async () => {
    const host = JSON.parse(await readFile(join(projectRoot, 'host.json'), 'utf8')) as HostJson;
    const sampling = host.logging.applicationInsights.samplingSettings;
    expect(sampling.includedTypes).toBeUndefined();
    if (sampling.isEnabled)
      expect((sampling.excludedTypes ?? '').split(';').sort()).toEqual(['Exception', 'Request', 'Trace']);
  });
});
