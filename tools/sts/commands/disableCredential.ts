import { credentialEnabledCommand } from './credentialEnabledCommand.js';

/** `disable`: a disabled credential's keys are refused (401) until it is enabled again. */
export const command = credentialEnabledCommand(
  false,
  'Disable a credential: its keys are refused until it is enabled again',
);
