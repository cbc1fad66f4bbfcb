import type { Network, NetworkAttachment, NetworkAttachmentConfig, Node, Service, Task } from '@shoal/proto';
import { byNodeId, type ReadTx } from '@shoal/store';
import { publishesIngress } from './endpoint.js';
import type { Ledger } from './ledger.js';
import { hostPart, isLive, type Holder } from './resources.js';

/** A task as the holder of its addresses. */
export function taskHolder(task: Pick<Task, 'id'>): Holder {
  return { kind: 'task', id: task.id, name: '' };
}

/** A node as the holder of its load-balancer addresses. */
export function nodeHolder(node: Pick<Node, 'id'>): Holder {
  return { kind: 'node', id: node.id, name: '' };
}

/** The first address an object's attachment to a network records. */
function recordedAddress(attachments: readonly NetworkAttachment[], networkId: string): string | undefined {
  return attachments.find((attachment) => attachment.network?.id === networkId)?.addresses[0];
}

/**
 * A NEW task's network attachments, as swarmkit's allocator makes them: the ingress network first
 * when its service publishes ingress ports, then each network of the task's spec (or of its
 * service's deprecated list), each once; a network that no longer exists is left out. Every
 * attachment carries a full copy of the network and the addresses its config asks for, or one
 * address (the one the task already has there, else the network's next free one).
 *
 * @throws RESOURCE_EXHAUSTED `no available IP addresses in subnet …`; INVALID_ARGUMENT for a requested
 *   address another holder has; FAILED_PRECONDITION for a network without a subnet.
 */
export function allocateTaskNetworks(task: Task, service: Service | undefined, tx: ReadTx, ledger: Ledger, ingress: Network | undefined): NetworkAttachment[] {
  const holder = taskHolder(task);
  const own = task.spec?.networks ?? [];
  const configs: NetworkAttachmentConfig[] = [
    ...(ingress !== undefined && publishesIngress(service?.spec) ? [{ target: ingress.id, aliases: [], addresses: [], driverAttachmentOpts: {} }] : []),
    ...(own.length > 0 ? own : (service?.spec?.networks ?? [])),
  ];
  const attached = new Set<string>();
  return configs.flatMap((config) => {
    const network = tx.get('network', config.target);
    if (network === undefined || attached.has(network.id)) return [];
    attached.add(network.id);
    const addresses =
      config.addresses.length > 0
        ? config.addresses.map((address) => ledger.takeAddress(holder, network.id, address))
        : [ledger.keepOrAllocateAddress(holder, network.id, recordedAddress(task.networks, network.id))];
    return [{ network, addresses, aliases: config.aliases, driverAttachmentOpts: config.driverAttachmentOpts }];
  });
}

/**
 * The networks a node needs a load-balancer address on, as swarmkit's `getNodeNetworks`: each
 * network a live task on the node is attached to, then ingress (every node takes part in the routing
 * mesh). Networks without an open address space are left out until they have one.
 */
export function nodeNetworks(node: Node, tx: ReadTx, ledger: Ledger, ingress: Network | undefined): Network[] {
  const networks = new Map<string, Network>();
  const add = (network: Network | undefined) => {
    if (network !== undefined && !networks.has(network.id) && ledger.addressPool(network.id) !== undefined) networks.set(network.id, network);
  };
  for (const task of tx.find('task', byNodeId(node.id))) {
    if (!isLive(task)) continue;
    for (const attachment of task.networks) if (attachment.network !== undefined && !networks.has(attachment.network.id)) add(tx.get('network', attachment.network.id));
  }
  add(ingress);
  return [...networks.values()];
}

/** True if the node has exactly one attachment per network, each with an address it holds. */
export function isNodeAllocated(node: Node, networks: readonly Network[], ledger: Ledger): boolean {
  const holder = nodeHolder(node);
  return (
    node.attachments.length === networks.length &&
    networks.every((network) =>
      node.attachments.some(
        ({ network: attached, addresses }) =>
          attached?.id === network.id && addresses.length === 1 && ledger.holds(holder, { type: 'address', networkId: network.id, address: hostPart(addresses[0]!) }),
      ),
    )
  );
}

/**
 * The node's attachments to `networks`: the ones it has keep their place and address (with a fresh
 * copy of the network), new ones follow with the network's next free address.
 *
 * @throws RESOURCE_EXHAUSTED when a network has no address left.
 */
export function allocateNodeAttachments(node: Node, networks: readonly Network[], ledger: Ledger): NetworkAttachment[] {
  const holder = nodeHolder(node);
  const wanted = new Map(networks.map((network) => [network.id, network]));
  const kept = node.attachments.flatMap(({ network }) => (network !== undefined && wanted.has(network.id) ? [network.id] : []));
  return [...new Set([...kept, ...wanted.keys()])].map((networkId) => ({
    network: wanted.get(networkId)!,
    addresses: [ledger.keepOrAllocateAddress(holder, networkId, recordedAddress(node.attachments, networkId))],
    aliases: [],
    driverAttachmentOpts: {},
  }));
}
