import { ErrorCode, hasCode } from '@shoal/errors';
import type { Service, Task } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import type { Precondition } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';
import { systemTimers, type Timers } from '../timers.js';
import { Rollout, type NewTask, type RolloutContext, type Sleep } from './rollout.js';

export type { NewTask } from './rollout.js';

/** What the orchestrators need from the update supervisor. */
export interface ServiceUpdater {
  /**
   * Brings `service`'s tasks to its current spec in the background. `slots` are the service's live
   * tasks (desired ≤ RUNNING) grouped by replica slot, or by node for a global service (slot 0).
   */
  update(service: Service, slots: Task[][]): void;
  /** Stops the service's rollout, if one runs (the service was deleted, or this instance stops leading). */
  cancel(serviceId: string): void;
}

export interface UpdaterOptions {
  state: ClusterState;
  /** Added to the preconditions of every write: the orchestrator's lease fence. */
  fence?: Precondition;
  /** Called when a write fails its fence: another instance leads now, and this one must stop. */
  onFenced?: () => void;
  /** Timestamps the update status and tells how long a replacement has been running. @default the system clock */
  clock?: () => Date;
  log: Logger;
  /** Makes the replacement tasks (the orchestrators' `newTask`). */
  newTask: NewTask;
  /** Times update delays, monitor periods and the wait for old tasks to stop; tests pass a `FakeClock`. @default the process's timers */
  timers?: Timers;
}

/** A wait of `ms` on `timers` that ends early, and quietly, when `signal` aborts. */
function sleepOn(timers: Timers): Sleep {
  return (ms, signal) =>
    new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const wake = () => {
        timers.clearTimeout(timer);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      const timer = timers.setTimeout(wake, ms);
      signal.addEventListener('abort', wake, { once: true });
    });
}

/**
 * The update supervisor (swarmkit's `update.Supervisor`): runs at most one rollout per service, each
 * a rolling update or rollback (see {@link Rollout}). Asking again for the spec a rollout already
 * pursues changes nothing; asking for another spec cancels that rollout and starts a new one once it
 * has stopped, so two rollouts never write for the same service at once.
 */
export class Updater implements ServiceUpdater {
  readonly #context: RolloutContext;
  readonly #log: Logger;
  readonly #onFenced: (() => void) | undefined;
  readonly #rollouts = new Map<string, { readonly rollout: Rollout; readonly done: Promise<void> }>();
  #stopped = false;

  constructor(options: UpdaterOptions) {
    this.#log = options.log.child({ module: 'orchestrator/update' });
    this.#onFenced = options.onFenced;
    this.#context = {
      state: options.state,
      fence: options.fence,
      clock: options.clock ?? (() => new Date()),
      sleep: sleepOn(options.timers ?? systemTimers),
      log: this.#log,
      newTask: options.newTask,
    };
  }

  update(service: Service, slots: Task[][]): void {
    if (this.#stopped) return;
    const current = this.#rollouts.get(service.id);
    if (current?.rollout.pursues(service) === true) return;
    current?.rollout.cancel();
    const rollout = new Rollout(service, slots, this.#context);
    const done = (current?.done ?? Promise.resolve())
      .then(() => rollout.run())
      .catch((err: unknown) => {
        if (hasCode(err, ErrorCode.Conflict) && err.details['kind'] === 'lease') {
          this.#log.warn({ serviceId: service.id, err: err.message }, 'a rollout write was fenced off: another instance holds the lease now');
          this.#onFenced?.();
          return;
        }
        this.#log.error({ serviceId: service.id, err }, 'rollout failed; the next reconciliation starts it again');
      })
      .finally(() => {
        if (this.#rollouts.get(service.id)?.rollout === rollout) this.#rollouts.delete(service.id);
      });
    this.#rollouts.set(service.id, { rollout, done });
  }

  cancel(serviceId: string): void {
    this.#rollouts.get(serviceId)?.rollout.cancel();
  }

  /** Resolves when no update is running (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.#rollouts.size > 0) await Promise.all([...this.#rollouts.values()].map(({ done }) => done));
  }

  /** Cancels every rollout and resolves once they have stopped; later `update` calls are ignored. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const { rollout } of this.#rollouts.values()) rollout.cancel();
    await this.idle();
  }
}
