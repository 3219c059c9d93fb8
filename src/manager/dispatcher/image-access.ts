import type { Service, Task } from '../../cluster/types.js';
import { namesImage } from '../../cluster/image-name.js';
import { taskStateRank } from '../../cluster/types.js';
import { registryAuthOf } from '../secrets/registry-auth.js';

/**
 * Who may have a private image (one a node pulled with registry credentials) from a peer: a
 * node with a task of its own that is to run and still may (desired and observed state up to
 * running), whose image is that one, and whose service was given registry credentials
 * (`--with-registry-auth`). A service without credentials has not shown it may pull the image,
 * so its tasks get it from the registry or not at all, as with dockerd.
 */
export function mayHavePrivateImage(
  tasks: Task[],
  service: (id: string) => Service | undefined,
  nodeId: string,
  imageId: string,
  refs: string[],
): boolean {
  const running = taskStateRank('running');
  return tasks.some(
    (t) =>
      t.NodeID === nodeId &&
      taskStateRank(t.DesiredState) <= running &&
      taskStateRank(t.Status.State) <= running &&
      !!t.Spec.ContainerSpec?.Image &&
      namesImage(t.Spec.ContainerSpec.Image, imageId, refs) &&
      !!registryAuthOf(service(t.ServiceID)?.Spec),
  );
}
