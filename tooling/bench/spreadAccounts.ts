import { createHmac } from 'node:crypto';

/**
 * The accounts of the vault-traffic spread, derived from an index and the run's random seed so the vault
 * (which stores them) and the app's caller (which presents their keys) agree without exchanging 100,000 keys.
 */
export function spreadAccount(index: number, seed: string): { accountId: string; keys: [string, string] } {
  const accountId = `${index.toString(16).padStart(8, '0')}-b0b0-4000-8000-000000000000`;
  const key = (slot: number) => createHmac('sha256', seed).update(`${accountId}/${slot}`).digest('base64');
  return { accountId, keys: [key(1), key(2)] };
}
