import { credentialEnabledCommand } from './credentialEnabledCommand.js';

/** `enable`: a disabled credential accepts its keys again. */
export const command = credentialEnabledCommand(true, 'Enable a disabled credential again');
