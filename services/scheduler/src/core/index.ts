/**
 * The scheduler's placement core: swarmkit's scheduling decisions (filters, spread, placement
 * preferences, failure tracking) over bookkeeping the caller feeds, with no store, I/O or timers.
 * README.md beside this file describes the model.
 */
export {
  ASSIGNED_MESSAGE,
  PREASSIGNED_MESSAGE,
  Scheduler,
  type Assignment,
  type ScheduleResult,
  type SchedulerOptions,
  type Unschedulable,
} from './scheduler.js';
export { parseConstraints, type Constraint, type ConstraintOperator } from '@shoal/constraints';
export { FAILURE_WINDOW_MS, MAX_RECENT_FAILURES } from './node-info.js';
