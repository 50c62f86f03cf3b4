import { principalCommand } from './principalCommand.js';

/** `revoke-principal`: the principal's Entra tokens are refused for the account from then on. */
export const command = principalCommand(false);
