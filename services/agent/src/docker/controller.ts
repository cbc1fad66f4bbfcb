import type Dockerode from 'dockerode';
import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import type { ContainerSpec, Task } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import type { ObservedTask, TaskController, TaskDependencies, TaskExit, TaskLogLine, TaskLogOptions } from '../executor.js';
import { ContainerAction, ContainerEventStream, rememberedExitCode } from './container-events.js';
import { logLines } from './container-logs.js';
import {
  TASK_ID_LABEL,
  containerCreateBody,
  containerSpecOf,
  imageReference,
  volumesToCreate,
  type ContainerCreateBody,
} from './container-spec.js';
import { callEngine, callEngineTolerating, engineError, engineStatus, untilSettledOrAborted } from './engine.js';
import { TaskFiles } from './task-files.js';

/** Why a task ended when its healthcheck, not its process, decided it (moby's `ErrContainerUnhealthy`). */
export const CONTAINER_UNHEALTHY = 'dockerexec: unhealthy container';
/** A container removed before it ever became healthy (moby's `ErrContainerDestroyed`). */
const CONTAINER_DESTROYED = 'dockerexec: container destroyed';

/** What every controller of one executor shares. */
export interface ControllerContext {
  readonly docker: Dockerode;
  readonly secretsDir: string;
  /** Added to every task container's labels. */
  readonly containerLabels: Readonly<Record<string, string>>;
  readonly log: Logger;
}

/** One line of the engine's pull progress; the last one carries `error` when the pull failed. */
interface PullProgress {
  readonly error?: unknown;
}

type ContainerInfo = Dockerode.ContainerInspectInfo;

/**
 * Runs one task as a container on the local dockerd, as moby's swarm executor does: the engine knows
 * the container by the task's name, so every step can find it again after an agent restart.
 */
export class DockerTaskController implements TaskController {
  private readonly spec: ContainerSpec;
  private readonly image: string;
  private readonly files: TaskFiles | undefined;
  private readonly createBody: ContainerCreateBody;
  private readonly log: Logger;
  /** Aborted once the task is shut down: an image pull still running is no longer needed. */
  private readonly pulls = new AbortController();
  private pulling: Promise<void> | undefined;
  /** How the engine knows the container: by the task's name, or by ID once found by its task label under another name. */
  private containerRef: string;

  /** Throws INVALID_ARGUMENT when the task cannot run as a container at all. */
  constructor(
    private readonly task: Task,
    private readonly dependencies: TaskDependencies,
    private readonly context: ControllerContext,
  ) {
    this.spec = containerSpecOf(task);
    this.image = imageReference(this.spec.image);
    this.files = TaskFiles.forTask(task.id, this.spec, context.secretsDir);
    this.createBody = containerCreateBody(task, this.spec, context.containerLabels, this.files?.files ?? []);
    this.containerRef = this.createBody.name;
    this.log = context.log.child({ taskId: task.id });
  }

  async inspect(signal: AbortSignal): Promise<ObservedTask> {
    const info = await this.findContainer(signal);
    if (info === undefined) return { state: 'absent' };
    if (info.State.Status === 'created') return { state: 'created', containerId: info.Id };
    if (info.State.Running) return { state: 'running', containerId: info.Id, pid: info.State.Pid };
    return { state: 'exited', containerId: info.Id, exitCode: info.State.ExitCode };
  }

  async prepare(signal: AbortSignal): Promise<void> {
    await this.ensureImage(signal);
    for (const volume of volumesToCreate(this.spec)) {
      // The engine returns an existing volume of that name as it is, so this is safe to repeat.
      const options = { Name: volume.name, Driver: volume.driver, DriverOpts: volume.driverOptions, Labels: volume.labels, abortSignal: signal };
      await callEngine(this.context.docker.createVolume(options), signal);
    }
    await this.files?.write(this.dependencies);
    await this.ensureContainer(signal);
  }

  async start(signal: AbortSignal): Promise<void> {
    const before = await this.requireContainer(signal);
    if (!hasHealthcheck(before)) {
      if (before.State.Status === 'created') await this.startContainer(signal);
      return;
    }
    // Subscribed before starting, so no health change can slip past between the start and the first read.
    await this.watching(signal, async (events) => {
      if (before.State.Status === 'created') await this.startContainer(signal);
      await this.untilHealthy(events, signal);
    });
  }

  async wait(signal: AbortSignal): Promise<TaskExit> {
    for (;;) {
      const exit = await this.watching(signal, async (events) => {
        const info = await this.findContainer(signal);
        if (info === undefined) return this.rememberedExit(signal);
        if (!info.State.Running) return { exitCode: info.State.ExitCode };
        let error: string | undefined;
        for (let event = await events.next(); event !== undefined; event = await events.next()) {
          if (event.action === ContainerAction.Die) return error === undefined ? { exitCode: event.exitCode } : { exitCode: event.exitCode, error };
          if (event.action === ContainerAction.Destroy) return this.rememberedExit(signal);
          if (event.action === ContainerAction.Unhealthy && error === undefined) {
            error = CONTAINER_UNHEALTHY;
            await this.stopUnhealthy(signal);
          }
        }
        return undefined;
      });
      if (exit !== undefined) return exit;
      // The engine ended the event stream (dockerd restarting): subscribe again and look afresh.
    }
  }

  async shutdown(signal: AbortSignal): Promise<void> {
    this.pulls.abort();
    if ((await this.findContainer(signal)) !== undefined) await stopGracefully(this.container(), signal);
  }

  async remove(signal: AbortSignal): Promise<void> {
    this.pulls.abort();
    if ((await this.findContainer(signal)) !== undefined) await stopAndRemoveContainer(this.container(), signal, this.log);
    await this.files?.remove();
  }

  async *logs(options: TaskLogOptions, signal: AbortSignal): AsyncGenerator<TaskLogLine> {
    if (!options.stdout && !options.stderr) return;
    // A log read of a container that never started would end at once, so a follow waits for the start.
    const info = options.follow ? await this.startedContainer(signal) : await this.requireContainer(signal);
    const reading = new AbortController();
    const query = {
      stdout: options.stdout,
      stderr: options.stderr,
      timestamps: true,
      ...(options.tail === undefined ? {} : { tail: options.tail }),
      // The engine takes seconds with a fraction.
      ...(options.sinceMs === undefined ? {} : { since: options.sinceMs / 1000 }),
      abortSignal: AbortSignal.any([signal, reading.signal]),
    };
    try {
      const output = options.follow
        ? await this.container().logs({ ...query, follow: true })
        : [await this.container().logs({ ...query, follow: false })];
      yield* logLines(output, { tty: info.Config.Tty });
    } catch (err) {
      if (signal.aborted) return;
      throw engineError(err, signal);
    } finally {
      reading.abort();
    }
  }

  private container(): Dockerode.Container {
    return this.context.docker.getContainer(this.containerRef);
  }

  /** The task's container by name, else by its task label (someone renamed it), else `undefined`. */
  private async findContainer(signal: AbortSignal): Promise<ContainerInfo | undefined> {
    const byRef = await callEngineTolerating([404], this.container().inspect({ abortSignal: signal }), signal);
    if (byRef !== undefined) return byRef;
    const filters = { label: [`${TASK_ID_LABEL}=${this.task.id}`] };
    const [labelled] = await callEngine(this.context.docker.listContainers({ all: true, filters, abortSignal: signal }), signal);
    if (labelled === undefined) return undefined;
    this.containerRef = labelled.Id;
    return callEngineTolerating([404], this.container().inspect({ abortSignal: signal }), signal);
  }

  private async requireContainer(signal: AbortSignal): Promise<ContainerInfo> {
    const info = await this.findContainer(signal);
    if (info === undefined) throw errors.notFound(`No such container: ${this.containerRef}`, { taskId: this.task.id });
    return info;
  }

  /** Runs `body` with a subscription to the container's events, opened before `body` looks at the container. */
  private async watching<T>(signal: AbortSignal, body: (events: ContainerEventStream) => Promise<T>): Promise<T> {
    const events = await ContainerEventStream.open(this.context.docker, this.containerRef, signal);
    try {
      return await body(events);
    } finally {
      events.close();
    }
  }

  private async ensureImage(signal: AbortSignal): Promise<void> {
    const present = await callEngineTolerating([404], this.context.docker.getImage(this.image).inspect(), signal);
    if (present !== undefined) return;
    if (this.pulling === undefined) {
      const pulling = this.pull();
      this.pulling = pulling;
      // The pull outlives an aborted prepare, so the retry picks it up; a failed one is tried afresh.
      pulling.catch(() => {
        if (this.pulling === pulling) this.pulling = undefined;
      });
    }
    await untilSettledOrAborted(this.pulling, signal);
  }

  private async pull(): Promise<void> {
    const signal = this.pulls.signal;
    this.log.info({ image: this.image }, 'pulling image');
    const registryAuth = this.spec.pullOptions?.registryAuth ?? '';
    // dockerode sends `authconfig.base64` as X-Registry-Auth unchanged, which is how swarmkit carries it.
    const options = { abortSignal: signal, ...(registryAuth === '' ? {} : { authconfig: { base64: registryAuth } }) };
    let progress: PullProgress[];
    try {
      const stream = await this.context.docker.pull(this.image, options);
      progress = await new Promise<PullProgress[]>((resolve, reject) =>
        this.context.docker.modem.followProgress(stream, (err, output: PullProgress[]) => (err === null ? resolve(output) : reject(err))),
      );
    } catch (err) {
      throw pullError(engineError(err, signal));
    }
    const failure = progress.filter((line) => typeof line.error === 'string').at(-1)?.error;
    if (typeof failure === 'string') throw pullError(errors.internal(failure));
    this.log.info({ image: this.image }, 'pulled image');
  }

  private async ensureContainer(signal: AbortSignal): Promise<void> {
    try {
      // The cast widens the mount types that @types/dockerode 4.0.2 has too narrow (see ContainerCreateBody).
      const created = await this.context.docker.createContainer({ ...this.createBody, abortSignal: signal } as Dockerode.ContainerCreateOptions);
      this.log.debug({ containerId: created.id }, 'created container');
    } catch (err) {
      // A container of this name exists already: an earlier prepare made it, so there is nothing to do.
      if (engineStatus(err) === 409 && (await this.findContainer(signal)) !== undefined) return;
      throw engineError(err, signal);
    }
  }

  private async startContainer(signal: AbortSignal): Promise<void> {
    try {
      await callEngineTolerating([304], this.container().start({ abortSignal: signal }), signal);
    } catch (err) {
      const failure = engineError(err, signal);
      throw new ShoalError(failure.code, `starting container failed: ${failure.message}`, { cause: err, details: failure.details });
    }
  }

  private async stopUnhealthy(signal: AbortSignal): Promise<void> {
    this.log.info('container is unhealthy; stopping it');
    await stopGracefully(this.container(), signal);
  }

  /** Follows the events of a container that has a healthcheck until it is healthy, or fails with why it never was. */
  private async untilHealthy(events: ContainerEventStream, signal: AbortSignal): Promise<void> {
    // Health may have settled before the subscription: read the state first, then follow the events.
    const current = await this.requireContainer(signal);
    if (current.State.Health?.Status === 'healthy') return;
    if (!current.State.Running) return endedBeforeHealthy(current.State.ExitCode, false);
    let unhealthy = current.State.Health?.Status === 'unhealthy';
    if (unhealthy) await this.stopUnhealthy(signal);
    for (let event = await events.next(); event !== undefined; event = await events.next()) {
      switch (event.action) {
        case ContainerAction.Healthy:
          if (!unhealthy) return;
          break;
        case ContainerAction.Unhealthy:
          if (!unhealthy) {
            unhealthy = true;
            await this.stopUnhealthy(signal);
          }
          break;
        case ContainerAction.Die:
          return endedBeforeHealthy(event.exitCode, unhealthy);
        case ContainerAction.Destroy:
          throw errors.failedPrecondition(CONTAINER_DESTROYED, { taskId: this.task.id });
      }
    }
    throw errors.unavailable(`the Docker engine ended its event stream before container ${this.containerRef} became healthy`);
  }

  /** Resolves with the container's info once it has started (at once if it already has). */
  private async startedContainer(signal: AbortSignal): Promise<ContainerInfo> {
    return this.watching(signal, async (events) => {
      const info = await this.requireContainer(signal);
      if (info.State.Status !== 'created') return info;
      for (let event = await events.next(); event !== undefined; event = await events.next()) {
        if (event.action === ContainerAction.Start) return info;
        if (event.action === ContainerAction.Destroy) break;
      }
      return this.requireContainer(signal);
    });
  }

  /** The exit of a container that is gone, from the engine's event history; NOT_FOUND when the engine has forgotten it. */
  private async rememberedExit(signal: AbortSignal): Promise<TaskExit> {
    const exitCode = await rememberedExitCode(this.context.docker, this.containerRef, signal);
    if (exitCode === undefined) throw errors.notFound(`No such container: ${this.containerRef}`, { taskId: this.task.id });
    return { exitCode };
  }
}

/**
 * Stops a container with its stop signal and grace period, which it carries from its creation
 * (`StopSignal`, `StopTimeout`). Stopped already, or gone, is fine.
 */
async function stopGracefully(container: Dockerode.Container, signal: AbortSignal): Promise<void> {
  await callEngineTolerating([304, 404], container.stop({ abortSignal: signal }), signal);
}

/**
 * Stops a container (so its process gets its stop signal and grace period, as in Docker), then removes
 * it with its anonymous volumes. A failed stop is only logged: the forced removal ends the process
 * regardless. Gone already, or being removed by someone else, is fine.
 */
export async function stopAndRemoveContainer(container: Dockerode.Container, signal: AbortSignal, log: Logger): Promise<void> {
  await stopGracefully(container, signal).catch((err: unknown) => {
    if (signal.aborted) throw err;
    log.debug({ err }, 'stopping the container before removal failed');
  });
  await callEngineTolerating([404, 409], container.remove({ force: true, v: true, abortSignal: signal }), signal);
}

/** Whether the container (with its image's settings merged in) has a healthcheck that is not disabled. */
function hasHealthcheck(info: ContainerInfo): boolean {
  const test = info.Config.Healthcheck?.Test ?? [];
  return test.length > 0 && test[0] !== 'NONE';
}

/** A container that stopped before it was healthy: an error unless it simply finished (moby starts it as done). */
function endedBeforeHealthy(exitCode: number, unhealthy: boolean): void {
  if (unhealthy) throw taskFailure(exitCode, exitCode === 0 ? CONTAINER_UNHEALTHY : `${exitMessage(exitCode)}: ${CONTAINER_UNHEALTHY}`);
  if (exitCode !== 0) throw taskFailure(exitCode, exitMessage(exitCode));
}

/** Docker's text for a task whose process failed, e.g. `task: non-zero exit (137)`. */
function exitMessage(exitCode: number): string {
  return `task: non-zero exit (${exitCode})`;
}

function taskFailure(exitCode: number, message: string): ShoalError {
  return new ShoalError(ErrorCode.FailedPrecondition, message, { details: { exitCode } });
}

/** An image that cannot be pulled is a precondition of the task that failed, unless the pull was cut short or dockerd was away. */
function pullError(failure: ShoalError): ShoalError {
  if (failure.code === ErrorCode.Cancelled || failure.code === ErrorCode.Unavailable) return failure;
  return new ShoalError(ErrorCode.FailedPrecondition, failure.message, { cause: failure });
}
