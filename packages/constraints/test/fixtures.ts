import { Node, NodeStatus_State } from '@shoal/proto';

type PartialNode = Parameters<typeof Node.fromPartial>[0];

/** A ready node named `host-<id>`, with `overrides`. */
export function node(id: string, overrides: PartialNode = {}): Node {
  return Node.fromPartial({ id, status: { state: NodeStatus_State.READY }, description: { hostname: `host-${id}` }, ...overrides });
}

