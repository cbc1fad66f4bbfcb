import { ErrorCode, errors, hasCode } from '@shoal/errors';
import { TaskState, taskStateName, type GenericResource, type Node, type Task } from '@shoal/proto';
import { noSuitableNode, Pipeline } from './filters.js';
import { NodeInfo, serviceVersionKey } from './node-info.js';
import { SpreadTree } from './spread-tree.js';

/** The status message of a task the scheduler placed (swarmkit's wording). */
export const ASSIGNED_MESSAGE = 'scheduler assigned task to node';
/** The status message of a task created on its node (a global service's) that the scheduler found fits there. */
export const PREASSIGNED_MESSAGE = 'scheduler confirmed task can run on preassigned node';

/** A decision to move a PENDING task to ASSIGNED on a node. */
export interface Assignment {
  readonly task: Task;
  readonly nodeId: string;
  /** The generic resources (named GPUs, counts of other kinds) the task holds there; they belong in `Task.assignedGenericResources`. */
  readonly assignedGenericResources: readonly GenericResource[];
  /** {@link ASSIGNED_MESSAGE}, or {@link PREASSIGNED_MESSAGE} for a task that came with its node. */
  readonly message: string;
}

/** A task that no node can take now; it stays PENDING with `reason` as its status error. */
export interface Unschedulable {
  readonly task: Task;
  /**
   * swarmkit's text: `no suitable node (…)` saying how many nodes each filter rejected, or for a
   * task that came with its node, what that node lacks (`insufficient resources on 1 node`).
   */
  readonly reason: string;
}

/** What {@link Scheduler.schedule} decided. Every task passed in is in exactly one of the two lists. */
export interface ScheduleResult {
  /**
   * In the order they were decided: tasks that came with their node first, then each group in order
   * of first appearance, its tasks in input order.
   */
  readonly assigned: Assignment[];
  readonly unschedulable: Unschedulable[];
}

export interface SchedulerOptions {
  /** The clock of failure tracking, in milliseconds; `Date.now` unless a test fakes it. */
  readonly now?: () => number;
}

/** Tasks of one service and spec version, which all go through the same pipeline. */
interface TaskGroup {
  readonly tasks: Task[];
  /** Set up for the group's first task; a string instead when its constraints do not parse, saying why. */
  readonly pipeline: Pipeline | string;
}

/**
 * Shoal's placement core: swarmkit's scheduler without the store. It keeps the bookkeeping of every
 * node and of the tasks placed on them, as the caller reports them (`addNode`…, `addTask`…), and
 * decides where PENDING tasks go (`schedule`). It does no I/O and keeps no timers: writing the
 * decisions back and debouncing store events are the caller's.
 *
 * Decisions follow swarmkit: the filter pipeline (node ready and active; resources; constraints;
 * platform; host-mode ports; max replicas per node), then the placement preferences as a spread
 * tree, then the node with the fewest tasks of the service, then the fewest tasks overall, with
 * nodes where the service version recently failed {@link MAX_RECENT_FAILURES} times last. Ties go to
 * the smaller node ID, so the same calls always give the same placements.
 */
export class Scheduler {
  private readonly now: () => number;
  private readonly nodes = new Map<string, NodeInfo>();
  /** The node of every task accounted. */
  private readonly nodeOfTask = new Map<string, string>();
  /** Tasks accounted on nodes not known yet, taken in when the node is added. */
  private readonly tasksOnUnknownNodes = new Map<string, Map<string, Task>>();

  constructor(options: SchedulerOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  /** Starts tracking a node, with the tasks already accounted on it. Throws ALREADY_EXISTS if it is tracked. */
  addNode(node: Node): void {
    if (this.nodes.has(node.id)) throw errors.alreadyExists(`node ${node.id} is already known to the scheduler`, { nodeId: node.id });
    const info = new NodeInfo(node);
    this.nodes.set(node.id, info);
    const waiting = this.tasksOnUnknownNodes.get(node.id);
    if (waiting === undefined) return;
    this.tasksOnUnknownNodes.delete(node.id);
    for (const task of waiting.values()) info.addTask(task);
  }

  /** Takes a new version of a tracked node (status, availability, labels, resources). Throws NOT_FOUND for an unknown node. */
  updateNode(node: Node): void {
    this.tracked(node.id).replaceNode(node);
  }

  /**
   * Stops tracking a node and forgets the tasks accounted on it: nothing is placed on a removed node,
   * so what they hold there no longer matters. Throws NOT_FOUND for an unknown node.
   */
  removeNode(nodeId: string): void {
    for (const taskId of this.tracked(nodeId).taskIds()) this.nodeOfTask.delete(taskId);
    this.nodes.delete(nodeId);
  }

  /**
   * Accounts a task that holds a place on its node (`nodeId` set; ASSIGNED up to RUNNING): its
   * reservations, host-mode ports and generic resources, and, while its desired state is at most
   * COMPLETE, its weight in spreading and in max-replicas limits. Adding it again takes in its new
   * desired state. A task on a node not known yet counts once the node is added. Throws
   * INVALID_ARGUMENT for a task without a node.
   */
  addTask(task: Task): void {
    if (task.nodeId === '') throw errors.invalidArgument(`task ${task.id} has no node to be accounted on`, { taskId: task.id });
    const previousNodeId = this.nodeOfTask.get(task.id);
    if (previousNodeId !== undefined && previousNodeId !== task.nodeId) this.removeTask(task.id);
    this.nodeOfTask.set(task.id, task.nodeId);
    const info = this.nodes.get(task.nodeId);
    if (info !== undefined) {
      info.addTask(task);
      return;
    }
    let waiting = this.tasksOnUnknownNodes.get(task.nodeId);
    if (waiting === undefined) {
      waiting = new Map();
      this.tasksOnUnknownNodes.set(task.nodeId, waiting);
    }
    waiting.set(task.id, task);
  }

  /**
   * Gives back everything a task held on its node, when it stopped holding it (it ended, was
   * deleted, or a decision for it could not be written). Returns false if the task was not accounted.
   */
  removeTask(taskId: string): boolean {
    const nodeId = this.nodeOfTask.get(taskId);
    if (nodeId === undefined) return false;
    this.nodeOfTask.delete(taskId);
    const info = this.nodes.get(nodeId);
    if (info !== undefined) return info.removeTask(taskId);
    const waiting = this.tasksOnUnknownNodes.get(nodeId);
    waiting?.delete(taskId);
    if (waiting?.size === 0) this.tasksOnUnknownNodes.delete(nodeId);
    return true;
  }

  /**
   * Records that a task failed or was rejected on its node, so that the node goes last for the
   * task's service version once that happened {@link MAX_RECENT_FAILURES} times within
   * {@link FAILURE_WINDOW_MS}. swarmkit records no failures of tasks that came with their node (the
   * scheduler did not choose it); the caller should skip those too. Failures on unknown nodes are
   * ignored. Throws INVALID_ARGUMENT for a task without a node.
   */
  recordTaskFailure(task: Task): void {
    if (task.nodeId === '') throw errors.invalidArgument(`task ${task.id} has no node to have failed on`, { taskId: task.id });
    this.nodes.get(task.nodeId)?.recordFailure(serviceVersionKey(task), this.now());
  }

  /**
   * Decides where PENDING tasks go and accounts each placed one on its node at once (call
   * {@link removeTask} if the decision cannot be written). Tasks of the same service and spec version
   * are placed together, in one spread; a task without a spec version is placed alone. Tasks that
   * came with their node (`nodeId` set) are only checked against it, before any other.
   *
   * Throws INVALID_ARGUMENT, before deciding anything, if a task appears twice, is already accounted,
   * or is not meant to run (desired state beyond COMPLETE).
   */
  schedule(pending: readonly Task[]): ScheduleResult {
    const groups = this.groupTasks(pending);
    const result: ScheduleResult = { assigned: [], unschedulable: [] };
    for (const group of groups) {
      for (const task of group.tasks) if (task.nodeId !== '') this.confirmPreassigned(task, group.pipeline, result);
    }
    for (const group of groups) this.placeGroup(group, result);
    return result;
  }

  private groupTasks(pending: readonly Task[]): TaskGroup[] {
    const groups: TaskGroup[] = [];
    const groupOfVersion = new Map<string, TaskGroup>();
    const seen = new Set<string>();
    for (const task of pending) {
      this.checkSchedulable(task, seen);
      const key = task.specVersion === undefined ? undefined : serviceVersionKey(task);
      let group = key === undefined ? undefined : groupOfVersion.get(key);
      if (group === undefined) {
        group = { tasks: [], pipeline: pipelineFor(task) };
        groups.push(group);
        if (key !== undefined) groupOfVersion.set(key, group);
      }
      group.tasks.push(task);
    }
    return groups;
  }

  private checkSchedulable(task: Task, seen: Set<string>): void {
    const details = { taskId: task.id };
    if (seen.has(task.id)) throw errors.invalidArgument(`task ${task.id} is pending twice`, details);
    seen.add(task.id);
    const placedOn = this.nodeOfTask.get(task.id);
    if (placedOn !== undefined) throw errors.invalidArgument(`task ${task.id} is already placed on node ${placedOn}`, details);
    if (task.desiredState > TaskState.COMPLETE) {
      throw errors.invalidArgument(`task ${task.id} is desired ${taskStateName(task.desiredState)}, so it is not to be placed`, details);
    }
  }

  /** Checks a task that came with its node (a global service's) against that node alone, as swarmkit's `taskFitNode`. */
  private confirmPreassigned(task: Task, pipeline: Pipeline | string, result: ScheduleResult): void {
    const node = this.nodes.get(task.nodeId);
    if (typeof pipeline === 'string') {
      result.unschedulable.push({ task, reason: pipeline });
    } else if (node === undefined) {
      result.unschedulable.push({ task, reason: `node ${task.nodeId} is not known to the scheduler` });
    } else if (!pipeline.accepts(node)) {
      result.unschedulable.push({ task, reason: pipeline.explainRejections([node]) });
    } else {
      result.assigned.push({ task, nodeId: node.id, assignedGenericResources: this.account(task, node), message: PREASSIGNED_MESSAGE });
    }
  }

  /** Spreads the group's tasks that have no node yet; those no node can take get swarmkit's `no suitable node (…)`. */
  private placeGroup(group: TaskGroup, result: ScheduleResult): void {
    const tasks = group.tasks.filter((task) => task.nodeId === '');
    const [first] = tasks;
    if (first === undefined) return;
    const { pipeline } = group;
    if (typeof pipeline === 'string') {
      for (const task of tasks) result.unschedulable.push({ task, reason: pipeline });
      return;
    }
    const failureKey = serviceVersionKey(first);
    const now = this.now();
    const tree = new SpreadTree(this.nodes.values(), {
      serviceId: first.serviceId,
      tasks: tasks.length,
      spreadDescriptors: (first.spec?.placement?.preferences ?? []).flatMap((preference) => preference.spread?.spreadDescriptor ?? []),
      accepts: (node) => pipeline.accepts(node),
      stillAccepts: (node) => pipeline.stillAccepts(node),
      recentFailures: (node) => node.recentFailures(failureKey, now),
    });
    let placed = 0;
    for (const task of tasks) {
      let held: readonly GenericResource[] = [];
      const node = tree.place((chosen) => {
        held = this.account(task, chosen);
      });
      if (node === undefined) break;
      result.assigned.push({ task, nodeId: node.id, assignedGenericResources: held, message: ASSIGNED_MESSAGE });
      placed++;
    }
    if (placed === tasks.length) return;
    const reason = noSuitableNode(pipeline.explainRejections(this.nodes.values()));
    for (const task of tasks.slice(placed)) result.unschedulable.push({ task, reason });
  }

  private account(task: Task, node: NodeInfo): readonly GenericResource[] {
    this.nodeOfTask.set(task.id, node.id);
    return node.addTask(task);
  }

  private tracked(nodeId: string): NodeInfo {
    const info = this.nodes.get(nodeId);
    if (info === undefined) throw errors.notFound(`node ${nodeId} is not known to the scheduler`, { nodeId });
    return info;
  }
}

/** The group's pipeline, or the reason its tasks cannot be placed when a constraint is malformed. */
function pipelineFor(task: Task): Pipeline | string {
  try {
    return new Pipeline(task);
  } catch (err) {
    if (!hasCode(err, ErrorCode.InvalidArgument)) throw err;
    return `invalid placement constraint: ${err.message}`;
  }
}
