/** Control-plane simulation: fake agents over a ClusterState, for tests and benchmarks of the manager's control loops. */
export { FakeAgents, type FakeAgentsOptions, type TaskOutcome } from './fake-agents.js';
