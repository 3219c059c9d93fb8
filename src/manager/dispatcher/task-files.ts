import type { Task } from '../../cluster/types.js';
import type { AssignedFile } from '../../cluster/rpc.js';
import type { Store } from '../store/store.js';
import { openSecretData } from '../secrets/seal.js';

/**
 * The secrets and configs a node's tasks reference, opened for sending: a node gets only
 * these, never the others. A reference to one that is gone is left out; the agent then
 * rejects the task that needs it.
 */
export function assignedFiles(
  store: Pick<Store, 'get'>,
  dek: Buffer | undefined,
  tasks: Task[],
): { secrets?: AssignedFile[]; configs?: AssignedFile[] } {
  const secretIds = new Set<string>();
  const configIds = new Set<string>();
  for (const t of tasks) {
    for (const r of t.Spec.ContainerSpec?.Secrets ?? []) secretIds.add(r.SecretID);
    for (const r of t.Spec.ContainerSpec?.Configs ?? []) configIds.add(r.ConfigID);
  }
  if (!secretIds.size && !configIds.size) return {};
  const secrets: AssignedFile[] = [];
  for (const id of secretIds) {
    const s = store.get('secrets', id);
    if (s)
      secrets.push({
        ID: s.ID,
        Name: s.Spec.Name ?? '',
        Data: openSecretData(dek, s.Spec.Data ?? '').toString('base64'),
      });
  }
  const configs: AssignedFile[] = [];
  for (const id of configIds) {
    const c = store.get('configs', id);
    if (c) configs.push({ ID: c.ID, Name: c.Spec.Name ?? '', Data: c.Spec.Data ?? '' });
  }
  return { secrets, configs };
}
