import type { StsServices } from '../services.js';

/**
 * What the flow logic needs from the composition root: configuration, the credential directory, the JWT
 * issuer and the upstream token source (credentials in upstream mode, docs/upstream.md). Flows take this slice (not
 * the whole services object) so unit tests can hand in exactly these.
 */
export type FlowDependencies = Pick<StsServices, 'config' | 'credentials' | 'jwtIssuer' | 'upstream'> &
  Partial<Pick<StsServices, 'entra'>>;
