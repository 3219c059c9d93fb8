/** Arguments of the real docker CLI for swarm services, as the cluster tests type them. */

/** A service whose busybox tasks run until stopped. */
export const SLEEP_FOREVER = ['busybox', 'sleep', '100000'];

/** `docker service create --name NAME FLAGS... IMAGE COMMAND...` (by default SLEEP_FOREVER). */
export function serviceCreate(name: string, flags: string[], imageAndCommand = SLEEP_FOREVER): string[] {
  return ['service', 'create', '--name', name, ...flags, ...imageAndCommand];
}

/** `docker service ps SERVICE --no-trunc [--filter F]... --format FORMAT`. */
export function servicePs(service: string, format: string, filters: string[] = []): string[] {
  return ['service', 'ps', service, '--no-trunc', ...filters.flatMap((f) => ['--filter', f]), '--format', format];
}

/** `docker service ps` of the tasks meant to run (desired-state=running). */
export function servicePsRunning(service: string, format: string): string[] {
  return servicePs(service, format, ['desired-state=running']);
}

/** One task as `docker service ps` shows it: node, desired and current state, error. */
export interface TaskRow {
  node: string;
  desired: string;
  state: string;
  error: string;
}

/** The --format that `taskRows` reads back. */
export const TASK_ROW_FORMAT = '{{.Node}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}';

/** `docker service ps SERVICE` with TASK_ROW_FORMAT. */
export function servicePsRows(service: string): string[] {
  return servicePs(service, TASK_ROW_FORMAT);
}

/** The rows of `docker service ps` output printed with TASK_ROW_FORMAT. */
export function taskRows(stdout: string): TaskRow[] {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [node = '', desired = '', state = '', error = ''] = l.split('|');
      return { node, desired, state, error };
    });
}
