/**
 * The orchestrator's control loops as a library (`@shoal/orchestrator/control`), for simulations and
 * benchmarks that run them in-process over a `ClusterState`. Importing it starts nothing; the service
 * itself is `dist/main.js`.
 */
export { orchestrate, type OrchestrationOptions } from './orchestration.js';
export { Orchestrator, type OrchestratorOptions } from './orchestrator.js';
export { newTask } from './task-factory.js';
export { systemTimers, type Timers } from './timers.js';
export { Updater, type NewTask, type ServiceUpdater, type UpdaterOptions } from './update/updater.js';
