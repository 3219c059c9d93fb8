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
