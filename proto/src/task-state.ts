import { errors } from '@shoal/errors';
import { TaskState } from './gen/shoal/v1/types.js';

/**
 * Each task state under the Docker Engine API's name for it, in lifecycle order. The engine spells
 * them in lowercase (`docker service ps` capitalizes them for display).
 */
const stateByName = {
  new: TaskState.NEW,
  pending: TaskState.PENDING,
  assigned: TaskState.ASSIGNED,
  accepted: TaskState.ACCEPTED,
  preparing: TaskState.PREPARING,
  ready: TaskState.READY,
  starting: TaskState.STARTING,
  running: TaskState.RUNNING,
  complete: TaskState.COMPLETE,
  shutdown: TaskState.SHUTDOWN,
  failed: TaskState.FAILED,
  rejected: TaskState.REJECTED,
  remove: TaskState.REMOVE,
  orphaned: TaskState.ORPHANED,
} as const satisfies Record<string, TaskState>;

/** The engine-API name of a task state: `"new"`, `"pending"`, … `"orphaned"`. */
export type TaskStateName = keyof typeof stateByName;

const nameByState = new Map<TaskState, TaskStateName>(
  Object.entries(stateByName).map(([name, state]) => [state, name as TaskStateName]),
);

/** Every task state the protocol defines, in lifecycle order (which is also numeric order). */
export const taskStates: readonly TaskState[] = Object.values(stateByName);

/**
 * Returns the engine-API name of a task state (`TaskState.RUNNING` → `"running"`).
 * Throws an INVALID_ARGUMENT ShoalError for a value that is not a known state, such as the
 * `TaskState.UNRECOGNIZED` a decoder yields for a number it does not know.
 */
export function taskStateName(state: TaskState): TaskStateName {
  const name = nameByState.get(state);
  if (name === undefined) throw errors.invalidArgument(`unknown task state ${state}`, { state });
  return name;
}

/**
 * Parses an engine-API task state name (`"running"` → `TaskState.RUNNING`). Names must be spelled
 * exactly as the engine API does, in lowercase; anything else throws an INVALID_ARGUMENT ShoalError.
 */
export function parseTaskState(name: string): TaskState {
  if (!Object.hasOwn(stateByName, name)) {
    throw errors.invalidArgument(`unknown task state "${name}"`, { name });
  }
  return stateByName[name as TaskStateName];
}
