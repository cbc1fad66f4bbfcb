import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@shoal/runtime';
import type { TaskStatus, UpdateTaskStatusRequest_TaskStatusUpdate } from '@shoal/proto';
import { Notifier } from './notifier.js';

/** Sends one batch of status updates to the dispatcher (one `UpdateTaskStatus` call). */
export type StatusSender = (updates: UpdateTaskStatusRequest_TaskStatusUpdate[]) => Promise<void>;

/**
 * Updates per `UpdateTaskStatus` call. swarmkit's reporter sends one per call; a node starting many
 * tasks at once (the 1,000-node benchmark gives each 10) would then need a round trip per status.
 */
export const STATUS_BATCH_SIZE = 100;
/** Pause before resending after a failed call, while the session is still attached. */
const RETRY_DELAY_MS = 1_000;

/**
 * The agent's reliable task status reporter (swarmkit's `statusReporter`): it keeps the latest status
 * of each task, never lets a task's state go backwards, and sends what the dispatcher has not
 * confirmed, in batches of up to {@link STATUS_BATCH_SIZE}, retrying until each is sent. Statuses
 * wait while no session is attached; attaching (a registration) resends every task's latest status,
 * since a new dispatcher may have missed some.
 */
export class StatusReporter {
  readonly #latest = new Map<string, TaskStatus>();
  readonly #unsent = new Set<string>();
  readonly #wakeup = new Notifier();
  readonly #log: Logger;
  #sender: StatusSender | undefined;

  constructor(log: Logger) {
    this.#log = log;
  }

  /**
   * Records a task's status for sending. A status with a lower state than the last one recorded is
   * dropped (the state is a lamport clock); an identical one is not sent again.
   */
  report(taskId: string, status: TaskStatus): void {
    const previous = this.#latest.get(taskId);
    if (previous !== undefined) {
      if (status.state < previous.state) return;
      if (status.state === previous.state && status.message === previous.message && status.err === previous.err) return;
    }
    this.#latest.set(taskId, status);
    this.#unsent.add(taskId);
    this.#wakeup.notify();
  }

  /** The latest status recorded for a task. */
  latest(taskId: string): TaskStatus | undefined {
    return this.#latest.get(taskId);
  }

  /** Forgets a task that is no longer assigned: its statuses have nowhere to go. */
  forget(taskId: string): void {
    this.#latest.delete(taskId);
    this.#unsent.delete(taskId);
  }

  /** Sends through `sender` from now on, starting with every task's latest status. */
  attach(sender: StatusSender): void {
    this.#sender = sender;
    for (const taskId of this.#latest.keys()) this.#unsent.add(taskId);
    this.#wakeup.notify();
  }

  /** Stops sending through `sender` (its session ended); statuses wait for the next one. */
  detach(sender: StatusSender): void {
    if (this.#sender === sender) this.#sender = undefined;
  }

  /** Sends until `signal` aborts, one batch at a time, so that a task's statuses arrive in order. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const sender = this.#sender;
      if (sender === undefined || this.#unsent.size === 0) {
        await this.#wakeup.wait(signal);
        continue;
      }
      const batch: UpdateTaskStatusRequest_TaskStatusUpdate[] = [];
      for (const taskId of this.#unsent) {
        batch.push({ taskId, status: this.#latest.get(taskId)! });
        if (batch.length === STATUS_BATCH_SIZE) break;
      }
      for (const { taskId } of batch) this.#unsent.delete(taskId);
      try {
        await sender(batch);
      } catch (err) {
        // A newer status recorded meanwhile is already unsent; otherwise this one goes again.
        for (const { taskId, status } of batch) if (status !== undefined && this.#latest.get(taskId) === status) this.#unsent.add(taskId);
        if (signal.aborted) return;
        this.#log.debug({ err }, 'sending task statuses failed; retrying');
        // A new session resends at once; the same one gets a pause, not a stream of calls.
        if (this.#sender === sender) await sleep(RETRY_DELAY_MS, undefined, { signal }).catch(() => undefined);
      }
    }
  }
}
