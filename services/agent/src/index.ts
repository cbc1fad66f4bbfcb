/**
 * `@shoal/agent/control`: what other Shoal processes use of the agent. The host's api drives the
 * agent through {@link AgentControlClient}; simulations and benchmarks run many agents in one process
 * with {@link joinCluster}, {@link runAgent} and the {@link FakeExecutor}.
 */
export { AgentControlClient } from './control-client.js';
export type { AgentState, NodeRef } from './agent-host.js';
export type { IdentityMaterial, NodeIdentity, NodeRoleName } from './identity.js';
export { joinCluster, type AvailabilityName, type JoinOptions, type JoinRequest } from './join.js';
export { Agent, DEFAULT_AGENT_TIMING, runAgent, type AgentOptions, type AgentTiming, type RunAgentOptions } from './agent.js';
export { FakeExecutor, type FakeExecutorOptions, type FakeStep } from './fake-executor.js';
export type { Executor, ObservedTask, TaskController, TaskDependencies, TaskExit, TaskLogLine, TaskLogOptions } from './executor.js';
