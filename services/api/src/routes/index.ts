import type { ApiContext } from '../cluster/context.js';
import { Router } from '../http/router.js';
import { distributionRoutes } from './distribution.js';
import { logRoutes } from './logs.js';
import { networkRoutes } from './networks.js';
import { nodeRoutes } from './nodes.js';
import { secretAndConfigRoutes } from './secrets-configs.js';
import { serviceRoutes } from './services.js';
import { swarmRoutes } from './swarm.js';
import { systemRoutes } from './system.js';
import { taskRoutes } from './tasks.js';

/** Every route of the Docker Engine API subset Shoal serves (reference §7). */
export function apiRouter(context: ApiContext): Router {
  const router = new Router();
  systemRoutes(router, context);
  swarmRoutes(router, context);
  nodeRoutes(router, context);
  networkRoutes(router, context);
  secretAndConfigRoutes(router, context);
  serviceRoutes(router, context);
  taskRoutes(router, context);
  logRoutes(router, context);
  distributionRoutes(router);
  return router;
}
