import type { Task } from '../../cluster/types.js';
import type { Store } from '../store/store.js';
import { openRegistryAuth, registryAuthOf } from '../secrets/registry-auth.js';

/**
 * The tasks as their node is told them: a task its node may still start carries its service's
 * registry credentials (`--with-registry-auth`), opened, so the node's pull of its image uses
 * them (swarmkit sends ContainerSpec.PullOptions with the task). Only the nodes running a task
 * of the service ever get them.
 */
export function withRegistryCredentials(
  store: Pick<Store, 'get'>,
  dek: Buffer | undefined,
  tasks: Task[],
  mayRun: (t: Task) => boolean,
): Task[] {
  const opened = new Map<string, string | undefined>();
  const credentialsOf = (serviceId: string) => {
    if (!opened.has(serviceId)) {
      const sealed = registryAuthOf(store.get('services', serviceId)?.Spec);
      let auth: string | undefined;
      try {
        auth = sealed ? openRegistryAuth(dek, sealed) : undefined;
      } catch {
        // Sealed with a key this manager lacks (a rotation it has not followed yet): the task goes
        // without, and its pull fails as an anonymous one would; never the node's whole stream.
      }
      opened.set(serviceId, auth);
    }
    return opened.get(serviceId);
  };
  return tasks.map((t) => {
    const auth = t.Spec.ContainerSpec && mayRun(t) ? credentialsOf(t.ServiceID) : undefined;
    if (!auth) return t;
    return {
      ...t,
      Spec: { ...t.Spec, ContainerSpec: { ...t.Spec.ContainerSpec!, PullOptions: { RegistryAuth: auth } } },
    };
  });
}
