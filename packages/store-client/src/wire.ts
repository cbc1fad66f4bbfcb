/**
 * Conversions between the Store API's wire messages and the store's plain data that both ends of
 * the API need, kept together so each pair stays a round trip.
 */
import { errors } from '@shoal/errors';
import {
  ChangeAction,
  encodeObject,
  fromStoreObject,
  objectKindNames,
  snapshotFieldByKind,
  toStoreObject,
  type AnyObject,
  type Duration,
  type KindedObject,
  type StoreSnapshot,
  type WatchMessage,
} from '@shoal/proto';
import type { Commit, StoreAction, StoreEvent } from '@shoal/store';

const changeActionByStoreAction: Readonly<Record<StoreAction, ChangeAction>> = {
  create: ChangeAction.CREATE,
  update: ChangeAction.UPDATE,
  delete: ChangeAction.DELETE,
};

const storeActions = Object.keys(changeActionByStoreAction) as StoreAction[];

/** The wire action of a store action. */
export function changeActionOf(action: StoreAction): ChangeAction {
  return changeActionByStoreAction[action];
}

/** The store action of a wire action; throws INVALID_ARGUMENT for UNSPECIFIED or an unknown one. */
export function storeActionOf(action: ChangeAction): StoreAction {
  const found = storeActions.find((candidate) => changeActionByStoreAction[candidate] === action);
  if (found === undefined) throw errors.invalidArgument(`unknown change action ${action}`, { action });
  return found;
}

/** The action bit mask of a watch entry for `actions`; 0 (every action) when none are named. */
export function actionMaskOf(actions: readonly StoreAction[] | undefined): number {
  return (actions ?? []).reduce((mask, action) => mask | changeActionByStoreAction[action], 0);
}

/**
 * The actions an action bit mask asks for, or undefined for 0 (every action). Throws
 * INVALID_ARGUMENT for a bit that is no action.
 */
export function actionsOfMask(mask: number): StoreAction[] | undefined {
  if (mask === 0) return undefined;
  const known = actionMaskOf(storeActions);
  if ((mask & ~known) !== 0) {
    throw errors.invalidArgument(`watch action mask ${mask} has bits that are no action (CREATE=1, UPDATE=2, DELETE=4)`, { mask });
  }
  return storeActions.filter((action) => (mask & changeActionByStoreAction[action]) !== 0);
}

/** Whole milliseconds as a protobuf Duration (seconds and nanos share the sign, as the type requires). */
export function durationOfMs(ms: number): Duration {
  if (!Number.isFinite(ms)) throw errors.invalidArgument(`a duration must be a finite number of milliseconds, not ${ms}`);
  const whole = Math.trunc(ms);
  return { seconds: BigInt(Math.trunc(whole / 1000)), nanos: (whole % 1000) * 1_000_000 };
}

/** A protobuf Duration in milliseconds; fractions of a millisecond are kept. */
export function msOfDuration({ seconds, nanos }: Duration): number {
  return Number(seconds) * 1000 + nanos / 1_000_000;
}

/** The watch message for a commit; old objects are carried only when asked for. */
export function toWatchMessage(commit: Commit, includeOldObjects: boolean): WatchMessage {
  return {
    version: { index: commit.version },
    events: commit.events.map(({ kind, action, object, old }) => ({
      action: changeActionOf(action),
      object: toStoreObject(kind, object),
      oldObject: includeOldObjects && old !== undefined ? toStoreObject(kind, old) : undefined,
    })),
  };
}

/** The commit a watch message carries. Throws INVALID_ARGUMENT for a malformed message. */
export function fromWatchMessage(message: WatchMessage): Commit {
  if (message.version === undefined) throw errors.invalidArgument('watch message carries no version');
  const events = message.events.map((event): StoreEvent => {
    if (event.object === undefined) throw errors.invalidArgument('watch event carries no object');
    const { kind, object } = fromStoreObject(event.object);
    const action = storeActionOf(event.action);
    if (event.oldObject === undefined) return { kind, action, object } as StoreEvent;
    const old = fromStoreObject(event.oldObject);
    if (old.kind !== kind) throw errors.invalidArgument(`watch event pairs a ${kind} with an old ${old.kind}`);
    return { kind, action, object, old: old.object } as StoreEvent;
  });
  return { version: message.version.index, events };
}

/** Target size of one Snapshot stream part: well under the 4 MiB message limit, whatever one object weighs (at most 1.5 MiB). */
export const SNAPSHOT_PART_BYTES = 1024 * 1024;

const emptySnapshotAt = (version: StoreSnapshot['version']): StoreSnapshot => ({
  version,
  nodes: [],
  services: [],
  tasks: [],
  networks: [],
  secrets: [],
  configs: [],
  clusters: [],
  leases: [],
});

/**
 * Splits a snapshot into the parts the Snapshot stream sends: each carries the snapshot's version
 * and objects adding up to about `partBytes` encoded, so no message nears the size limit however
 * large the store. An empty store still yields one part, which carries the version.
 */
export function* snapshotParts(snapshot: StoreSnapshot, partBytes = SNAPSHOT_PART_BYTES): Generator<StoreSnapshot> {
  let part = emptySnapshotAt(snapshot.version);
  let size = 0;
  let holdsObjects = false;
  for (const kind of objectKindNames) {
    const field = snapshotFieldByKind[kind];
    for (const object of snapshot[field]) {
      const objectSize = encodeObject({ kind, object } as KindedObject).length;
      if (holdsObjects && size + objectSize > partBytes) {
        yield part;
        part = emptySnapshotAt(snapshot.version);
        size = 0;
      }
      (part[field] as AnyObject[]).push(object);
      size += objectSize;
      holdsObjects = true;
    }
  }
  yield part;
}

/** Joins the parts of a Snapshot stream back into one snapshot; INTERNAL if they disagree on the version. */
export function joinSnapshotParts(parts: readonly StoreSnapshot[]): StoreSnapshot {
  const version = parts[0]?.version;
  const joined = emptySnapshotAt(version);
  for (const part of parts) {
    if (part.version?.index !== version?.index) {
      throw errors.internal(`snapshot parts disagree on their version: ${version?.index} and ${part.version?.index}`);
    }
    for (const kind of objectKindNames) {
      const field = snapshotFieldByKind[kind];
      (joined[field] as AnyObject[]).push(...part[field]);
    }
  }
  return joined;
}
