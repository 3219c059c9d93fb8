import type { ServiceSpec } from '../../cluster/types.js';
import { ApiError } from '../../util/errors.js';
import { openValue, sealValue } from '../ca/unlock-key.js';

/**
 * The registry credentials of a service (`--with-registry-auth`: the CLI's `X-Registry-Auth`
 * header, kept as swarmkit keeps it in ContainerSpec.PullOptions.RegistryAuth). At rest they are
 * sealed with the swarm's data-encryption key, as secrets are; the dispatcher opens them only for
 * the agent of a node that runs one of the service's tasks.
 */

/** What the store keeps of `header`: sealed when the swarm has a DEK. */
export function sealRegistryAuth(dek: Buffer | undefined, header: string): string {
  return dek ? sealValue(dek, Buffer.from(header, 'utf8')) : header;
}

/** The header as the CLI sent it, from what the store keeps. */
export function openRegistryAuth(dek: Buffer | undefined, stored: string): string {
  return openValue(dek, Buffer.from(stored, 'utf8')).toString('utf8');
}

/** The stored (sealed) credentials of a spec, if it has any. */
export function registryAuthOf(spec: ServiceSpec | undefined): string | undefined {
  return spec?.TaskTemplate?.ContainerSpec?.PullOptions?.RegistryAuth || undefined;
}

/**
 * The credentials an updated spec keeps (moby daemon/cluster UpdateService): new ones when the
 * request sent a header, else those of the current spec, or of the previous one when asked
 * (`registryAuthFrom=previous-spec`; `spec` or nothing: the current one). `sealed` is the new header, already sealed. Plain
 * errors, as dockerd's (a 500).
 */
export function updatedRegistryAuth(
  current: { Spec: ServiceSpec; PreviousSpec?: ServiceSpec },
  sealed: string | undefined,
  from: string,
): string | undefined {
  if (sealed) return sealed;
  if (from === '' || from === 'spec') return registryAuthOf(current.Spec);
  if (from === 'previous-spec') {
    if (!current.PreviousSpec) throw new ApiError(500, 'service does not have a previous spec');
    return registryAuthOf(current.PreviousSpec);
  }
  throw new ApiError(500, 'unsupported registryAuthFrom value');
}

/** `spec` with the stored credentials `auth` (or none): what the store keeps. */
export function withRegistryAuth(spec: ServiceSpec, auth: string | undefined): ServiceSpec {
  const cs = spec.TaskTemplate?.ContainerSpec;
  if (!cs) return spec;
  const ContainerSpec = { ...cs };
  if (auth) ContainerSpec.PullOptions = { RegistryAuth: auth };
  else delete ContainerSpec.PullOptions;
  return { ...spec, TaskTemplate: { ...spec.TaskTemplate, ContainerSpec } };
}

/** `spec` as the API shows it: dockerd never shows PullOptions (moby convert containerSpecFromGRPC). */
export function withoutRegistryAuth<T extends ServiceSpec | undefined>(spec: T): T {
  if (!spec?.TaskTemplate?.ContainerSpec?.PullOptions) return spec;
  return withRegistryAuth(spec, undefined) as T;
}
