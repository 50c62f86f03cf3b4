import { azureHostPolicy, type UpstreamHostPolicy } from '../../shared/upstream/upstreamHosts.js';

/**
 * The test-only escape hatch of docs/upstream.md#hosts: the documented Azure hosts plus `127.0.0.1` on any port,
 * where the loopback HTTPS stand-ins listen. It exists only here, in test code, and reaches the product only
 * through the `hostPolicy` parameters tests pass; no setting or flag can select it.
 */
export const loopbackHostPolicy: UpstreamHostPolicy = {
  allowsIpLiterals: true,
  allows: (service, url) => url.hostname === '127.0.0.1' || azureHostPolicy.allows(service, url),
  describe: (service) => `${azureHostPolicy.describe(service)}, https://127.0.0.1:<port> (tests)`,
};
