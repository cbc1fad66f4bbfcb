import type { Logger } from '@shoal/runtime';
import type { Precondition } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';
import { Orchestrator } from './orchestrator.js';
import { newTask } from './task-factory.js';
import type { Timers } from './timers.js';
import { Updater } from './update/updater.js';

export interface OrchestrationOptions {
  readonly state: ClusterState;
  /** The lease fence every write carries. */
  readonly fence?: Precondition | undefined;
  readonly clock?: () => Date;
  readonly timers?: Timers;
  readonly log: Logger;
}

/**
 * One leadership's worth of orchestration: the orchestrator and its updater, run until `signal`
 * aborts or either of them finds its writes fenced off (another instance leads now).
 */
export async function orchestrate(options: OrchestrationOptions, signal: AbortSignal): Promise<void> {
  const deposed = new AbortController();
  const updater = new Updater({ ...options, newTask, onFenced: () => deposed.abort() });
  try {
    await new Orchestrator({ ...options, updater }).run(AbortSignal.any([signal, deposed.signal]));
  } finally {
    await updater.stop();
  }
}
