import { errors } from '@shoal/errors';
import { Node, NodeRole, NodeSpec_Membership, NodeStatus_State } from '@shoal/proto';
import { commit, managerRead, requireManager, type ApiContext } from '../cluster/context.js';
import { resolve } from '../cluster/resolve.js';
import { nodeSpecFromDocker, nodeToDocker } from '../convert/node.js';
import { parseFilters } from '../http/filters.js';
import type { Router } from '../http/router.js';
import { queryFlag, requireCurrent, requiredBody, requiredVersion } from './request-rules.js';

const nodeFilterKeys = ['id', 'label', 'name', 'node.label', 'membership', 'role'] as const;

const roleName = (role: NodeRole | undefined) => (role === NodeRole.MANAGER ? 'manager' : 'worker');
const membershipName = (node: Node) => (node.spec?.membership === NodeSpec_Membership.ACCEPTED ? 'accepted' : 'pending');

/** `/nodes`: list with filters, inspect by ID, hostname or prefix, update (availability, labels, role), remove. */
export function nodeRoutes(router: Router, context: ApiContext): void {
  router.on('GET', '/nodes', async ({ query }) => {
    const filters = parseFilters(query.get('filters'));
    filters.validateKeys(nodeFilterKeys);
    const nodes = await managerRead(context, (tx) => tx.list('node'));
    const selected = nodes.filter(
      (node) =>
        filters.matchesPrefix('id', node.id) &&
        (filters.matchesPrefix('name', node.spec?.annotations?.name ?? '') || filters.matchesPrefix('name', node.description?.hostname ?? '')) &&
        filters.matchesLabels('label', node.description?.engine?.labels ?? {}) &&
        filters.matchesLabels('node.label', node.spec?.annotations?.labels ?? {}) &&
        filters.matchesExact('role', roleName(node.spec?.desiredRole)) &&
        filters.matchesExact('membership', membershipName(node)),
    );
    return { status: 200, json: selected.map(nodeToDocker) };
  });

  router.on('GET', '/nodes/{id}', async ({ params }) => {
    const node = await managerRead(context, (tx) => resolve(tx, 'node', params.id!));
    return { status: 200, json: nodeToDocker(node) };
  });

  router.on('POST', '/nodes/{id}/update', async ({ params, query, body }) => {
    const { cache } = await requireManager(context);
    const version = requiredVersion(query, 'node');
    const updated = await cache.read((tx) => {
      const node = resolve(tx, 'node', params.id!);
      requireCurrent('node', node.id, node.meta?.version?.index, version);
      const spec = nodeSpecFromDocker(requiredBody(body), node.spec);
      const demoting = node.spec?.desiredRole === NodeRole.MANAGER && spec.desiredRole !== NodeRole.MANAGER;
      const managers = tx.list('node').filter((candidate) => candidate.spec?.desiredRole === NodeRole.MANAGER);
      if (demoting && managers.length === 1) throw errors.failedPrecondition('attempting to demote the last manager of the swarm');
      return Node.fromPartial({ ...node, spec });
    });
    await commit(context, [{ action: 'update', kind: 'node', object: updated }]);
    return { status: 200 };
  });

  router.on('DELETE', '/nodes/{id}', async ({ params, query }) => {
    const node = await managerRead(context, (tx) => resolve(tx, 'node', params.id!));
    if (node.role === NodeRole.MANAGER || node.spec?.desiredRole === NodeRole.MANAGER) {
      throw errors.failedPrecondition(`node ${node.id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`);
    }
    if (!queryFlag(query, 'force') && node.status?.state === NodeStatus_State.READY) {
      throw errors.failedPrecondition(`node ${node.id} is not down and can't be removed`);
    }
    await commit(context, [{ action: 'delete', kind: 'node', id: node.id }], []);
    return { status: 200 };
  });
}
