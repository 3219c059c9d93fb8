import type {
  Config,
  ConfigSpec,
  ContainerSpec,
  Secret,
  SecretSpec,
  Service,
  ServiceSpec,
} from '../../cluster/types.js';
import type { Store } from '../store/store.js';
import { badRequest, rpcError } from '../../util/errors.js';

/**
 * What valid secrets and configs are, and how services refer to them (swarmkit controlapi
 * secret.go, config.go, service.go validateSecretRefsSpec / checkSecretExistence), with the
 * messages Docker returns.
 */

export type FileKind = 'secret' | 'config';

/** swarmkit MaxSecretSize (500 KiB) and MaxConfigSize (1000 KiB): data must be shorter. */
export const MAX_SIZE: Record<FileKind, number> = { secret: 500 * 1024, config: 1000 * 1024 };

const NAME = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;

export function validateName(name: string | undefined): void {
  if (!name) throw rpcError('InvalidArgument', 'name must be provided');
  if (name.length > 64 || !NAME.test(name)) {
    throw rpcError(
      'InvalidArgument',
      'invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]',
    );
  }
}

/** The spec's data as bytes; the daemon's JSON decoding (Go's []byte) rejects what is not base64. */
export function specData(spec: SecretSpec | ConfigSpec): Buffer {
  const d = spec.Data ?? '';
  if (typeof d !== 'string') throw badRequest('invalid JSON: Data must be a base64 string');
  const bad = d.search(/[^A-Za-z0-9+/=]|=[^=]/);
  if (bad >= 0 || d.length % 4 !== 0)
    throw badRequest(`invalid JSON: illegal base64 data at input byte ${bad >= 0 ? bad : d.length - (d.length % 4)}`);
  return Buffer.from(d, 'base64');
}

/** Throws Docker's error for a secret or config spec that cannot be created. */
export function validateFileSpec(kind: FileKind, spec: SecretSpec | ConfigSpec): void {
  validateName(spec.Name);
  // A secret from a driver (plugin) has no data here; shoal has no secret plugins, so data is needed.
  const data = specData(spec);
  if (data.length >= MAX_SIZE[kind] || data.length < 1) {
    throw rpcError('InvalidArgument', `${kind} data must be larger than 0 and less than ${MAX_SIZE[kind]} bytes`);
  }
}

/** A service's secret and config references are well formed and their file targets distinct. */
export function validateReferences(c: ContainerSpec | undefined): void {
  if (!c) return;
  const check = (kind: FileKind, refs: { id: string; name: string; file?: { Name?: string }; runtime?: unknown }[]) => {
    const targets = new Map<string, string>();
    for (const r of refs) {
      if (!r.id || !r.name) throw rpcError('InvalidArgument', `malformed ${kind} reference`);
      if (!r.file && !r.runtime) throw rpcError('InvalidArgument', `malformed ${kind} reference, no target provided`);
      if (!r.file) continue;
      const name = r.file.Name ?? '';
      if (!name)
        throw rpcError('InvalidArgument', `malformed file ${kind} reference, invalid target file name provided`);
      const prev = targets.get(name);
      if (prev !== undefined)
        throw rpcError(
          'InvalidArgument',
          `${kind} references '${prev}' and '${r.name}' have a conflicting target: '${name}'`,
        );
      targets.set(name, r.name);
    }
  };
  check(
    'secret',
    (c.Secrets ?? []).map((r) => ({ id: r.SecretID, name: r.SecretName, file: r.File })),
  );
  check(
    'config',
    (c.Configs ?? []).map((r) => ({ id: r.ConfigID, name: r.ConfigName, file: r.File, runtime: r.Runtime })),
  );
}

/** Every referenced secret and config exists under the name the reference gives it. */
export function checkReferencesExist(spec: ServiceSpec, store: Pick<Store, 'get'>): void {
  const c = spec.TaskTemplate?.ContainerSpec;
  if (!c) return;
  const missing = (refs: { id: string; name: string }[], kind: 'secrets' | 'configs') =>
    refs.filter((r) => store.get(kind, r.id)?.Spec.Name !== r.name).map((r) => r.name);
  const report = (kind: FileKind, names: string[]) => {
    if (names.length)
      throw rpcError('InvalidArgument', `${kind}${names.length === 1 ? '' : 's'} not found: ${names.join(', ')}`);
  };
  report(
    'secret',
    missing(
      (c.Secrets ?? []).map((r) => ({ id: r.SecretID, name: r.SecretName })),
      'secrets',
    ),
  );
  report(
    'config',
    missing(
      (c.Configs ?? []).map((r) => ({ id: r.ConfigID, name: r.ConfigName })),
      'configs',
    ),
  );
}

/** IDs a service's tasks refer to. */
export function referencedIds(kind: FileKind, c: ContainerSpec | undefined): string[] {
  if (!c) return [];
  return kind === 'secret' ? (c.Secrets ?? []).map((r) => r.SecretID) : (c.Configs ?? []).map((r) => r.ConfigID);
}

/** Refuses removing a secret or config a service still uses (swarmkit RemoveSecret / RemoveConfig). */
export function checkNotInUse(kind: FileKind, object: Secret | Config, services: Service[]): void {
  const users = services
    .filter((s) => referencedIds(kind, s.Spec.TaskTemplate?.ContainerSpec).includes(object.ID))
    .map((s) => s.Spec.Name ?? s.ID);
  if (!users.length) return;
  throw rpcError(
    'InvalidArgument',
    `${kind} '${object.Spec.Name}' is in use by the following service${users.length === 1 ? '' : 's'}: ${users.join(', ')}`,
  );
}
