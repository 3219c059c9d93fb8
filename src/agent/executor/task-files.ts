import path from 'node:path';
import type { Task } from '../../cluster/types.js';
import type { AssignedFiles } from '../link.js';

/** A file a task's container gets from a secret or a config. */
export interface TaskFile {
  kind: 'secret' | 'config';
  /** The secret's or config's name (for errors and logs). */
  source: string;
  /** Absolute path inside the container. */
  target: string;
  data: Buffer;
  uid: number;
  gid: number;
  mode: number;
}

/** Where Docker puts secrets in a container. */
export const SECRETS_DIR = '/run/secrets';
/** The CLI's default: 0444, owned by root. */
const DEFAULT_MODE = 0o444;

/**
 * The files a task gets, from its references and the data sent with the assignments: secrets
 * at /run/secrets/<target>, configs at /<target> (an absolute target is kept as it is, as
 * moby does). A reference whose data did not come is the task's error.
 */
export function taskFiles(task: Task, assigned: AssignedFiles | undefined): TaskFile[] {
  const c = task.Spec.ContainerSpec;
  if (!c) return [];
  const out: TaskFile[] = [];
  const add = (
    kind: TaskFile['kind'],
    id: string,
    name: string,
    file: { Name: string; UID?: string; GID?: string; Mode?: number } | undefined,
    base: string,
  ) => {
    if (!file) return; // runtime targets (credential specs) are Windows-only
    const found = (kind === 'secret' ? assigned?.secrets : assigned?.configs)?.find((f) => f.ID === id);
    if (!found) throw new Error(`${kind} ${name} not found`);
    out.push({
      kind,
      source: name,
      target: path.posix.isAbsolute(file.Name) ? path.posix.normalize(file.Name) : path.posix.join(base, file.Name),
      data: Buffer.from(found.Data, 'base64'),
      uid: numericId(file.UID, `${kind} ${name}: invalid uid`),
      gid: numericId(file.GID, `${kind} ${name}: invalid gid`),
      mode: file.Mode ?? DEFAULT_MODE,
    });
  };
  for (const r of c.Secrets ?? []) add('secret', r.SecretID, r.SecretName, r.File, SECRETS_DIR);
  for (const r of c.Configs ?? []) add('config', r.ConfigID, r.ConfigName, r.File, '/');
  return out;
}

function numericId(v: string | undefined, err: string): number {
  if (v === undefined || v === '') return 0;
  if (!/^\d+$/.test(v)) throw new Error(err);
  return Number(v);
}
