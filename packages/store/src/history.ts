import { errors } from '@shoal/errors';
import { RingQueue } from './ring-queue.js';
import type { Commit } from './watch.js';

/** The most recent committed transactions, kept so that a watch can resume from a recent version. */
export class CommitHistory {
  readonly #commits = new RingQueue<Commit>();
  /** Every change at or below this version is gone from the history. */
  #compactedThrough: bigint;

  /**
   * @param retained How many commits to keep.
   * @param version The store's version now: nothing before it was ever in this history.
   */
  constructor(
    private readonly retained: number,
    version: bigint,
  ) {
    this.#compactedThrough = version;
  }

  append(commit: Commit): void {
    this.#commits.push(commit);
    while (this.#commits.length > this.retained) {
      const dropped = this.#commits.shift();
      if (dropped !== undefined) this.#compactedThrough = dropped.version;
    }
  }

  /** Forgets everything: the store now starts at `version` (it was restored from a snapshot). */
  reset(version: bigint): void {
    this.#commits.clear();
    this.#compactedThrough = version;
  }

  /**
   * Returns the commits after `version`, oldest first. Throws COMPACTED if some of them are no
   * longer kept: the caller must then start over from a snapshot.
   */
  since(version: bigint): Commit[] {
    if (version < this.#compactedThrough) {
      throw errors.compacted(
        `cannot watch from version ${version}: changes up to version ${this.#compactedThrough} were compacted; resync from a snapshot`,
        { fromVersion: version, compactedThrough: this.#compactedThrough },
      );
    }
    let low = 0;
    let high = this.#commits.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.#commits.at(middle) as Commit).version <= version) low = middle + 1;
      else high = middle;
    }
    return this.#commits.slice(low);
  }
}
