/** The `type` of the IPC message in which an agent process reports a {@link RunningTasksReport}. */
export const RUNNING_TASKS_MESSAGE = 'shoal.bench.running-tasks';

/** How often each agent process reports. */
export const RUNNING_REPORT_INTERVAL_MS = 1_000;

/** How many tasks an agent process's nodes run, as their fake executors see it. */
export interface RunningTasksReport {
  readonly type: typeof RUNNING_TASKS_MESSAGE;
  readonly running: number;
}
