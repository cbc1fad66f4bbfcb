import { setTimeout as sleep } from 'node:timers/promises';
import { Service, TaskState, type Node, type ObjectKindName, type ObjectTypes, type Task } from '@shoal/proto';
import { captureLogs, type LogEntry } from '@shoal/runtime/testing';
import { MemoryStore, type Commit, type ReadTx } from '@shoal/store';
import { applyCommitInput, LocalClusterState, StoreMirror, type ClusterState, type CommitInput, type StoreApiClient } from '@shoal/store-client';
import { afterEach, expect, vi } from 'vitest';
import { SchedulingLoop, type SchedulingLoopOptions } from '../src/scheduling-loop.js';

/** A store holding `nodes` and a service (spec version 1) for each of `serviceIds`. */
export function clusterWith(nodes: readonly Node[], serviceIds: readonly string[] = ['svc']): MemoryStore {
  const store = new MemoryStore();
  store.update((tx) => {
    for (const node of nodes) tx.create('node', node);
    for (const id of serviceIds) tx.create('service', Service.fromPartial({ id, spec: { annotations: { name: id } }, specVersion: { index: 1n } }));
  });
  return store;
}

/** Creates `tasks` in as many transactions as the store's limit of 200 changes needs. */
export function createTasks(store: MemoryStore, tasks: readonly Task[]): void {
  for (let start = 0; start < tasks.length; start += 200) {
    store.update((tx) => {
      for (const task of tasks.slice(start, start + 200)) tx.create('task', task);
    });
  }
}

/** Rewrites a stored object with `change` applied to it as read. */
export function rewrite<K extends ObjectKindName>(store: MemoryStore, kind: K, id: string, change: (object: ObjectTypes[K]) => ObjectTypes[K]): void {
  store.update((tx) => {
    const object = tx.get(kind, id);
    if (object === undefined) throw new Error(`no ${kind} ${id}`);
    tx.update(kind, change(object));
  });
}

export function storedTask(store: MemoryStore, id: string): Task {
  const task = store.view((tx) => tx.get('task', id));
  if (task === undefined) throw new Error(`no task ${id}`);
  return task;
}

export function storedTasks(store: MemoryStore): Task[] {
  return store.view((tx) => tx.list('task'));
}

export const stateOf = (task: Task) => task.status?.state ?? TaskState.NEW;

/** Waits (polling) until `check` stops throwing. */
export function eventually(check: () => void): Promise<void> {
  return vi.waitFor(check, { timeout: 20_000, interval: 5 });
}

export interface RunningLoop {
  readonly loop: SchedulingLoop;
  readonly logs: LogEntry[];
  stop(): Promise<void>;
}

const running: RunningLoop[] = [];

/** Starts a loop that owns every service (unless told otherwise) with a 5 ms debounce; stopped after each test. */
export function startLoop(state: ClusterState, options: Partial<SchedulingLoopOptions> = {}): RunningLoop {
  const controller = new AbortController();
  const { log, entries } = captureLogs({ level: 'debug' });
  const loop = new SchedulingLoop({ state, owns: () => true, log, debounceMs: 5, ...options });
  const done = loop.run(controller.signal);
  const started: RunningLoop = {
    loop,
    logs: entries,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
  running.push(started);
  return started;
}

const mirrors: Array<() => Promise<void>> = [];

/**
 * A `StoreMirror` (what the service runs on) of `primary`, as over the Store API: commits go to the
 * primary, and each reaches the mirror `lagMs` after it was committed, so that the mirror's view
 * and its subscribers trail the store as a real replica's do. Stopped after each test.
 */
export async function mirrorOf(primary: MemoryStore, lagMs: number): Promise<{ mirror: StoreMirror; stop(): Promise<void> }> {
  const client: Pick<StoreApiClient, 'commit' | 'snapshot' | 'watch'> = {
    commit: async (write) => {
      primary.update((tx) => applyCommitInput(tx, write));
      return primary.version;
    },
    snapshot: async () => primary.snapshot(),
    async *watch(what = {}, options = {}) {
      for await (const commit of primary.watch({ fromVersion: what.fromVersion, signal: options.signal })) {
        await sleep(lagMs);
        yield commit;
      }
    },
  };
  // The mirror makes no other call, so the three above stand in for the whole client.
  const mirror = new StoreMirror(client as StoreApiClient, captureLogs().log);
  const controller = new AbortController();
  let following: Promise<void> = Promise.resolve();
  await new Promise<void>((ready) => {
    following = mirror.run(controller.signal, ready);
  });
  const stop = async () => {
    controller.abort();
    await following;
  };
  mirrors.push(stop);
  return { mirror, stop };
}

/**
 * A {@link ClusterState} over a `MemoryStore` whose commits reach its subscribers only when the test
 * lets them: a mirror whose watch lags behind its view, or that lost its watch and resynced.
 */
export class LaggingState implements ClusterState {
  readonly #local: LocalClusterState;
  readonly #listeners = new Set<(commit: Commit) => void>();
  readonly #unsubscribe: () => void;
  #held: Commit[] | undefined;

  constructor(store: MemoryStore) {
    this.#local = new LocalClusterState(store);
    this.#unsubscribe = this.#local.subscribe((commit) => {
      if (this.#held === undefined) this.#deliver(commit);
      else this.#held.push(commit);
    });
  }

  get version(): bigint {
    return this.#local.version;
  }

  view<R>(read: (tx: ReadTx) => R): R {
    return this.#local.view(read);
  }

  commit(write: CommitInput): Promise<bigint> {
    return this.#local.commit(write);
  }

  subscribe(listener: (commit: Commit) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** From now on, keeps commits from the subscribers. */
  hold(): void {
    this.#held ??= [];
  }

  /** Delivers the commits held, and those to come. */
  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const commit of held) this.#deliver(commit);
  }

  /** Drops the commits held, as a broken watch loses them, and announces a resync (a commit with no events). */
  resync(): void {
    this.#held = undefined;
    this.#deliver({ version: this.#local.version, events: [] });
  }

  close(): void {
    this.#unsubscribe();
  }

  #deliver(commit: Commit): void {
    for (const listener of this.#listeners) listener(commit);
  }
}

const lagging: LaggingState[] = [];

/** A {@link LaggingState} over `store`, closed after each test. */
export function laggingState(store: MemoryStore): LaggingState {
  const state = new LaggingState(store);
  lagging.push(state);
  return state;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((loop) => loop.stop()));
  for (const state of lagging.splice(0)) state.close();
  await Promise.all(mirrors.splice(0).map((stop) => stop()));
});

/** Asserts that no log line of the loop is a warning or worse. */
export function expectNoTrouble(logs: readonly LogEntry[]): void {
  expect(logs.filter((entry) => entry.level !== 'debug' && entry.level !== 'trace' && entry.level !== 'info')).toEqual([]);
}
