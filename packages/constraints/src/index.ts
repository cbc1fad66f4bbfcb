/**
 * Swarm's placement constraints (`node.labels.zone==east`), shared by the scheduler (placement),
 * the orchestrator (global services, constraint enforcement) and the api (validation).
 */
export { labelAttribute, parseConstraints, type Constraint, type ConstraintOperator, type NodeAttribute } from './constraints.js';
