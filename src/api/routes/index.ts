import { Router } from '../router.js';
import type { Engine } from '../../engine/engine.js';
import { systemRoutes } from './system.js';
import { networkRoutes, type LocalSwarmNetworks } from './networks.js';
import { imageRoutes } from './images.js';
import { containerRoutes } from './containers.js';
import { swarmRoutes } from './swarm.js';
import { nodeRoutes } from './nodes.js';
import { serviceRoutes } from './services.js';
import { taskRoutes } from './tasks.js';
import { serviceLogRoutes } from './service-logs.js';
import { secretRoutes } from './secrets.js';
import type { SwarmNode } from '../../node/node.js';
import { volumeRoutes } from './volumes.js';
import { containerFileRoutes } from './container-files.js';
import { buildRoutes } from './build.js';
import { findImageIn } from '../../manager/dispatcher/image-index.js';
import { formatReference } from '../../engine/images/reference.js';
import { shoalCertRoutes, type CertRouteOptions } from './shoal-certs.js';

/** Every Engine API route this daemon serves. */
export function buildRouter(
  engine: Engine,
  swarm: SwarmNode,
  localNetworks?: LocalSwarmNetworks,
  certs?: CertRouteOptions,
): Router {
  const router = new Router();
  systemRoutes(router, engine, swarm);
  networkRoutes(router, engine, swarm, localNetworks);
  imageRoutes(router, engine, (ref) => {
    let store;
    try {
      store = swarm.controlStore();
    } catch {
      return undefined; // not a manager (or no quorum): the registry's answer stands
    }
    return findImageIn(store, ref.digest ? { digest: ref.digest } : { ref: formatReference(ref) }).imageId;
  });
  containerRoutes(router, engine);
  containerFileRoutes(router, engine);
  buildRoutes(router, engine);
  volumeRoutes(router, engine);
  swarmRoutes(router, swarm);
  nodeRoutes(router, swarm);
  serviceRoutes(
    router,
    () => swarm.controlStore(),
    () => swarm.requireManager().o.dek,
  );
  taskRoutes(router, () => swarm.controlStore());
  serviceLogRoutes(router, swarm);
  secretRoutes(router, () => {
    const m = swarm.requireManager();
    return { store: m.store, dek: m.o.dek };
  });
  shoalCertRoutes(router, swarm, certs);
  return router;
}
