/** The functions of this app, as named in the ledger, logs and registrations. */
export type FlowName =
  | 'mixedRealityToken'
  | 'issueToken'
  | 'issueLimitedAccessToken'
  | 'wrapToken'
  | 'openidConfiguration'
  | 'jwks';
