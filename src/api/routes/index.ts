import { Router } from '../router.js';
import type { Engine } from '../../engine/engine.js';
import { systemRoutes } from './system.js';
import { networkRoutes } from './networks.js';
import { imageRoutes } from './images.js';
import { serviceRoutes, notASwarmManager, type ManagerStore } from './services.js';
import { taskRoutes } from './tasks.js';

/** Every Engine API route this daemon serves. */
export function buildRouter(engine: Engine, managerStore: ManagerStore = notASwarmManager): Router {
  const router = new Router();
  systemRoutes(router, engine);
  networkRoutes(router, engine);
  imageRoutes(router, engine);
  serviceRoutes(router, managerStore);
  taskRoutes(router, managerStore);
  return router;
}
