import { MemoryStore, type MemoryStoreOptions, type Transaction } from '@shoal/store';
import type { Consensus } from './consensus.js';

/**
 * A {@link Consensus} of one replica and no Raft: a proposal is applied to the local store at once,
 * at the next version, and every read is already linearizable because nobody else can write. It is
 * a legitimate single-node mode (unit tests of the Store API and of its clients, and a one-off
 * single-manager process that needs no durability); a cluster uses the Raft-backed replica.
 *
 * The store and {@link now} share one clock: `options.clock`, or the system clock.
 */
export class LocalConsensus implements Consensus {
  readonly store: MemoryStore;
  readonly #clock: () => Date;

  constructor(options: MemoryStoreOptions = {}) {
    this.#clock = options.clock ?? (() => new Date());
    this.store = new MemoryStore({ ...options, clock: this.#clock });
  }

  async propose(transaction: Transaction): Promise<bigint> {
    const version = this.store.version + 1n;
    this.store.apply(transaction, version);
    return version;
  }

  /** Resolves at once: a lone replica has applied every commit there is. */
  async readBarrier(): Promise<void> {}

  now(): Date {
    return this.#clock();
  }
}
