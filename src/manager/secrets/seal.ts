import { openValue, sealValue } from '../ca/unlock-key.js';

/**
 * Secrets' data at rest: sealed with the swarm's data-encryption key (the key that seals the
 * CA keys, itself sealed with the unlock key while autolock is on), so etcd's files never hold
 * a secret in the clear. A swarm without a DEK (made before it existed) stores base64 as given.
 */
export function sealSecretData(dek: Buffer | undefined, base64: string): string {
  return dek ? sealValue(dek, Buffer.from(base64, 'base64')) : base64;
}

/** The secret's bytes from what the store holds. */
export function openSecretData(dek: Buffer | undefined, stored: string): Buffer {
  const raw = Buffer.from(stored);
  const opened = openValue(dek, raw);
  // openValue hands an unsealed value back as it is: then it is the base64 text.
  return opened === raw ? Buffer.from(stored, 'base64') : opened;
}
