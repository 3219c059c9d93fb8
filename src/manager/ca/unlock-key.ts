import crypto from 'node:crypto';
import type { Etcd3, Watcher } from 'etcd3';
import { ApiError, badRequest } from '../../util/errors.js';

/**
 * Autolock's key-encrypting key: 32 random bytes, shown to users as Docker formats it
 * (SWMKEY-1-<unpadded base64>). The swarm keeps the current one in its store, where every
 * manager reads and follows it; a manager seals its TLS key at rest with it.
 */
const PREFIX = 'SWMKEY-1-';
export const UNLOCK_KEY = '/shoal/unlock-key';

export const ERR_SWARM_LOCKED =
  'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.';

export function newUnlockKey(): Buffer {
  return crypto.randomBytes(32);
}

export function humanReadableKey(key: Buffer): string {
  return PREFIX + key.toString('base64').replace(/=+$/, '');
}

export function parseHumanReadableKey(s: string): Buffer {
  const body = s.trim().startsWith(PREFIX) ? s.trim().slice(PREFIX.length) : undefined;
  if (body === undefined || !/^[A-Za-z0-9+/]+$/.test(body)) throw badRequest('invalid key string');
  return Buffer.from(body, 'base64');
}

/** The private key PEM as encrypted PKCS#8, the unlock key as its passphrase. */
export function sealPrivateKey(pem: string, key: Buffer): string {
  return crypto
    .createPrivateKey(pem)
    .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: key }) as string;
}

/** The plain PEM back; Docker's 401 when the key does not open it. */
export function openPrivateKey(sealed: string, key: Buffer): string {
  try {
    return crypto.createPrivateKey({ key: sealed, passphrase: key }).export({ type: 'pkcs8', format: 'pem' }) as string;
  } catch {
    throw new ApiError(401, 'swarm could not be unlocked: invalid key provided');
  }
}

/**
 * Values the swarm keeps secret in etcd (the CA keys, the unlock key) are sealed with the swarm's
 * data-encryption key (DEK, as SwarmKit's raft DEK): etcd's files on disk never hold them in the
 * clear. Managers get the DEK when they join and keep it next to their TLS key, sealed with the
 * unlock key while autolock is on.
 */
const SEALED = 'dek1:';

export function sealValue(dek: Buffer, plain: Buffer): string {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', dek, iv);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return SEALED + Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
}

export function isSealed(stored: Buffer): boolean {
  return stored.subarray(0, SEALED.length).toString() === SEALED;
}

/** Opens a sealed value; a value stored before the swarm had a DEK comes back as it is. */
export function openValue(dek: Buffer | undefined, stored: Buffer): Buffer {
  const s = stored.toString();
  if (!s.startsWith(SEALED)) return stored;
  if (!dek) throw new Error('sealed swarm secret but this manager holds no data-encryption key');
  const raw = Buffer.from(s.slice(SEALED.length), 'base64');
  const d = crypto.createDecipheriv('aes-256-gcm', dek, raw.subarray(0, 12));
  d.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([d.update(raw.subarray(28)), d.final()]);
}

/** The value to put: sealed when the swarm has a DEK. */
export function storedValue(dek: Buffer | undefined, plain: Buffer): Buffer | string {
  return dek ? sealValue(dek, plain) : plain;
}

export async function readUnlockKey(client: Etcd3, dek: Buffer | undefined): Promise<Buffer | undefined> {
  const v = await client.get(UNLOCK_KEY).buffer();
  return v && v.length > 0 ? openValue(dek, v) : undefined;
}

/** Sets (or with undefined clears) the swarm's unlock key. */
export async function writeUnlockKey(client: Etcd3, dek: Buffer | undefined, key: Buffer | undefined): Promise<void> {
  if (key) await client.put(UNLOCK_KEY).value(storedValue(dek, key)).exec();
  else await client.delete().key(UNLOCK_KEY).exec();
}

/**
 * Follows the unlock key and, on the same watch (so in revision order), the other keys under its
 * name (`onOther`: a data key rotation's next key comes before the unlock key sealed with it).
 * `dek` is read at each event: it changes with a rotation.
 */
export async function watchUnlockKey(
  client: Etcd3,
  dek: () => Buffer | undefined,
  fn: (key: Buffer | undefined) => void,
  onOther?: (key: string, value: Buffer | undefined) => void,
): Promise<Watcher> {
  const w = await client.watch().prefix(UNLOCK_KEY).create();
  w.on('put', (kv) => {
    if (kv.key.toString() !== UNLOCK_KEY) onOther?.(kv.key.toString(), kv.value);
    else if (kv.value.length === 0) fn(undefined);
    else {
      let key: Buffer;
      try {
        key = openValue(dek(), kv.value);
      } catch {
        return; // re-sealed by a data key rotation not followed yet: the same key, or a new one put after
      }
      fn(key);
    }
  });
  w.on('delete', (kv) => {
    if (kv.key.toString() !== UNLOCK_KEY) onOther?.(kv.key.toString(), undefined);
    else fn(undefined);
  });
  return w;
}
