import { ErrorCode, errors, hasCode } from '@shoal/errors';
import type { Commit, ReadTx } from '@shoal/store';
import type { ClusterState, CommitInput } from '@shoal/store-client';

/** How one component's writes have fared. */
export interface WriteTally {
  /** Commits that landed. */
  committed: number;
  /** Commits refused with CONFLICT: another writer got to an object first, or the lease moved on. */
  conflicts: number;
}

/**
 * One component's connection to the cluster state. It tallies the component's writes, and a
 * simulated crash cuts it: from then on nothing the component commits reaches the store
 * (UNAVAILABLE) and it hears of no further commit. A commit sent before the cut still lands whole,
 * as a request already on the wire would, so a crash falls between two writes, never inside one.
 */
export class ComponentLink implements ClusterState {
  readonly #inner: ClusterState;
  readonly #tally: WriteTally;
  #severed = false;

  /** @param tally Counted into as the component writes (shared by the instances of one component). */
  constructor(inner: ClusterState, tally: WriteTally) {
    this.#inner = inner;
    this.#tally = tally;
  }

  get version(): bigint {
    return this.#inner.version;
  }

  view<R>(read: (tx: ReadTx) => R): R {
    return this.#inner.view(read);
  }

  async commit(write: CommitInput): Promise<bigint> {
    if (this.#severed) throw errors.unavailable('the component crashed: its write never reached the store');
    try {
      const version = await this.#inner.commit(write);
      this.#tally.committed++;
      return version;
    } catch (err) {
      if (hasCode(err, ErrorCode.Conflict)) this.#tally.conflicts++;
      throw err;
    }
  }

  subscribe(listener: (commit: Commit) => void): () => void {
    return this.#inner.subscribe((commit) => {
      if (!this.#severed) listener(commit);
    });
  }

  /** Whether the connection was cut. */
  get severed(): boolean {
    return this.#severed;
  }

  /** Cuts the connection for good. */
  sever(): void {
    this.#severed = true;
  }
}
