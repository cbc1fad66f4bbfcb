import type { Platform, Task } from '@shoal/proto';
import { parseConstraints } from '@shoal/constraints';
import { hostPortsOf, reservationsOf, type NodeInfo } from './node-info.js';

/** Tells whether a node can take one more task of the group a filter was set up for. */
type NodeCheck = (node: NodeInfo) => boolean;

/**
 * One stage of the pipeline (swarmkit's `Filter`). Setting it up for a task yields the check it
 * applies to nodes, or undefined when the filter has nothing to say about that task.
 */
interface Filter {
  checkFor(task: Task): NodeCheck | undefined;
  /** Whether placing a task on a node can change the filter's verdict on it (what the node holds, not what it is). */
  readonly dependsOnPlacements: boolean;
  /** What the filter's rejections mean, worded exactly as swarmkit words them. */
  explain(rejectedNodes: number): string;
}

const onNodes = (count: number) => (count === 1 ? 'on 1 node' : `on ${count} nodes`);

const readyFilter: Filter = {
  dependsOnPlacements: false,
  checkFor: () => (node) => node.isReady,
  explain: (count) => (count === 1 ? '1 node not available for new tasks' : `${count} nodes not available for new tasks`),
};

const resourceFilter: Filter = {
  dependsOnPlacements: true,
  checkFor(task) {
    const { nanoCpus, memoryBytes, generic } = reservationsOf(task);
    if (nanoCpus === 0n && memoryBytes === 0n && generic.length === 0) return undefined;
    return (node) =>
      nanoCpus <= node.availableNanoCpus &&
      memoryBytes <= node.availableMemoryBytes &&
      (generic.length === 0 || node.genericResources.hasEnough(generic));
  },
  explain: (count) => `insufficient resources ${onNodes(count)}`,
};

const constraintFilter: Filter = {
  dependsOnPlacements: false,
  checkFor(task) {
    const expressions = task.spec?.placement?.constraints ?? [];
    if (expressions.length === 0) return undefined;
    const constraints = parseConstraints(expressions);
    return (node) => constraints.every((constraint) => constraint.matches(node.node));
  },
  explain: (count) => `scheduling constraints not satisfied ${onNodes(count)}`,
};

/** Engines report x86_64 and aarch64 where images say amd64 and arm64. */
const normalizeArchitecture = (architecture: string) =>
  architecture === 'x86_64' ? 'amd64' : architecture === 'aarch64' ? 'arm64' : architecture;

const platformFilter: Filter = {
  dependsOnPlacements: false,
  checkFor(task) {
    const platforms = task.spec?.placement?.platforms ?? [];
    if (platforms.length === 0) return undefined;
    const wanted = platforms.map((platform) => ({ ...platform, architecture: normalizeArchitecture(platform.architecture) }));
    return (node) => {
      const platform: Platform | undefined = node.node.description?.platform;
      if (platform === undefined) return false;
      const architecture = normalizeArchitecture(platform.architecture);
      // An empty field of the image's platform matches any node.
      return wanted.some(
        (image) => (image.architecture === '' || image.architecture === architecture) && (image.os === '' || image.os === platform.os),
      );
    };
  },
  explain: (count) => `unsupported platform ${onNodes(count)}`,
};

const hostPortFilter: Filter = {
  dependsOnPlacements: true,
  checkFor(task) {
    const ports = hostPortsOf(task);
    if (ports.length === 0) return undefined;
    return (node) => !ports.some((port) => node.publishes(port));
  },
  explain: (count) => `host-mode port already in use ${onNodes(count)}`,
};

const maxReplicasFilter: Filter = {
  dependsOnPlacements: true,
  checkFor(task) {
    const maxReplicas = task.spec?.placement?.maxReplicas ?? 0n;
    if (maxReplicas === 0n) return undefined;
    const limit = maxReplicas > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(maxReplicas);
    const { serviceId } = task;
    return (node) => node.activeTasksOf(serviceId) < limit;
  },
  // swarmkit's wording, which names no count.
  explain: () => 'max replicas per node limit exceed',
};

/**
 * swarmkit's filters in swarmkit's order (manager/scheduler/pipeline.go), less the two Shoal has no
 * use for: plugins (Shoal's agents run no volume, network or log plugins) and CSI volumes.
 */
const filters: readonly Filter[] = [readyFilter, resourceFilter, constraintFilter, platformFilter, hostPortFilter, maxReplicasFilter];

/**
 * The filters set up for one group of identical tasks (same service and spec version). A node
 * passes when every filter that applies to the task accepts it; the first refusal decides.
 */
export class Pipeline {
  private readonly checks: readonly NodeCheck[];
  private readonly enabled: readonly Filter[];
  /** The checks whose verdict a placement on the node can change. */
  private readonly placementChecks: readonly NodeCheck[];

  /** Throws an INVALID_ARGUMENT ShoalError if the task has a malformed placement constraint. */
  constructor(task: Task) {
    const checks: NodeCheck[] = [];
    const enabled: Filter[] = [];
    for (const filter of filters) {
      const check = filter.checkFor(task);
      if (check === undefined) continue;
      checks.push(check);
      enabled.push(filter);
    }
    this.checks = checks;
    this.enabled = enabled;
    this.placementChecks = checks.filter((_, index) => enabled[index]?.dependsOnPlacements === true);
  }

  /** Whether `node` can take one more task of the group now. */
  accepts(node: NodeInfo): boolean {
    for (const check of this.checks) if (!check(node)) return false;
    return true;
  }

  /** Whether a node that {@link accepts} the group still does after tasks were placed on it: only what placements change is checked again. */
  stillAccepts(node: NodeInfo): boolean {
    for (const check of this.placementChecks) if (!check(node)) return false;
    return true;
  }

  /**
   * Why `nodes` refuse the task, as swarmkit's `Pipeline.Explain` words it: for each filter, how many
   * nodes it was the first to reject, most rejections first (ties in pipeline order), joined by "; ";
   * `""` when no node refuses.
   */
  explainRejections(nodes: Iterable<NodeInfo>): string {
    const rejections = this.checks.map(() => 0);
    for (const node of nodes) {
      const failed = this.checks.findIndex((check) => !check(node));
      if (failed >= 0) rejections[failed] = (rejections[failed] ?? 0) + 1;
    }
    return this.enabled
      .map((filter, index) => ({ filter, count: rejections[index] ?? 0 }))
      .filter(({ count }) => count > 0)
      .sort((a, b) => b.count - a.count)
      .map(({ filter, count }) => filter.explain(count))
      .join('; ');
  }
}

/** The reason an unplaceable task stays PENDING (swarmkit's `Status.Err`), from {@link Pipeline.explainRejections}. */
export function noSuitableNode(explanation: string): string {
  return explanation === '' ? 'no suitable node' : `no suitable node (${explanation})`;
}
