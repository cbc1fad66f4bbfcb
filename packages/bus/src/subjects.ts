/**
 * NATS subjects Shoal publishes on, named `shoal.v1.<producer>.<noun>[.<id>]`. NATS carries only
 * signals that may be lost (nudges, membership, log streams): whoever misses one re-reads the store.
 */
export const subjects = {
  /**
   * Published by raft-store after it applies a commit, so that watchers re-read sooner than their
   * next poll. A hint only: the payload may be empty and the store is the truth.
   */
  storeCommit: 'shoal.v1.store.commit',
  /**
   * Published by the api for `docker service logs` / `docker task logs`: a {@link LogSubscription}
   * asking the nodes that ran the selected tasks to publish their log lines on {@link logStream};
   * then, when a following reader goes away, a {@link LogSubscriptionEnd}.
   */
  logSubscribe: 'shoal.v1.api.logs.subscribe',
  /** Where the nodes answer one log subscription with {@link LogPublication}s. */
  logStream: (subscriptionId: string) => `shoal.v1.node.logs.${subscriptionId}`,
  /**
   * Where scheduler instances announce themselves (JSON `{ instanceId, at }`, about once a second,
   * and `{ instanceId, at, leaving: true }` when one stops), so that the live instances can share the
   * services between them. An instance not heard from for three heartbeats counts as gone.
   */
  schedulerMembers: 'shoal.v1.scheduler.members',
} as const;

/** What a log reader asks for (swarmkit's `SubscribeLogsRequest`, as JSON). */
export interface LogSubscription {
  readonly id: string;
  /** Nodes expected to answer: those the selected tasks were assigned to. */
  readonly nodeIds: readonly string[];
  readonly serviceIds: readonly string[];
  readonly taskIds: readonly string[];
  readonly follow: boolean;
  /** Only lines written at or after this time (ms since the epoch). */
  readonly sinceMs?: number;
  /** Only the last `tail` lines of each task (before following). */
  readonly tail?: number;
  readonly stdout: boolean;
  readonly stderr: boolean;
}

/** What the api publishes on `logSubscribe` when the reader of a subscription goes away, so following nodes stop. */
export interface LogSubscriptionEnd {
  readonly id: string;
  readonly close: true;
}

/** One message of a node on a log stream: a line, or the end of what it had (not following). */
export type LogPublication =
  | {
      readonly nodeId: string;
      readonly serviceId: string;
      readonly taskId: string;
      readonly stream: 'stdout' | 'stderr';
      /** RFC 3339 with nanoseconds, as the engine timestamps the line. */
      readonly time: string;
      /** The line without its newline. */
      readonly line: string;
    }
  | { readonly nodeId: string; readonly done: true; readonly error?: string };
