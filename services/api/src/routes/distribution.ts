import { errors } from '@shoal/errors';
import type { Router } from '../http/router.js';

/**
 * `/distribution/{image}/json`: Shoal does not resolve images against a registry, so that nodes run
 * the image as named (this machine has no registry at all). The CLI treats the 404 as "could not
 * be pinned", warns, and goes on with the unpinned image (reference §3.9).
 */
export function distributionRoutes(router: Router): void {
  router.on('GET', '/distribution/{name...}/json', async ({ params }) => {
    throw errors.notFound(`image ${params.name} is not resolved to a registry digest: Shoal nodes use the image as named`);
  });
}
