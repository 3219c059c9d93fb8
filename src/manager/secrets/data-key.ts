import crypto from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { PREFIX } from '../store/etcd-store.js';
import { isSealed, openValue, sealValue, UNLOCK_KEY } from '../ca/unlock-key.js';
import { CA_KEY } from '../ca/stored-ca.js';
import type { Service } from '../../cluster/types.js';
import { DASHBOARD_TOKEN_KEY } from '../dashboard-token.js';

/**
 * Rotation of the swarm's data-encryption key (DEK). SwarmKit makes a new raft DEK when the
 * key-encrypting key changes (autolock turned on, unlock key rotated): the old DEK may have sat
 * on disk unprotected. Here the DEK seals values inside etcd, shared by every manager, so a
 * rotation re-seals every sealed value with the new key in one transaction, and hands the new
 * key to the other managers as DATA_KEY_NEXT (sealed with the key they hold) until a sweep has
 * re-sealed whatever a manager that had not yet followed wrote meanwhile; then it is deleted
 * and nothing the swarm keeps opens with the old key. etcd's periodic compaction drops the old
 * revisions.
 */
export const DATA_KEY_NEXT = UNLOCK_KEY + '.next-dek';

/**
 * Keys whose whole value is sealed (the CA keys, the unlock key, the dashboard token); secrets'
 * Spec.Data and services' registry credentials (registry-auth.ts) besides.
 */
const SEALED_KEYS = [CA_KEY, UNLOCK_KEY, DASHBOARD_TOKEN_KEY];
const SECRETS = PREFIX + 'secrets/';
const SERVICES = PREFIX + 'services/';

export function newDataKey(): Buffer {
  return crypto.randomBytes(32);
}

/** Opens with whichever of `keys` sealed the value; throws when none did. */
export function openWithAny(keys: Buffer[], stored: Buffer): Buffer {
  let last: unknown;
  for (const k of keys) {
    try {
      return openValue(k, stored);
    } catch (e) {
      last = e;
    }
  }
  throw last instanceof Error ? last : new Error('sealed value opens with no data-encryption key held');
}

function opensWith(key: Buffer, stored: Buffer): boolean {
  try {
    openValue(key, stored);
    return true;
  } catch {
    return false;
  }
}

/** The re-sealed value, or undefined when it is not sealed or already sealed with `seal`. */
function resealed(keys: Buffer[], seal: Buffer, stored: Buffer): string | undefined {
  if (!isSealed(stored) || opensWith(seal, stored)) return undefined;
  return sealValue(seal, openWithAny(keys, stored));
}

/** A secret object's JSON with Spec.Data re-sealed, or undefined when nothing changes. */
function resealedSecret(keys: Buffer[], seal: Buffer, json: Buffer): string | undefined {
  const o = JSON.parse(json.toString()) as { Spec?: { Data?: string } };
  const data = o.Spec?.Data;
  if (!data) return undefined;
  const next = resealed(keys, seal, Buffer.from(data));
  if (next === undefined) return undefined;
  o.Spec!.Data = next;
  return JSON.stringify(o);
}

/** A service object's JSON with its specs' registry credentials re-sealed, or undefined when nothing changes. */
function resealedService(keys: Buffer[], seal: Buffer, json: Buffer): string | undefined {
  const o = JSON.parse(json.toString()) as Pick<Service, 'Spec' | 'PreviousSpec'>;
  let changed = false;
  for (const spec of [o.Spec, o.PreviousSpec]) {
    const pull = spec?.TaskTemplate?.ContainerSpec?.PullOptions;
    const next = pull?.RegistryAuth ? resealed(keys, seal, Buffer.from(pull.RegistryAuth)) : undefined;
    if (next === undefined) continue;
    pull!.RegistryAuth = next;
    changed = true;
  }
  return changed ? JSON.stringify(o) : undefined;
}

/** Every key under `prefix`. */
async function rangeOf(client: Etcd3, prefix: string) {
  return (await client.kv.range({ key: Buffer.from(prefix), range_end: Buffer.from(prefix.slice(0, -1) + '0') })).kvs;
}

/**
 * Re-seals, with `seal`, every sealed value that does not open with it yet (opened with any of
 * `keys`): one transaction comparing each rewritten key's revision, so a concurrent write makes
 * it read again. `also` is put in the same transaction. Returns how many values it re-sealed.
 */
export async function resealAll(
  client: Etcd3,
  keys: Buffer[],
  seal: Buffer,
  also?: { key: string; value: string },
): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const kvs = [...(await rangeOf(client, SECRETS)), ...(await rangeOf(client, SERVICES))];
    for (const k of SEALED_KEYS) kvs.push(...(await client.kv.range({ key: Buffer.from(k) })).kvs);
    const compare = [];
    // The hand-over first: a watcher sees the new key before any value sealed with it.
    const success: { request_put: { key: Buffer; value: Buffer } }[] = also
      ? [{ request_put: { key: Buffer.from(also.key), value: Buffer.from(also.value) } }]
      : [];
    for (const kv of kvs) {
      const key = kv.key.toString();
      const value = key.startsWith(SECRETS)
        ? resealedSecret(keys, seal, kv.value)
        : key.startsWith(SERVICES)
          ? resealedService(keys, seal, kv.value)
          : resealed(keys, seal, kv.value);
      if (value === undefined) continue;
      compare.push({ key: kv.key, target: 'Mod' as const, result: 'Equal' as const, mod_revision: kv.mod_revision });
      success.push({ request_put: { key: kv.key, value: Buffer.from(value) } });
    }
    if (success.length === 0) return 0;
    const res = await client.kv.txn({ compare, success, failure: [] });
    if (res.succeeded) return compare.length;
    if (attempt >= 10) throw new Error('sealed values keep changing during the data key rotation');
  }
}
