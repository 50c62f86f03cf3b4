import { principalCommand } from './principalCommand.js';

/** `allow-principal`: an Entra principal may obtain tokens for an account or Cognitive resource without its key. */
export const command = principalCommand(true);
