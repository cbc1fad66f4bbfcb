import { errors, type ShoalError } from '@shoal/errors';
import { NodeDescription, type Task } from '@shoal/proto';
import type { Executor, ObservedTask, TaskController, TaskDependencies, TaskExit, TaskLogLine, TaskLogOptions } from './executor.js';

/** A step of a fake task that a test can make fail. */
export type FakeStep = 'prepare' | 'start';

/** What is left of a fake task's "container". */
type FakeRuntime =
  | { readonly state: 'created' }
  | { readonly state: 'running'; readonly pid: number }
  | { readonly state: 'exited'; readonly exitCode: number };

interface FakeTask {
  runtime: FakeRuntime;
  readonly containerId: string;
  starts: number;
  readonly logs: TaskLogLine[];
  /** Wakes readers waiting for this task's next line or its exit. */
  readonly changed: Set<() => void>;
  readonly dependencies: TaskDependencies;
}

export interface FakeExecutorOptions {
  /** Reported as the node's hostname. @default 'fake-node' */
  readonly hostname?: string;
  /** Reported as engine labels. */
  readonly engineLabels?: Record<string, string>;
}

/** Exit code of a fake task stopped by `shutdown` (what SIGTERM gives a shell). */
const STOPPED_EXIT_CODE = 143;

/** The "containers" of one fake host, shared by its executor and the controllers it hands out. */
class FakeHost {
  readonly tasks = new Map<string, FakeTask>();
  readonly failures = new Map<string, ShoalError>();
  #nextPid = 1000;

  nextPid(): number {
    return this.#nextPid++;
  }

  failIfAsked(taskId: string, step: FakeStep): void {
    const failure = this.failures.get(`${taskId}/${step}`);
    if (failure === undefined) return;
    this.failures.delete(`${taskId}/${step}`);
    throw failure;
  }

  setRuntime(task: FakeTask, runtime: FakeRuntime): void {
    task.runtime = runtime;
    wake(task);
  }

  remove(taskId: string): void {
    const task = this.tasks.get(taskId);
    if (task === undefined) return;
    this.tasks.delete(taskId);
    wake(task);
  }
}

/**
 * An {@link Executor} that runs nothing: a task's "container" is a record in memory that is prepared
 * and started at once and runs until it is shut down or a test calls {@link exit}. For the agent's
 * own tests and for benchmarks that run many agents in one process, so it costs no timer and no I/O.
 * Tests drive it with {@link exit}, {@link emitLog} and {@link failNext}, and look at it with
 * {@link runtimeState}, {@link startCount} and {@link dependenciesOf}. Reusing one instance across
 * two agents is how a test restarts an agent while its containers keep running.
 */
export class FakeExecutor implements Executor {
  readonly #options: FakeExecutorOptions;
  readonly #host = new FakeHost();

  constructor(options: FakeExecutorOptions = {}) {
    this.#options = options;
  }

  async describe(): Promise<NodeDescription> {
    return NodeDescription.fromPartial({
      hostname: this.#options.hostname ?? 'fake-node',
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCpus: 2_000_000_000n, memoryBytes: 4n * 1024n ** 3n },
      engine: { engineVersion: 'fake', labels: this.#options.engineLabels ?? {} },
    });
  }

  controller(task: Task, dependencies: TaskDependencies): TaskController {
    return new FakeTaskController(this.#host, task.id, dependencies);
  }

  async residentTasks(): Promise<string[]> {
    return [...this.#host.tasks.keys()];
  }

  async removeResidentTask(taskId: string): Promise<void> {
    this.#host.remove(taskId);
  }

  /** Makes a running task's process exit with `exitCode`. */
  exit(taskId: string, exitCode: number): void {
    const task = this.#task(taskId);
    if (task.runtime.state !== 'running') throw errors.failedPrecondition(`fake task ${taskId} is not running`);
    this.#host.setRuntime(task, { state: 'exited', exitCode });
  }

  /** Appends a line to a task's log. */
  emitLog(taskId: string, stream: 'stdout' | 'stderr', line: string): void {
    const task = this.#task(taskId);
    task.logs.push({ stream, time: new Date().toISOString(), line });
    wake(task);
  }

  /** Makes the next `step` of the task fail with `error`, once. */
  failNext(taskId: string, step: FakeStep, error: ShoalError): void {
    this.#host.failures.set(`${taskId}/${step}`, error);
  }

  /** The task's "container": absent, created, running or exited. */
  runtimeState(taskId: string): ObservedTask['state'] {
    return this.#host.tasks.get(taskId)?.runtime.state ?? 'absent';
  }

  /** How many times the task's "container" was started. */
  startCount(taskId: string): number {
    return this.#host.tasks.get(taskId)?.starts ?? 0;
  }

  /** The secrets and configs the task's controller was given. */
  dependenciesOf(taskId: string): TaskDependencies | undefined {
    return this.#host.tasks.get(taskId)?.dependencies;
  }

  #task(taskId: string): FakeTask {
    const task = this.#host.tasks.get(taskId);
    if (task === undefined) throw errors.notFound(`no fake task ${taskId}`);
    return task;
  }
}

function wake(task: FakeTask): void {
  for (const listener of task.changed) listener();
}

/** Resolves at the task's next change (a line, an exit, its removal); rejects when `signal` aborts. */
function changed(task: FakeTask, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const finish = () => {
      task.changed.delete(finish);
      signal.removeEventListener('abort', abort);
      resolve();
    };
    const abort = () => {
      task.changed.delete(finish);
      reject(signal.reason);
    };
    task.changed.add(finish);
    signal.addEventListener('abort', abort, { once: true });
  });
}

/** A {@link TaskController} over one task of a {@link FakeHost}. */
class FakeTaskController implements TaskController {
  constructor(
    private readonly host: FakeHost,
    private readonly taskId: string,
    private readonly dependencies: TaskDependencies,
  ) {}

  async inspect(): Promise<ObservedTask> {
    const task = this.host.tasks.get(this.taskId);
    if (task === undefined) return { state: 'absent' };
    const { runtime, containerId } = task;
    if (runtime.state === 'running') return { state: 'running', containerId, pid: runtime.pid };
    if (runtime.state === 'exited') return { state: 'exited', containerId, exitCode: runtime.exitCode };
    return { state: 'created', containerId };
  }

  async prepare(): Promise<void> {
    this.host.failIfAsked(this.taskId, 'prepare');
    if (this.host.tasks.has(this.taskId)) return;
    this.host.tasks.set(this.taskId, {
      runtime: { state: 'created' },
      containerId: `fake-${this.taskId}`,
      starts: 0,
      logs: [],
      changed: new Set(),
      dependencies: this.dependencies,
    });
  }

  async start(): Promise<void> {
    this.host.failIfAsked(this.taskId, 'start');
    const task = this.host.tasks.get(this.taskId);
    if (task === undefined) throw errors.notFound(`No such container: fake-${this.taskId}`);
    if (task.runtime.state !== 'created') return;
    task.starts++;
    this.host.setRuntime(task, { state: 'running', pid: this.host.nextPid() });
  }

  async wait(signal: AbortSignal): Promise<TaskExit> {
    for (;;) {
      const task = this.host.tasks.get(this.taskId);
      // What dockerd reports for a container removed with `docker rm -f` while running.
      if (task === undefined) return { exitCode: 137 };
      if (task.runtime.state === 'exited') return { exitCode: task.runtime.exitCode };
      await changed(task, signal);
    }
  }

  async shutdown(): Promise<void> {
    const task = this.host.tasks.get(this.taskId);
    if (task?.runtime.state === 'running') this.host.setRuntime(task, { state: 'exited', exitCode: STOPPED_EXIT_CODE });
  }

  async remove(): Promise<void> {
    this.host.remove(this.taskId);
  }

  async *logs(options: TaskLogOptions, signal: AbortSignal): AsyncGenerator<TaskLogLine> {
    const task = this.host.tasks.get(this.taskId);
    if (task === undefined) return;
    const wanted = (line: TaskLogLine) =>
      (line.stream === 'stdout' ? options.stdout : options.stderr) && (options.sinceMs === undefined || Date.parse(line.time) >= options.sinceMs);
    const existing = task.logs.filter(wanted);
    yield* options.tail === undefined ? existing : existing.slice(Math.max(0, existing.length - options.tail));
    if (!options.follow) return;
    let sent = task.logs.length;
    while (this.host.tasks.get(this.taskId) === task) {
      const fresh = task.logs.slice(sent).filter(wanted);
      sent = task.logs.length;
      yield* fresh;
      if (task.runtime.state === 'exited') return;
      try {
        await changed(task, signal);
      } catch {
        return; // the reader stopped following
      }
    }
  }
}
