import { ErrorCode, errors, toShoalError, type ShoalError } from '@shoal/errors';
import { TaskState, type Service, type Task } from '@shoal/proto';
import { untilAborted, type LogFields, type Logger } from '@shoal/runtime';
import { byDesiredState, byNodeId, byServiceId, splitIntoTransactions, type Commit, type Precondition, type ReadTx } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';
import { enforceConstraints } from './constraint-enforcer.js';
import { reconcileGlobal } from './global.js';
import { reconcileGlobalJob, reconcileReplicatedJob } from './jobs.js';
import { Plan } from './plan.js';
import { reapTasks } from './reaper.js';
import { reconcileReplicated } from './replicated.js';
import { RestartSupervisor } from './restart.js';
import { isPerNodeMode, serviceModeOf, type ServiceMode } from './service-mode.js';
import type { ServiceUpdater } from './update/updater.js';
import { systemTimers, type Timers } from './timers.js';

export interface OrchestratorOptions {
  /** The store, read from a consistent view and written with conditional commits. */
  readonly state: ClusterState;
  /** A precondition every write carries (the leadership's lease fence), so a deposed instance cannot write. */
  readonly fence?: Precondition | undefined;
  /** Stamps task statuses and times restarts. @default the system clock */
  readonly clock?: () => Date;
  /** Times restart delays and retries; must agree with `clock`. @default the system timers */
  readonly timers?: Timers | undefined;
  readonly log: Logger;
  /** Rolls services out to a new spec. Without one, tasks of an outdated spec are left running as they are. */
  readonly updater?: ServiceUpdater | undefined;
}

/** How many times one reconcile is planned again on a fresh read when another writer got there first. */
const MAX_ATTEMPTS = 5;
/** How long a reconcile that could not be committed waits before it is tried again. */
const RETRY_DELAY_MS = 1_000;

/** The orchestrator's control loops, each with its own work: the services to orchestrate, the nodes to check, the services whose tasks to reap. */
type Loop = 'orchestrate' | 'enforce' | 'reap';

const reconcilers: Readonly<Record<ServiceMode, (plan: Plan, service: Service, restarts: RestartSupervisor) => void>> = {
  replicated: reconcileReplicated,
  global: reconcileGlobal,
  'replicated-job': reconcileReplicatedJob,
  'global-job': reconcileGlobalJob,
};

/** Plans desired REMOVE for every task of a deleted service: the agents stop them and the reaper deletes them. */
function removeTasksOf(plan: Plan, serviceId: string): void {
  for (const task of plan.tx.find('task', byServiceId(serviceId))) plan.setDesiredState(task, TaskState.REMOVE);
}

/**
 * Shoal's orchestrator: turns services into tasks and keeps them there, the way swarmkit's leader
 * runs its replicated, global and jobs orchestrators, restart supervisor, task reaper and constraint
 * enforcer. It owns task creation and deletion and `Task.desiredState` (which only ever moves
 * forward); it writes a task's status only to reject it (constraint enforcer) and never sets the
 * node of a replicated task.
 *
 * It reconciles from the store, not from remembered events: on start it reconciles everything in the
 * view, then whatever each commit touches (a service, its tasks, a node, the cluster settings). Work
 * that piles up while a pass is committing is handled together in the next pass. Every write is
 * conditional (updates carry the version read, and every commit the `fence`), and a conflict makes
 * the pass re-read and plan again, so an instance can be stopped or killed at any moment and a new
 * one neither loses nor repeats work. The only memory is the timers of restart delays, which a new
 * instance takes over from the tasks it finds waiting.
 */
export class Orchestrator {
  readonly #state: ClusterState;
  readonly #fence: Precondition | undefined;
  readonly #clock: () => Date;
  readonly #timers: Timers;
  readonly #log: Logger;
  readonly #updater: ServiceUpdater | undefined;
  readonly #restarts: RestartSupervisor;
  readonly #dirty: Record<Loop, Set<string>> = { orchestrate: new Set(), enforce: new Set(), reap: new Set() };
  /** Set when everything must be looked at again: on start, and when the view resynced. */
  #resyncPending = false;
  /** Whether the delayed starts a previous instance left have been taken over. */
  #adopted = false;
  /** The last commit the subscription delivered. */
  #seenVersion = 0n;
  #pumping: Promise<void> | undefined;
  readonly #retries = new Set<unknown>();
  /** Services handed to the updater, whose updates stop with this instance. */
  readonly #updating = new Set<string>();
  readonly #halt = new AbortController();
  #stopping: AbortSignal = this.#halt.signal;
  #started = false;
  #failure: ShoalError | undefined;
  #idleWaiters: Array<() => void> = [];

  constructor(options: OrchestratorOptions) {
    this.#state = options.state;
    this.#fence = options.fence;
    this.#clock = options.clock ?? (() => new Date());
    this.#timers = options.timers ?? systemTimers;
    this.#log = options.log;
    this.#updater = options.updater;
    this.#restarts = new RestartSupervisor({
      clock: this.#clock,
      timers: this.#timers,
      onDue: (serviceId) => {
        this.#dirty.orchestrate.add(serviceId);
        this.#kick();
      },
    });
  }

  /**
   * Orchestrates until `signal` aborts, or until a write is fenced off (another instance holds the
   * lease now), and then stops its timers and the updates it started. A reconcile that fails is
   * logged and tried again later; `run` rejects only if its own loop breaks. An instance runs once;
   * build a new one to run again.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#started) throw errors.failedPrecondition('an Orchestrator runs once; build a new one to run again');
    this.#started = true;
    this.#stopping = AbortSignal.any([signal, this.#halt.signal]);
    this.#seenVersion = this.#state.version;
    const unsubscribe = this.#state.subscribe((commit) => this.#onCommit(commit));
    this.#log.info({ state: 'running' }, 'orchestrating');
    try {
      this.#resyncPending = true;
      this.#kick();
      await untilAborted(this.#stopping);
    } finally {
      unsubscribe();
      this.#halt.abort();
      await this.#pumping;
      this.#restarts.stop();
      for (const timer of this.#retries) this.#timers.clearTimeout(timer);
      for (const serviceId of this.#updating) this.#updater?.cancel(serviceId);
      this.#checkIdle();
      this.#log.info({ state: 'stopped' }, 'no longer orchestrating');
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Resolves once the orchestrator has caught up: it has handled every commit the view shows and is
   * not reconciling anything. Restart delays still waiting for their time do not count. For tests
   * and simulations, which change the store, then wait for this, then look.
   */
  settled(): Promise<void> {
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#checkIdle();
    });
  }

  #onCommit(commit: Commit): void {
    this.#seenVersion = commit.version;
    if (this.#stopping.aborted) return;
    if (commit.events.length === 0) {
      // The view resynced from a snapshot: anything may have changed.
      this.#resyncPending = true;
    } else {
      try {
        this.#state.view((tx) => this.#markChanged(tx, commit));
      } catch (err) {
        const error = toShoalError(err);
        this.#log.warn({ code: error.code, err: error.message }, 'cannot read the store; reconciling everything once it can');
        this.#resyncPending = true;
      }
    }
    this.#kick();
  }

  /** Marks the work a commit calls for. */
  #markChanged(tx: ReadTx, commit: Commit): void {
    const { orchestrate, enforce, reap } = this.#dirty;
    for (const event of commit.events) {
      if (event.kind === 'service') {
        orchestrate.add(event.object.id);
        reap.add(event.object.id);
      } else if (event.kind === 'task') {
        if (event.object.serviceId !== '') orchestrate.add(event.object.serviceId);
        reap.add(event.object.serviceId);
      } else if (event.kind === 'node') {
        if (event.action !== 'delete') enforce.add(event.object.id);
        for (const service of tx.list('service')) {
          const mode = serviceModeOf(service);
          if (mode !== undefined && isPerNodeMode(mode)) orchestrate.add(service.id);
        }
        for (const task of tx.find('task', byNodeId(event.object.id))) if (task.serviceId !== '') orchestrate.add(task.serviceId);
      } else if (event.kind === 'cluster') {
        for (const service of tx.list('service')) reap.add(service.id);
      }
    }
  }

  /** Marks everything the view holds, and on the first call takes over the delayed starts a previous instance left. */
  #resync(): void {
    this.#resyncPending = false;
    const { orchestrate, enforce, reap } = this.#dirty;
    try {
      this.#state.view((tx) => {
        for (const service of tx.list('service')) {
          orchestrate.add(service.id);
          reap.add(service.id);
        }
        // Tasks whose service is gone are found through the tasks themselves.
        for (const task of tx.list('task')) {
          if (task.serviceId !== '') orchestrate.add(task.serviceId);
          reap.add(task.serviceId);
        }
        for (const node of tx.list('node')) enforce.add(node.id);
        if (!this.#adopted) this.#adoptDelayedStarts(tx.find('task', byDesiredState(TaskState.READY)));
      });
      this.#adopted = true;
    } catch (err) {
      const error = toShoalError(err);
      this.#log.warn({ code: error.code, err: error.message }, 'cannot read the store; trying again');
      this.#later(() => (this.#resyncPending = true));
    }
  }

  #adoptDelayedStarts(ready: readonly Task[]): void {
    const now = this.#clock();
    for (const task of ready) {
      if (task.serviceId !== '' && (task.status?.state ?? TaskState.NEW) <= TaskState.RUNNING) this.#restarts.adopt(task, now);
    }
  }

  #hasWork(): boolean {
    return this.#resyncPending || Object.values(this.#dirty).some((keys) => keys.size > 0);
  }

  /** Starts a pass over the pending work unless one is running (it will pick the new work up). */
  #kick(): void {
    if (this.#pumping !== undefined || this.#stopping.aborted) return;
    this.#pumping = this.#pump()
      .catch((err: unknown) => {
        this.#failure = toShoalError(err);
        this.#log.error({ err: this.#failure }, 'orchestrator failed');
        this.#halt.abort();
      })
      .finally(() => {
        this.#pumping = undefined;
        if (this.#hasWork()) this.#kick();
        this.#checkIdle();
      });
  }

  async #pump(): Promise<void> {
    while (!this.#stopping.aborted && this.#hasWork()) {
      if (this.#resyncPending) this.#resync();
      for (const serviceId of this.#take('orchestrate')) await this.#orchestrate(serviceId);
      for (const nodeId of this.#take('enforce')) await this.#write('enforce', nodeId, { nodeId }, (plan) => enforceConstraints(plan, nodeId));
      for (const serviceId of this.#take('reap')) await this.#write('reap', serviceId, { serviceId }, (plan) => reapTasks(plan, serviceId));
    }
  }

  #take(loop: Loop): string[] {
    const keys = [...this.#dirty[loop]];
    this.#dirty[loop].clear();
    return keys;
  }

  async #orchestrate(serviceId: string): Promise<void> {
    let deleted = false;
    await this.#write('orchestrate', serviceId, { serviceId }, (plan) => {
      const service = plan.tx.get('service', serviceId);
      deleted = service === undefined;
      if (service === undefined) return removeTasksOf(plan, serviceId);
      const mode = serviceModeOf(service);
      if (mode !== undefined) reconcilers[mode](plan, service, this.#restarts);
    });
    if (!deleted) return;
    this.#restarts.forgetService(serviceId);
    if (this.#updating.delete(serviceId)) this.#updater?.cancel(serviceId);
  }

  /**
   * Plans against a fresh read and commits, again on a fresh read when another writer got there
   * first, and later (after {@link RETRY_DELAY_MS}) when that keeps failing. Returns whether the plan
   * was committed.
   */
  async #write(loop: Loop, key: string, fields: LogFields, build: (plan: Plan) => void): Promise<boolean> {
    for (let attempt = 1; !this.#stopping.aborted; attempt++) {
      try {
        const plan = this.#state.view((tx) => {
          const plan = new Plan(tx, this.#clock());
          build(plan);
          return plan;
        });
        await this.#commit(plan, fields);
        return true;
      } catch (err) {
        const error = toShoalError(err);
        if (this.#isFenced(error)) {
          this.#depose(error);
          return false;
        }
        const raced = error.code === ErrorCode.Conflict || error.code === ErrorCode.NotFound;
        if (raced && attempt < MAX_ATTEMPTS) continue;
        // Losing races or the store for a while is expected; anything else is a fault worth an error.
        const expected = raced || error.code === ErrorCode.Unavailable || error.code === ErrorCode.DeadlineExceeded;
        this.#log[expected ? 'warn' : 'error']({ ...fields, code: error.code, err: error.message }, 'could not reconcile; trying again later');
        this.#later(() => this.#dirty[loop].add(key));
        return false;
      }
    }
    return false;
  }

  async #commit(plan: Plan, fields: LogFields): Promise<void> {
    const changes = plan.changes();
    const preconditions = this.#fence === undefined ? plan.preconditions : [this.#fence, ...plan.preconditions];
    for (const batch of splitIntoTransactions(changes)) {
      await this.#state.commit({ changes: batch, preconditions });
      for (const change of batch) {
        const start = change.action === 'create' ? plan.delayedStarts.get(change.object.id) : undefined;
        if (start !== undefined) this.#restarts.schedule(start);
      }
    }
    if (changes.length > 0) this.#log.debug({ ...fields, changes: changes.length }, 'reconciled');
    if (this.#updater === undefined) return;
    for (const { service, slots } of plan.updates) {
      this.#updating.add(service.id);
      this.#updater.update(service, slots);
    }
  }

  #isFenced(error: ShoalError): boolean {
    const fence = this.#fence;
    const failedCheck = error.code === ErrorCode.Conflict || error.code === ErrorCode.NotFound;
    return fence !== undefined && failedCheck && error.details['kind'] === fence.kind && error.details['id'] === fence.id;
  }

  #depose(error: ShoalError): void {
    if (this.#halt.signal.aborted) return;
    this.#log.warn({ code: error.code, err: error.message }, 'a write was fenced off: another instance holds the lease now; stopping');
    this.#halt.abort();
  }

  #later(action: () => void): void {
    const timer = this.#timers.setTimeout(() => {
      this.#retries.delete(timer);
      action();
      this.#kick();
    }, RETRY_DELAY_MS);
    this.#retries.add(timer);
  }

  #checkIdle(): void {
    const idle = this.#stopping.aborted || (this.#pumping === undefined && !this.#hasWork() && this.#seenVersion >= this.#state.version);
    if (!idle) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}
