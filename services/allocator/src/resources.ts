import { formatCidr, type Cidr, type PortProtocol } from '@shoal/ipam';
import {
  PortConfig_Protocol,
  PortConfig_PublishMode,
  TaskState,
  type NetworkAttachment,
  type Node,
  type PortConfig,
  type Service,
  type Task,
} from '@shoal/proto';

/** The kinds of stored object that hold allocations, in the order a pass allocates them: each may depend on the ones before. */
export const HOLDER_KINDS = ['network', 'service', 'task', 'node'] as const;
export type HolderKind = (typeof HOLDER_KINDS)[number];

/** A stored object that holds allocations. `name` is what a conflict message calls it (a service's name). */
export interface Holder {
  readonly kind: HolderKind;
  readonly id: string;
  readonly name: string;
}

/** One thing a holder has from the allocator's pools. Addresses are plain (`10.0.1.3`), without a prefix. */
export type Resource =
  | { readonly type: 'subnet'; readonly subnet: Cidr }
  | { readonly type: 'vxlan'; readonly id: number }
  | { readonly type: 'port'; readonly protocol: PortProtocol; readonly port: number }
  | { readonly type: 'address'; readonly networkId: string; readonly address: string };

/** Identifies a holder across its records. */
export function holderKey(holder: Pick<Holder, 'kind' | 'id'>): string {
  return `${holder.kind} ${holder.id}`;
}

/** Identifies a resource: two resources with the same key are the same thing in the same pool. */
export function resourceKey(resource: Resource): string {
  switch (resource.type) {
    case 'subnet':
      return `subnet ${formatCidr(resource.subnet)}`;
    case 'vxlan':
      return `vxlan ${resource.id}`;
    case 'port':
      return `port ${resource.port}/${resource.protocol}`;
    case 'address':
      return `address ${resource.networkId} ${resource.address}`;
  }
}

/** The address of a record's `a.b.c.d/nn` (records keep the subnet's prefix length; pools do not). */
export function hostPart(addressWithPrefix: string): string {
  const slash = addressWithPrefix.indexOf('/');
  return slash === -1 ? addressWithPrefix : addressWithPrefix.slice(0, slash);
}

const protocolNames = new Map<PortConfig_Protocol, PortProtocol>([
  [PortConfig_Protocol.TCP, 'tcp'],
  [PortConfig_Protocol.UDP, 'udp'],
  [PortConfig_Protocol.SCTP, 'sctp'],
]);

/** The port space a published port lives in; undefined for a protocol Shoal does not know. */
export function protocolOf(port: PortConfig): PortProtocol | undefined {
  return protocolNames.get(port.protocol);
}

/** True for a port published through the routing mesh, which the allocator hands out; host-mode ports are the scheduler's. */
export function isIngressPort(port: PortConfig): boolean {
  return port.publishMode === PortConfig_PublishMode.INGRESS;
}

/** A task keeps its addresses until it is past RUNNING (swarmkit frees them then, so replacements can reuse them). */
export function isLive(task: Task): boolean {
  return (task.status?.state ?? TaskState.NEW) <= TaskState.RUNNING;
}

/** The published ingress ports and VIPs a service's endpoint records. */
export function serviceHoldings(service: Service): Resource[] {
  const endpoint = service.endpoint;
  if (endpoint === undefined) return [];
  const ports = endpoint.ports.flatMap((port): Resource[] => {
    const protocol = protocolOf(port);
    return isIngressPort(port) && port.publishedPort !== 0 && protocol !== undefined ? [{ type: 'port', protocol, port: port.publishedPort }] : [];
  });
  const vips = endpoint.virtualIps.flatMap((vip): Resource[] =>
    vip.addr === '' ? [] : [{ type: 'address', networkId: vip.networkId, address: hostPart(vip.addr) }],
  );
  return [...ports, ...vips];
}

/** The addresses a task's attachments record, while the task is live. */
export function taskHoldings(task: Task): Resource[] {
  return isLive(task) ? attachmentHoldings(task.networks) : [];
}

/** The load-balancer addresses a node's attachments record. */
export function nodeHoldings(node: Node): Resource[] {
  return attachmentHoldings(node.attachments);
}

function attachmentHoldings(attachments: readonly NetworkAttachment[]): Resource[] {
  return attachments.flatMap(({ network, addresses }) =>
    network === undefined ? [] : addresses.map((address): Resource => ({ type: 'address', networkId: network.id, address: hostPart(address) })),
  );
}
