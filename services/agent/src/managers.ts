import type { WeightedPeer } from '@shoal/proto';

/** The weight of a manager nobody has said anything about (swarmkit's `remotes.DefaultObservationWeight`). */
const DEFAULT_WEIGHT = 10;

/**
 * The managers an agent may connect to, with the weights dispatchers give them (swarmkit's
 * `remotes`). The first connection goes to the preferred manager (the one the node joined through,
 * or was last connected to); after a failure the next one is a weighted random pick among the others,
 * so an agent whose dispatcher went away reconnects elsewhere.
 */
export class ManagerSet {
  #weights: Map<string, number>;
  readonly #random: () => number;

  constructor(addresses: readonly string[], random: () => number = Math.random) {
    this.#weights = new Map(addresses.map((address) => [address, DEFAULT_WEIGHT]));
    this.#random = random;
  }

  /** Every known manager, the preferred one first. */
  get addresses(): string[] {
    return [...this.#weights.keys()];
  }

  /**
   * The manager to connect to: the preferred one, or after a failure at `failed`, a weighted random
   * pick among the others (the same one again only when it is the only one known).
   */
  select(failed?: string): string {
    const candidates = [...this.#weights].filter(([address]) => address !== failed);
    if (candidates.length === 0) return failed ?? '';
    if (failed === undefined) return candidates[0]![0];
    const total = candidates.reduce((sum, [, weight]) => sum + weight, 0);
    let point = this.#random() * total;
    for (const [address, weight] of candidates) {
      point -= weight;
      if (point < 0) return address;
    }
    return candidates[candidates.length - 1]![0];
  }

  /** Makes `address` the preferred manager (the one this agent is connected to): reconnects and restarts try it first. */
  prefer(address: string): void {
    const weight = this.#weights.get(address) ?? DEFAULT_WEIGHT;
    this.#weights = new Map([[address, weight], ...[...this.#weights].filter(([other]) => other !== address)]);
  }

  /**
   * Takes the manager list a dispatcher sent, keeping `connected` (the manager this agent reached,
   * first, so that a restart reconnects to it) even if the list names it by another address. An
   * empty list changes nothing. Returns whether the set changed.
   */
  replace(peers: readonly WeightedPeer[], connected: string): boolean {
    const reported = peers.filter((peer) => (peer.peer?.addr ?? '') !== '');
    if (reported.length === 0) return false;
    const next = new Map<string, number>([[connected, this.#weights.get(connected) ?? DEFAULT_WEIGHT]]);
    for (const { peer, weight } of reported) {
      const address = peer!.addr;
      next.set(address, Math.max(1, Number(weight) || DEFAULT_WEIGHT));
    }
    const before = [...this.#weights];
    const changed = next.size !== before.length || [...next].some(([address, weight], index) => before[index]?.[0] !== address || before[index][1] !== weight);
    this.#weights = next;
    return changed;
  }
}
