import { labelAttribute, type NodeAttribute } from '@shoal/constraints';
import { MinHeap } from './min-heap.js';
import { MAX_RECENT_FAILURES, type NodeInfo } from './node-info.js';

/** A node that passed the pipeline for the group, with the figures it is ranked by. */
interface Candidate {
  readonly node: NodeInfo;
  /** Recent failures of the group's service version here when they reach the limit, else 0: such nodes go last, worst last. */
  readonly failurePenalty: number;
  /** Active tasks of the group's service on the node; only the group's own placements change it while it is scheduled. */
  serviceTasks: number;
}

/**
 * swarmkit's `nodeLess`, made total by the node ID: whether a node with these figures goes before
 * `other`. Fewest tasks of the service first, then fewest tasks overall.
 */
function ranksBefore(failurePenalty: number, serviceTasks: number, node: NodeInfo, other: Candidate): boolean {
  if (failurePenalty !== other.failurePenalty) return failurePenalty < other.failurePenalty;
  if (serviceTasks !== other.serviceTasks) return serviceTasks < other.serviceTasks;
  if (node.activeTasks !== other.node.activeTasks) return node.activeTasks < other.node.activeTasks;
  return node.id < other.node.id;
}

const candidateBefore = (a: Candidate, b: Candidate) => ranksBefore(a.failurePenalty, a.serviceTasks, a.node, b);
const candidateAfter = (a: Candidate, b: Candidate) => candidateBefore(b, a);

/** One value of a spread descriptor (`zone=east`), holding the nodes with that value. */
interface Branch {
  readonly value: string;
  /** Active tasks of the service on every node of the branch, whether or not it takes the group. */
  serviceTasks: number;
  readonly subtree: Subtree;
}

/** The branch with the fewest tasks of the service comes first; ties go to the smaller value. */
function branchBefore(a: Branch, b: Branch): boolean {
  if (a.serviceTasks !== b.serviceTasks) return a.serviceTasks < b.serviceTasks;
  return a.value < b.value;
}

type Subtree = { readonly kind: 'nodes'; readonly candidates: MinHeap<Candidate> } | { readonly kind: 'spread'; readonly branches: MinHeap<Branch> };

/** The tree while nodes are sorted into it: maps for branches, and the best candidates so far, worst on top. */
interface Draft {
  serviceTasks: number;
  readonly branches: Map<string, Draft>;
  readonly best: MinHeap<Candidate>;
}

const newDraft = (): Draft => ({ serviceTasks: 0, branches: new Map(), best: new MinHeap(candidateAfter) });

/** What {@link SpreadTree} needs to know about the group it places. */
export interface SpreadTreeOptions {
  readonly serviceId: string;
  /** How many tasks the group has: no leaf needs more candidates than that. */
  readonly tasks: number;
  /**
   * The spread descriptors of the placement preferences, outermost first. Only `node.labels.<name>`
   * and `engine.labels.<name>` spread (a node without the label goes to the `""` branch); swarmkit
   * ignores any other descriptor, and so does this.
   */
  readonly spreadDescriptors: readonly string[];
  /** Whether the node passes the group's pipeline. */
  readonly accepts: (node: NodeInfo) => boolean;
  /** Whether a node that passed still does after a placement on it. */
  readonly stillAccepts: (node: NodeInfo) => boolean;
  /** The node's recent failures of the group's service version. */
  readonly recentFailures: (node: NodeInfo) => number;
}

/**
 * The decision tree for one group of identical tasks (swarmkit's `decisionTree`): one level per
 * placement preference, each splitting the nodes by the value of its label, and at the leaves the
 * nodes that pass the pipeline. Each task goes down the branch with the fewest tasks of the service
 * at every level, then to the best node of the leaf. A branch whose nodes can take no more drops
 * out, and placement stops when no branch is left, so it always terminates.
 *
 * Branches and nodes sit in heaps; after a placement only the chosen branches and node move, so a
 * task costs O(levels × log n) rather than a sort of all nodes. A leaf keeps only its best
 * candidates, as many as the group has tasks (swarmkit's bounded heap): every one of them can take
 * at least one task, so the others could never come first, and a group of one task costs a single
 * pass over the nodes.
 */
export class SpreadTree {
  private readonly root: Subtree;

  constructor(
    nodes: Iterable<NodeInfo>,
    private readonly options: SpreadTreeOptions,
  ) {
    const levels = options.spreadDescriptors.map(labelAttribute).filter((level): level is NodeAttribute => level !== undefined);
    const draft = newDraft();
    for (const node of nodes) {
      const serviceTasks = node.activeTasksOf(options.serviceId);
      let leaf = draft;
      for (const level of levels) {
        const value = level(node.node);
        let branch = leaf.branches.get(value);
        if (branch === undefined) {
          branch = newDraft();
          leaf.branches.set(value, branch);
        }
        branch.serviceTasks += serviceTasks;
        leaf = branch;
      }
      if (!options.accepts(node)) continue;
      const failures = options.recentFailures(node);
      const failurePenalty = failures >= MAX_RECENT_FAILURES ? failures : 0;
      const worst = leaf.best.peek();
      if (leaf.best.size < options.tasks) leaf.best.push({ node, failurePenalty, serviceTasks });
      else if (worst !== undefined && ranksBefore(failurePenalty, serviceTasks, node, worst)) leaf.best.replaceTop({ node, failurePenalty, serviceTasks });
    }
    this.root = finish(draft, levels.length);
  }

  /**
   * Places one task: picks the node, lets `assign` account the task on it, and ranks the node again
   * (or drops it if the pipeline now refuses it). Returns the node, or undefined if no node can take
   * the task.
   */
  place(assign: (node: NodeInfo) => void): NodeInfo | undefined {
    return this.placeIn(this.root, assign);
  }

  private placeIn(subtree: Subtree, assign: (node: NodeInfo) => void): NodeInfo | undefined {
    if (subtree.kind === 'nodes') {
      const best = subtree.candidates.peek();
      if (best === undefined) return undefined;
      assign(best.node);
      best.serviceTasks++;
      if (this.options.stillAccepts(best.node)) subtree.candidates.topIncreased();
      else subtree.candidates.pop();
      return best.node;
    }
    for (let branch = subtree.branches.peek(); branch !== undefined; branch = subtree.branches.peek()) {
      const node = this.placeIn(branch.subtree, assign);
      if (node !== undefined) {
        branch.serviceTasks++;
        subtree.branches.topIncreased();
        return node;
      }
      subtree.branches.pop();
    }
    return undefined;
  }
}

function finish(draft: Draft, levelsBelow: number): Subtree {
  if (levelsBelow === 0) return { kind: 'nodes', candidates: new MinHeap(candidateBefore, draft.best.takeAll()) };
  const branches = [...draft.branches].map(
    ([value, branch]): Branch => ({ value, serviceTasks: branch.serviceTasks, subtree: finish(branch, levelsBelow - 1) }),
  );
  return { kind: 'spread', branches: new MinHeap(branchBefore, branches) };
}
