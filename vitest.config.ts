import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Creates the test CA and trusts it through NODE_EXTRA_CA_CERTS before workers fork (tooling/doubles/testCertificates.ts).
    globalSetup: ['test/support/globalSetup.ts'],
    // Stands in for the worker's core API, so @azure/functions registers instead of warning in test mode.
    setupFiles: ['test/support/functionsCoreStandIn.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites start real servers (local host, Key Vault test server, Azurite) on free ports.
    pool: 'forks',
    // Each file in a fresh process, by choice: files set process.env (the managed-identity endpoint of their own
    // Key Vault test server) and the process's services are a module-level singleton.
    isolate: true,
    reporters: ['default'],
  },
});
