import { Router } from '../router.js';
import type { Engine } from '../../engine/engine.js';
import { systemRoutes } from './system.js';
import { networkRoutes } from './networks.js';
import { imageRoutes } from './images.js';
import { containerRoutes } from './containers.js';

/** Every Engine API route this daemon serves. */
export function buildRouter(engine: Engine): Router {
  const router = new Router();
  systemRoutes(router, engine);
  networkRoutes(router, engine);
  imageRoutes(router, engine);
  containerRoutes(router, engine);
  return router;
}
