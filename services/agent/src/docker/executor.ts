import type Dockerode from 'dockerode';
import { NodeDescription, type GenericResource, type PluginDescription, type Task } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import type { Executor, TaskController, TaskDependencies } from '../executor.js';
import { NODE_ID_LABEL, TASK_ID_LABEL } from './container-spec.js';
import { DockerTaskController, stopAndRemoveContainer, type ControllerContext } from './controller.js';
import { callEngine, untilSettledOrAborted } from './engine.js';
import { removeTaskFiles, taskFilesDirectory, tasksWithFiles } from './task-files.js';

/** What the Docker executor needs from the agent. */
export interface DockerExecutorOptions {
  /** A client of this host's dockerd. */
  docker: Dockerode;
  /** This node's ID: it labels every task container, so a restarted agent finds its own. */
  nodeId: string;
  /**
   * Where each task's tmpfs of secrets and configs is mounted, as `<secretsDir>/<task id>` (see
   * DEFAULT_SECRETS_DIR). This agent's alone: whatever is found there belongs to its tasks.
   */
  secretsDir: string;
  /** Added to every task container's labels (the `com.docker.swarm.*` labels still win). */
  containerLabels: Record<string, string>;
  /** The hostname to report instead of the engine's. */
  hostname?: string;
  /** Labels to report for the engine, over those dockerd was started with. */
  engineLabels?: Record<string, string>;
  log: Logger;
}

/** The parts of the engine's `GET /info` answer a node description is made of. */
interface EngineInfo {
  Name: string;
  NCPU: number;
  MemTotal: number;
  OSType: string;
  Architecture: string;
  ServerVersion: string;
  Labels: string[] | null;
  Plugins: Record<string, string[] | null> | null;
  GenericResources: EngineGenericResource[] | null;
}

interface EngineGenericResource {
  NamedResourceSpec?: { Kind: string; Value: string };
  DiscreteResourceSpec?: { Kind: string; Value: number };
}

/** The plugin types a node reports, as moby's swarm executor does. */
const reportedPluginTypes = ['Volume', 'Network', 'Authorization', 'Log'];

/** An executor that runs each task as a container on the local dockerd (moby's swarm executor). */
export function createDockerExecutor(options: DockerExecutorOptions): Executor {
  return new DockerExecutor(options);
}

class DockerExecutor implements Executor {
  private readonly context: ControllerContext;

  constructor(private readonly options: DockerExecutorOptions) {
    this.context = {
      docker: options.docker,
      secretsDir: options.secretsDir,
      containerLabels: options.containerLabels,
      log: options.log.child({ module: 'agent/docker', nodeId: options.nodeId }),
    };
  }

  async describe(signal: AbortSignal): Promise<NodeDescription> {
    // dockerode's typings give `info()` no options, so the signal cannot reach the request itself.
    const info = await untilSettledOrAborted(callEngine<EngineInfo>(this.options.docker.info(), signal), signal);
    return NodeDescription.fromPartial({
      hostname: this.options.hostname ?? info.Name,
      platform: { architecture: info.Architecture, os: info.OSType },
      resources: {
        nanoCpus: BigInt(info.NCPU) * 1_000_000_000n,
        memoryBytes: BigInt(info.MemTotal),
        generic: (info.GenericResources ?? []).flatMap(genericResource),
      },
      engine: {
        engineVersion: info.ServerVersion,
        labels: { ...engineLabels(info.Labels ?? []), ...this.options.engineLabels },
        plugins: plugins(info.Plugins ?? {}),
      },
    });
  }

  controller(task: Task, dependencies: TaskDependencies): TaskController {
    return new DockerTaskController(task, dependencies, this.context);
  }

  /** Tasks with a container labelled with this node, and tasks with a tmpfs left in the secrets directory. */
  async residentTasks(signal: AbortSignal): Promise<string[]> {
    const containers = await this.nodeContainers([], signal);
    const withContainers = containers.map((container) => container.Labels[TASK_ID_LABEL] ?? '').filter((taskId) => taskId !== '');
    return [...new Set([...withContainers, ...(await tasksWithFiles(this.options.secretsDir))])];
  }

  async removeResidentTask(taskId: string, signal: AbortSignal): Promise<void> {
    const directory = taskFilesDirectory(this.options.secretsDir, taskId);
    const log = this.context.log.child({ taskId });
    for (const container of await this.nodeContainers([`${TASK_ID_LABEL}=${taskId}`], signal)) {
      await stopAndRemoveContainer(this.options.docker.getContainer(container.Id), signal, log);
    }
    await removeTaskFiles(directory);
  }

  /** Every container, running or not, labelled with this node (and with `labels`). */
  private nodeContainers(labels: readonly string[], signal: AbortSignal): Promise<Dockerode.ContainerInfo[]> {
    const filters = { label: [`${NODE_ID_LABEL}=${this.options.nodeId}`, ...labels] };
    return callEngine(this.options.docker.listContainers({ all: true, filters, abortSignal: signal }), signal);
  }
}

/** dockerd's `--label key=value` list as a map; a later value for a key wins, as in moby. */
function engineLabels(labels: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    labels.flatMap((label) => {
      const equals = label.indexOf('=');
      return equals === -1 ? [] : [[label.slice(0, equals), label.slice(equals + 1)]];
    }),
  );
}

/** The engine's plugins by type, sorted and without repeats. */
function plugins(byType: Record<string, string[] | null>): PluginDescription[] {
  return reportedPluginTypes.flatMap((type) => [...new Set(byType[type] ?? [])].sort().map((name) => ({ type, name })));
}

function genericResource(resource: EngineGenericResource): GenericResource[] {
  const { NamedResourceSpec: named, DiscreteResourceSpec: discrete } = resource;
  if (named !== undefined) return [{ namedResourceSpec: { kind: named.Kind, value: named.Value } }];
  if (discrete !== undefined) return [{ discreteResourceSpec: { kind: discrete.Kind, value: BigInt(discrete.Value) } }];
  return [];
}
