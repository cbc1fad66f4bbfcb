/**
 * Control-plane simulation: the manager's control loops in one process over an in-process store,
 * with fake agents for nodes, an audit of the invariants on every commit, and the writes the api and
 * the dispatcher would make. For tests and benchmarks of the control loops working together.
 */
export { ClusterAudit } from './audit.js';
export { ComponentLink, type WriteTally } from './component-link.js';
export { ControlPlane, OWNS_EVERY_SERVICE, type ComponentName, type ControlPlaneOptions, type ServiceOwnership } from './control-plane.js';
export { FakeAgents, type FakeAgentsOptions, type TaskOutcome } from './fake-agents.js';
export {
  defaultCluster,
  overlayNetwork,
  readyWorker,
  scaledSpec,
  SWARM_DEFAULTS,
  type NodeOptions,
  type PartialOf,
} from './swarm-objects.js';
export { startTrailingMirror } from './trailing-mirror.js';
