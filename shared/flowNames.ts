/** The functions of this app, as named in the ledger, logs and registrations: the keys of the flow catalogue. */
export type { FlowName } from './flowCatalogue.js';
