import { NodeSpec_Availability, NodeStatus_State, type Node } from '@shoal/proto';

/** The dispatcher has lost the node's heartbeat. */
export function isDown(node: Node): boolean {
  return node.status?.state === NodeStatus_State.DOWN;
}

/** The user asked for the node to run nothing (`docker node update --availability drain`). */
export function isDrained(node: Node): boolean {
  return node.spec?.availability === NodeSpec_Availability.DRAIN;
}

/** The user asked for the node to get no new tasks while keeping the ones it has. */
export function isPaused(node: Node): boolean {
  return node.spec?.availability === NodeSpec_Availability.PAUSE;
}

/**
 * Whether tasks on the node must go: it is gone, down or drained (swarmkit's `InvalidNode`). A
 * replicated task there is replaced elsewhere; a global one is shut down.
 */
export function isUnavailable(node: Node | undefined): boolean {
  return node === undefined || isDown(node) || isDrained(node);
}
