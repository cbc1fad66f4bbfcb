/**
 * What the Docker executor's tests share: a test bed on the host's dockerd whose containers carry
 * `shoal.test=<this file's run id>` and whose secrets directory is a private temp dir under /run, and
 * builders for tasks and for reading a task's logs. Everything the bed creates, `cleanUp` removes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import Dockerode from 'dockerode';
import { Task, TaskState, newId, taskName, type ContainerSpec, type Duration } from '@shoal/proto';
import { captureLogs } from '@shoal/runtime/testing';
import { TEST_IMAGE, TEST_LABEL, dockerClient, removeTestContainers, requireTestImage, testRunId } from '@shoal/testkit';
import { createDockerExecutor, type DockerExecutorOptions } from '../src/docker/index.js';
import { removeTaskFiles, tasksWithFiles } from '../src/docker/task-files.js';
import type { Executor, TaskController, TaskDependencies, TaskLogLine, TaskLogOptions } from '../src/executor.js';

type TaskInit = Parameters<typeof Task.fromPartial>[0];
type ContainerSpecInit = NonNullable<NonNullable<TaskInit['spec']>['container']>;

/** A signal for calls a test never cancels. */
export const noCancel = new AbortController().signal;

export const noDependencies: TaskDependencies = { secrets: new Map(), configs: new Map() };

/** A container that runs until stopped. `sleep`, as PID 1, ignores SIGTERM, so a grace period would only be waited out: it has none. */
export const sleepForever = { command: ['sleep', '300'], stopGracePeriod: { seconds: 0n, nanos: 0 } };

/** A protobuf Duration of `value` seconds (fractions allowed). */
export function seconds(value: number): Duration {
  const whole = Math.floor(value);
  return { seconds: BigInt(whole), nanos: Math.round((value - whole) * 1e9) };
}

export class DockerTestBed {
  /** The `shoal.test` label value of everything this bed creates; unique per test file. */
  readonly runId = `${testRunId()}-${randomBytes(3).toString('hex')}`;
  /** The node the bed's executors and tasks belong to, unless a test says otherwise. */
  readonly nodeId = `node-${newId()}`;
  /** What the executors logged, parsed. */
  readonly logs = captureLogs();

  private constructor(
    readonly docker: Dockerode,
    /** A private secrets directory under /run (a tmpfs on the host, as the agent's default is). */
    readonly secretsDir: string,
  ) {}

  /** Fails once, clearly, when the test image is missing (scripts/bootstrap.sh builds it). */
  static async create(): Promise<DockerTestBed> {
    const docker = await dockerClient();
    await requireTestImage(TEST_IMAGE, docker);
    return new DockerTestBed(docker, await mkdtemp('/run/shoal-test-secrets-'));
  }

  executor(options: Partial<DockerExecutorOptions> = {}): Executor {
    return createDockerExecutor({
      docker: this.docker,
      nodeId: this.nodeId,
      secretsDir: this.secretsDir,
      containerLabels: { [TEST_LABEL]: this.runId },
      log: this.logs.log,
      ...options,
    });
  }

  /** A replicated task (slot 1) of service `shoal-test` on the bed's node, running `container` (busybox unless it names an image). */
  task(container: ContainerSpecInit, fields: TaskInit = {}): Task {
    return Task.fromPartial({
      id: newId(),
      serviceId: newId(),
      slot: 1n,
      nodeId: this.nodeId,
      serviceAnnotations: { name: 'shoal-test' },
      desiredState: TaskState.RUNNING,
      ...fields,
      spec: { ...fields.spec, container: { image: TEST_IMAGE, ...container } },
    });
  }

  /** The engine's view of the task's container, found by the task's name. */
  inspect(task: Task): Promise<Dockerode.ContainerInspectInfo> {
    return this.docker.getContainer(taskName(task)).inspect();
  }

  /** Removes every container labelled with the bed's run id, then every task tmpfs and the secrets directory. */
  async cleanUp(): Promise<void> {
    await removeTestContainers(this.runId, this.docker);
    for (const taskId of await tasksWithFiles(this.secretsDir)) await removeTaskFiles(`${this.secretsDir}/${taskId}`);
    await rm(this.secretsDir, { recursive: true, force: true });
  }
}

/**
 * A dockerode client of its own (to hand an executor) that tells when a container was next inspected
 * through it. The controller's waiting steps (wait, a log follow) subscribe to the container's events
 * before they inspect it, so once that inspect is back they miss nothing the test does next.
 */
export function watchedDockerClient(): { docker: Dockerode; inspected(): Promise<void> } {
  const docker = new Dockerode({ socketPath: '/var/run/docker.sock' });
  let waiting: Array<() => void> = [];
  const getContainer = docker.getContainer.bind(docker);
  docker.getContainer = (id: string) => {
    const container = getContainer(id);
    const inspect = container.inspect.bind(container) as (options?: Dockerode.ContainerInspectOptions) => Promise<Dockerode.ContainerInspectInfo>;
    container.inspect = ((options?: Dockerode.ContainerInspectOptions) =>
      inspect(options).finally(() => {
        const inspectedNow = waiting;
        waiting = [];
        for (const resolve of inspectedNow) resolve();
      })) as Dockerode.Container['inspect'];
    return container;
  };
  return { docker, inspected: () => new Promise<void>((resolve) => waiting.push(resolve)) };
}

/** Prepares and starts `task` on `executor`, returning its controller. */
export async function startTask(executor: Executor, task: Task, dependencies: TaskDependencies = noDependencies): Promise<TaskController> {
  const controller = executor.controller(task, dependencies);
  await controller.prepare(noCancel);
  await controller.start(noCancel);
  return controller;
}

const bothStreams = { stdout: true, stderr: true } as const;

/** Every line the task has written so far. */
export async function logsSoFar(controller: TaskController, options: Partial<TaskLogOptions> = {}): Promise<TaskLogLine[]> {
  const lines: TaskLogLine[] = [];
  for await (const line of controller.logs({ ...bothStreams, follow: false, ...options }, noCancel)) lines.push(line);
  return lines;
}

/** Follows the task's logs until `count` lines have arrived (or the logs end), then stops following. */
export async function firstLines(controller: TaskController, count: number): Promise<TaskLogLine[]> {
  const lines: TaskLogLine[] = [];
  for await (const line of controller.logs({ ...bothStreams, follow: true }, noCancel)) {
    if (lines.push(line) === count) break;
  }
  return lines;
}
