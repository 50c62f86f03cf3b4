import { principalCommand } from './principalCommand.js';

/** `allow-principal`: an Entra principal may obtain Mixed Reality tokens for an account without its key. */
export const command = principalCommand(true);
