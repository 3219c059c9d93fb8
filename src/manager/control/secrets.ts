import type { Config, ConfigSpec, Secret, SecretSpec } from '../../cluster/types.js';
import { badRequest, notFound, rpcError } from '../../util/errors.js';
import { newSwarmId } from '../../util/ids.js';
import { openSecretData, sealSecretData } from '../secrets/seal.js';
import { checkNotInUse, specData, validateFileSpec, type FileKind } from '../secrets/spec.js';
import type { Store } from '../store/store.js';
import { acceptFilters, matchLabels, type Filters } from './filters.js';
import { commitVersioned } from './versioned.js';

/**
 * Secrets and configs (swarmkit controlapi secret.go, config.go): named, immutable data with
 * labels; a secret's data is sealed with the swarm's data-encryption key and never shown.
 */

export interface FileControl {
  store: Store;
  /** The swarm's data-encryption key (secrets are sealed with it). */
  dek?: Buffer;
}

export type FileSpec = SecretSpec & ConfigSpec;
export type FileObject = Secret | Config;
export const FILE_KINDS = { secret: 'secrets', config: 'configs' } as const;
export type { FileKind };

/** By full ID, then exact name, then ID prefix (moby daemon/cluster getSecret / getConfig). */
export function getFileObject(kind: FileKind, store: Store, input: string): FileObject {
  const byId = store.get(FILE_KINDS[kind], input);
  if (byId) return byId;
  const all: FileObject[] = store.list(FILE_KINDS[kind]);
  const byName = all.filter((o) => o.Spec.Name === input);
  const found = byName.length ? byName : all.filter((o) => o.ID.startsWith(input));
  if (!found.length) throw notFound(`${kind} ${input} not found`);
  if (found.length > 1) throw badRequest(`${kind} ${input} is ambiguous (${found.length} matches found)`);
  return found[0];
}

/** Filtered, oldest first. Names, name prefixes and ID prefixes are alternatives (swarmkit ORs them); labels narrow. */
export function listFileObjects(kind: FileKind, store: Store, f: Filters): FileObject[] {
  acceptFilters(f, ['names', 'name', 'id', 'label']);
  const names = f.get('names') ?? [];
  const prefixes = f.get('name') ?? [];
  const ids = f.get('id') ?? [];
  const labels = f.get('label') ?? [];
  let list: FileObject[] = store.list(FILE_KINDS[kind]);
  if (names.length || prefixes.length || ids.length) {
    list = list.filter(
      (o) =>
        names.includes(o.Spec.Name ?? '') ||
        prefixes.some((p) => (o.Spec.Name ?? '').startsWith(p)) ||
        ids.some((i) => o.ID.startsWith(i)),
    );
  }
  if (labels.length) list = list.filter((o) => matchLabels(o.Spec.Labels, labels));
  return list.sort((a, b) => (a.CreatedAt < b.CreatedAt ? -1 : 1));
}

export async function createFileObject(kind: FileKind, c: FileControl, spec: FileSpec): Promise<FileObject> {
  validateFileSpec(kind, spec);
  if (c.store.list(FILE_KINDS[kind]).some((o: FileObject) => o.Spec.Name === spec.Name))
    throw rpcError('AlreadyExists', `${kind} ${spec.Name} already exists`);
  const now = new Date().toISOString();
  const stored: FileSpec = { ...spec, Labels: spec.Labels ?? {} };
  if (kind === 'secret') stored.Data = sealSecretData(c.dek, specData(spec).toString('base64'));
  const object: FileObject = { ID: newSwarmId(), Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now, Spec: stored };
  await c.store.commit([{ kind: FILE_KINDS[kind], op: 'create', object }]);
  return object;
}

/** The stored data as bytes (a secret's is sealed). */
function bytesOf(kind: FileKind, o: FileObject, dek: Buffer | undefined): Buffer {
  return kind === 'secret' ? openSecretData(dek, o.Spec.Data ?? '') : Buffer.from(o.Spec.Data ?? '', 'base64');
}

/** Only labels change (swarmkit UpdateSecret / UpdateConfig): data and name are fixed. */
export async function updateFileObject(
  kind: FileKind,
  c: FileControl,
  ref: string,
  version: number,
  spec: FileSpec,
): Promise<FileObject> {
  const current = getFileObject(kind, c.store, ref);
  const dataChanged =
    spec.Data !== undefined && spec.Data !== '' && !specData(spec).equals(bytesOf(kind, current, c.dek));
  if (spec.Name !== current.Spec.Name || dataChanged)
    throw rpcError('InvalidArgument', 'only updates to Labels are allowed');
  const next: FileObject = { ...current, Spec: { ...current.Spec, Labels: spec.Labels ?? {} } };
  await commitVersioned(c.store, FILE_KINDS[kind], version, current, next);
  return next;
}

/** Refused while a service uses it. */
export async function removeFileObject(kind: FileKind, store: Store, ref: string): Promise<void> {
  const o = getFileObject(kind, store, ref);
  checkNotInUse(kind, o, store.list('services'));
  await store.commit([{ kind: FILE_KINDS[kind], op: 'delete', id: o.ID }]);
}
