import type { StsServices } from '../services.js';

/**
 * What the flow logic needs from the composition root: configuration, the credential directory and the JWT
 * issuer. Flows take this slice (not the whole services object) so unit tests can hand in exactly these.
 */
export type FlowDependencies = Pick<StsServices, 'config' | 'credentials' | 'jwtIssuer'>;
