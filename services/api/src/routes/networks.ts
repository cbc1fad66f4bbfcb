import { errors } from '@shoal/errors';
import { byReferencedNetworkId } from '@shoal/store';
import { commit, createNamed, managerRead, requireManager, type ApiContext } from '../cluster/context.js';
import { allocateNetwork } from '../cluster/network-allocation.js';
import { resolve } from '../cluster/resolve.js';
import { networkCreateFromDocker, networkToDocker } from '../convert/network.js';
import { parseFilters } from '../http/filters.js';
import type { Router } from '../http/router.js';
import { requiredBody } from './request-rules.js';

const networkFilterKeys = ['driver', 'id', 'label', 'name', 'scope', 'type'] as const;

/** `/networks`: swarm-scoped overlay networks (and `ingress`), each with its subnet, gateway and VXLAN ID. */
export function networkRoutes(router: Router, context: ApiContext): void {
  router.on('POST', '/networks/create', async ({ body }) => {
    const { cache } = await requireManager(context);
    const request = networkCreateFromDocker(requiredBody(body));
    const name = request.spec.annotations?.name ?? '';
    const network = await cache.read((tx) => allocateNetwork(tx.list('cluster')[0], tx.list('network'), request.spec, request.subnets));
    await createNamed(context, { action: 'create', kind: 'network', object: network }, () => errors.alreadyExists(`network with name ${name} already exists`));
    return { status: 201, json: { Id: network.id, Warning: '' } };
  });

  router.on('GET', '/networks', async ({ query }) => {
    const filters = parseFilters(query.get('filters'));
    filters.validateKeys(networkFilterKeys);
    const networks = await managerRead(context, (tx) => tx.list('network'));
    const selected = networks.filter(
      (network) =>
        filters.matchesPrefix('id', network.id) &&
        filters.matchesPrefix('name', network.spec?.annotations?.name ?? '') &&
        filters.matchesExact('driver', network.spec?.driverConfig?.name || 'overlay') &&
        filters.matchesExact('scope', 'swarm') &&
        filters.matchesExact('type', 'custom') &&
        filters.matchesLabels('label', network.spec?.annotations?.labels ?? {}),
    );
    return { status: 200, json: selected.map(networkToDocker) };
  });

  router.on('GET', '/networks/{id}', async ({ params }) => {
    const network = await managerRead(context, (tx) => resolve(tx, 'network', params.id!));
    return { status: 200, json: networkToDocker(network) };
  });

  router.on('DELETE', '/networks/{id}', async ({ params }) => {
    const network = await managerRead(context, (tx) => {
      const found = resolve(tx, 'network', params.id!);
      const user = tx.find('service', byReferencedNetworkId(found.id))[0] ?? tx.find('task', byReferencedNetworkId(found.id))[0];
      if (user !== undefined) {
        const noun = 'serviceId' in user ? 'task' : 'service';
        throw errors.failedPrecondition(`network ${found.id} is in use by ${noun} ${user.id}`);
      }
      return found;
    });
    await commit(context, [{ action: 'delete', kind: 'network', id: network.id, version: network.meta?.version?.index }]);
    return { status: 204 };
  });
}
