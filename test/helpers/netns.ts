import { randomBytes } from 'node:crypto';
import { run } from '../../src/util/run.js';

/** A short unique name: test resources never collide with another run's leftovers. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/** A fresh network namespace with loopback up. */
export async function createNetns(prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  await run('ip', ['netns', 'add', name]);
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

export async function deleteNetns(name: string): Promise<void> {
  await run('ip', ['netns', 'delete', name], { allowFail: true });
}

/** Runs a program inside a namespace. */
export function inNetns(ns: string, cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}) {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}
