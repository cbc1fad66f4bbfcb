import { errors } from '@shoal/errors';
import type { Storage } from './storage.js';

/**
 * Where randomized election timeouts come from. `int(min, max)` returns an integer in [min, max], both
 * ends included. `SeededRandom` from the test kit fits, so a simulation replays from its seed.
 */
export interface RandomSource {
  int(min: number, max: number): number;
}

/** Everything a {@link RawNode} needs. Only `id` and `storage` are required. */
export interface RaftConfig {
  /** This member's raft ID: a non-zero uint64 (random in swarmkit, never reused once removed). */
  id: bigint;
  /** The caller's persisted log, hard state and latest snapshot; the core only reads it. */
  storage: Storage;
  /**
   * Ticks a follower waits without hearing from a leader before it campaigns. The actual timeout is
   * drawn from [electionTick, 2 × electionTick) after every reset, so candidates rarely collide (§5.2).
   * @default 10 (swarmkit's ElectionTick)
   */
  electionTick?: number;
  /**
   * Ticks between a leader's heartbeats. Must be smaller than electionTick.
   * @default 1 (swarmkit's HeartbeatTick)
   */
  heartbeatTick?: number;
  /**
   * A leader steps down when it has not heard from a quorum within an election timeout, and a member
   * that heard from a leader within that time ignores vote requests (the leader lease, thesis §6.2).
   * @default true (as swarmkit configures it)
   */
  checkQuorum?: boolean;
  /**
   * Campaign in two phases (thesis §9.6): a pre-vote that changes no state must win before the term is
   * raised, so a member that rejoins after a partition cannot depose a working leader.
   * @default true
   */
  preVote?: boolean;
  /**
   * Upper bound, in bytes of entry data plus a small per-entry overhead, of the entries in one append
   * message. One entry is always sent even if it alone is larger.
   * @default 65535 (swarmkit's MaxSizePerMsg)
   */
  maxSizePerMsg?: number;
  /**
   * Append messages a leader may have in flight to one follower before it waits for acknowledgements;
   * with maxSizePerMsg it bounds the memory a slow follower can make the leader hold in send buffers.
   * @default 256 (swarmkit's MaxInflightMsgs)
   */
  maxInflightMsgs?: number;
  /**
   * Upper bound, measured like maxSizePerMsg, of the committed entries handed out in one Ready; the
   * rest follow in later Readies, so a member that restarts with a long log applies it in batches.
   * @default maxSizePerMsg
   */
  maxCommittedSizePerReady?: number;
  /**
   * The random source for election timeouts.
   * @default Math.random
   */
  random?: RandomSource;
}

/** {@link RaftConfig} with every default filled in and every value checked. */
export interface ResolvedRaftConfig {
  readonly id: bigint;
  readonly storage: Storage;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxCommittedSizePerReady: number;
  readonly random: RandomSource;
}

const MAX_UINT64 = (1n << 64n) - 1n;

const mathRandom: RandomSource = {
  int: (min, max) => min + Math.floor(Math.random() * (max - min + 1)),
};

/** Fills in defaults and throws INVALID_ARGUMENT naming the first value that cannot work. */
export function resolveConfig(config: RaftConfig): ResolvedRaftConfig {
  const maxSizePerMsg = config.maxSizePerMsg ?? 65_535;
  const resolved: ResolvedRaftConfig = {
    id: config.id,
    storage: config.storage,
    electionTick: config.electionTick ?? 10,
    heartbeatTick: config.heartbeatTick ?? 1,
    checkQuorum: config.checkQuorum ?? true,
    preVote: config.preVote ?? true,
    maxSizePerMsg,
    maxInflightMsgs: config.maxInflightMsgs ?? 256,
    maxCommittedSizePerReady: config.maxCommittedSizePerReady ?? maxSizePerMsg,
    random: config.random ?? mathRandom,
  };
  if (resolved.id <= 0n || resolved.id > MAX_UINT64) {
    throw errors.invalidArgument('a raft ID must be a non-zero uint64', { id: resolved.id });
  }
  if (!Number.isSafeInteger(resolved.heartbeatTick) || resolved.heartbeatTick < 1) {
    throw errors.invalidArgument('heartbeatTick must be a positive integer', { heartbeatTick: resolved.heartbeatTick });
  }
  if (!Number.isSafeInteger(resolved.electionTick) || resolved.electionTick <= resolved.heartbeatTick) {
    throw errors.invalidArgument('electionTick must be an integer greater than heartbeatTick', {
      electionTick: resolved.electionTick,
      heartbeatTick: resolved.heartbeatTick,
    });
  }
  if (!Number.isSafeInteger(resolved.maxInflightMsgs) || resolved.maxInflightMsgs < 1) {
    throw errors.invalidArgument('maxInflightMsgs must be a positive integer', { maxInflightMsgs: resolved.maxInflightMsgs });
  }
  for (const [name, value] of [
    ['maxSizePerMsg', resolved.maxSizePerMsg],
    ['maxCommittedSizePerReady', resolved.maxCommittedSizePerReady],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) throw errors.invalidArgument(`${name} must be a non-negative integer`, { [name]: value });
  }
  return resolved;
}
