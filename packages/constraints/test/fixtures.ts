import { isShoalError } from '@shoal/errors';
import { Node, NodeStatus_State } from '@shoal/proto';

type PartialNode = Parameters<typeof Node.fromPartial>[0];

/** A ready node named `host-<id>`, with `overrides`. */
export function node(id: string, overrides: PartialNode = {}): Node {
  return Node.fromPartial({ id, status: { state: NodeStatus_State.READY }, description: { hostname: `host-${id}` }, ...overrides });
}

/** The code and message `action` throws with. */
export function failure(action: () => unknown): { code: string | undefined; message: string } {
  try {
    action();
  } catch (error) {
    return { code: isShoalError(error) ? error.code : undefined, message: error instanceof Error ? error.message : String(error) };
  }
  throw new Error('expected the call to throw');
}
