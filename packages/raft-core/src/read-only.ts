/** A read request waiting for a quorum to confirm the leader is still the leader. */
export interface PendingRead {
  /** The commit index when the request arrived: the read may be served once the state machine has applied it. */
  readonly index: bigint;
  /** Who asked: this member or the follower that forwarded the request. */
  readonly from: bigint;
  readonly context: Buffer;
  readonly acks: Set<bigint>;
}

/**
 * The leader's queue of ReadIndex requests (§6.4). Each request is confirmed by the heartbeat round
 * that carries its context; a quorum of answers to a later request also confirms every earlier one,
 * since the leader was still leader after those arrived. Requests are matched by context, which the
 * caller keeps unique.
 */
export class ReadOnlyQueue {
  private readonly pending = new Map<string, PendingRead>();
  private order: string[] = [];

  /** Queues a request; a context already queued is ignored (a duplicate of the same request). */
  add(index: bigint, from: bigint, context: Buffer): void {
    const key = contextKey(context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, from, context, acks: new Set() });
    this.order.push(key);
  }

  /** Records that `member` answered the heartbeat carrying `context`; returns who has, if the request is pending. */
  acknowledge(member: bigint, context: Buffer): ReadonlySet<bigint> | undefined {
    const request = this.pending.get(contextKey(context));
    request?.acks.add(member);
    return request?.acks;
  }

  /** Removes and returns the request with `context` and every request queued before it. */
  confirmThrough(context: Buffer): PendingRead[] {
    const position = this.order.indexOf(contextKey(context));
    if (position < 0) return [];
    const confirmed = this.order.slice(0, position + 1).map((key) => this.pending.get(key) as PendingRead);
    for (const key of this.order.slice(0, position + 1)) this.pending.delete(key);
    this.order = this.order.slice(position + 1);
    return confirmed;
  }

  /** The context of the latest request, carried by every heartbeat so one round can confirm them all. */
  latestContext(): Buffer | undefined {
    const key = this.order[this.order.length - 1];
    return key === undefined ? undefined : (this.pending.get(key) as PendingRead).context;
  }
}

function contextKey(context: Buffer): string {
  return context.toString('base64');
}
