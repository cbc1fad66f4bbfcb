import { join } from 'node:path';
import type { SnapshotMetadata } from '@shoal/proto';
import { errors } from '@shoal/errors';
import { corruptionError } from './corruption.js';
import { ensureDirectory, pathExists, removeTempFiles } from './durable-fs.js';
import { KeyRing } from './key-ring.js';
import { MAX_SNAPSHOT_CHUNK_BYTES, SnapshotStore, type SnapshotReader } from './snapshot-store.js';
import type { RaftUpdate, RecoveredState, RecoveryNote } from './types.js';
import { WriteAheadLog } from './wal.js';

const MiB = 1024 * 1024;

/** Where a {@link RaftStorage} keeps its data, and how much it keeps. */
export interface RaftStorageOptions {
  /** The node's state directory. The storage owns `<dataDir>/raft` and creates it if missing. */
  readonly dataDir: string;
  /**
   * The unlock key (`SWMKEY-1-…`). Required to open an autolocked storage, ignored otherwise (use
   * {@link RaftStorage.setUnlockKey} to lock one). A new storage given a key is created autolocked.
   */
  readonly unlockKey?: string;
  /**
   * A WAL segment is closed and a new one started once it reaches this size.
   * @default 64 MiB (etcd's and swarmkit's segment size)
   */
  readonly segmentBytes?: number;
  /**
   * Entries kept in the WAL behind the latest snapshot before a segment can be released.
   * @default 500 (swarmkit's LogEntriesForSlowFollowers)
   */
  readonly logEntriesForSlowFollowers?: number;
  /**
   * Snapshots kept besides the latest.
   * @default 0 (swarmkit's KeepOldSnapshots)
   */
  readonly keepOldSnapshots?: number;
  /**
   * Snapshot data is sealed, written and read back in chunks of this size.
   * @default 1 MiB: large enough that the per-chunk 33 bytes of framing and one AES-GCM call are
   * noise, small enough that a reader and a writer each hold only about a megabyte.
   */
  readonly snapshotChunkBytes?: number;
}

/** An opened storage, what it recovered, and what it had to repair. */
export interface OpenedRaftStorage {
  readonly storage: RaftStorage;
  readonly recovered: RecoveredState;
  /** Repairs of crash leftovers made while opening, for the caller to log. */
  readonly notes: readonly RecoveryNote[];
}

type Settings = Required<Omit<RaftStorageOptions, 'dataDir' | 'unlockKey'>>;

/**
 * The durable, encrypted storage under one raft member: a write-ahead log of entries and hard states,
 * snapshots stored as sealed chunk streams, and the keys that seal them (see the README for formats
 * and guarantees). It follows etcd's shape: the caller saves each `Ready`'s hard state, entries and
 * restored snapshot with {@link save}, which returns only once they are on disk, and only then sends
 * messages or applies entries.
 *
 * One process at a time may open a data directory. Writes to the WAL and key file run one after
 * another in call order; snapshot writes and reads stream alongside them.
 */
export class RaftStorage {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly settings: Settings,
    private readonly keys: KeyRing,
    private readonly wal: WriteAheadLog,
    private readonly snapshots: SnapshotStore,
  ) {}

  /**
   * Opens (or creates) the storage in `<dataDir>/raft`, replays it and returns what it holds. Throws
   * FAILED_PRECONDITION for an autolocked storage without its unlock key, UNAUTHENTICATED for a wrong
   * one, INVALID_ARGUMENT for a malformed one, and INTERNAL naming the file and byte offset for anything that does not read back as written,
   * except the leftovers a crash can produce, which it repairs and reports in `notes`.
   */
  static async open(options: RaftStorageOptions): Promise<OpenedRaftStorage> {
    const settings = resolveSettings(options);
    const root = join(options.dataDir, 'raft');
    const walDir = join(root, 'wal');
    const snapDir = join(root, 'snap');
    const keysPath = join(root, 'keys.json');
    // The directories are created before the key file, and segment 1 before any snapshot: anything
    // else missing while the key file exists was deleted, and starting afresh would forget votes.
    const keysExisted = await pathExists(keysPath);
    if (keysExisted && !(await pathExists(walDir))) throw corruptionError(walDir, 0, 'the WAL directory is missing');
    const notes: RecoveryNote[] = [];
    for (const dir of [root, walDir, snapDir]) {
      await ensureDirectory(dir);
      for (const file of await removeTempFiles(dir)) notes.push({ kind: 'temp-file-removed', file });
    }
    const hasSegments = await WriteAheadLog.hasSegments(walDir);
    if (!hasSegments && (await SnapshotStore.hasSnapshots(snapDir))) throw corruptionError(walDir, 0, 'the WAL is missing but snapshots exist');
    if (!keysExisted && hasSegments) throw corruptionError(keysPath, 0, 'the key file is missing, so the WAL cannot be decrypted');
    const keys = keysExisted ? await KeyRing.load(keysPath, options.unlockKey) : await KeyRing.create(keysPath, options.unlockKey);
    const snapshots = await SnapshotStore.open(snapDir, keys, settings.snapshotChunkBytes);

    const { wal, recovered, notes: walNotes } = await WriteAheadLog.open(walDir, keys, settings.segmentBytes);
    notes.push(...walNotes);
    try {
      if (recovered.snapshot !== undefined) {
        const path = snapshots.pathFor(recovered.snapshot);
        if (!snapshots.has(recovered.snapshot)) throw corruptionError(path, 0, 'the snapshot the WAL refers to is missing');
        await (await snapshots.openReader(recovered.snapshot)).close();
      }
      for (const file of await snapshots.removeNewerThan(recovered.snapshot)) notes.push({ kind: 'unreferenced-snapshot-removed', file });
      const storage = new RaftStorage(settings, keys, wal, snapshots);
      await storage.releaseCovered();
      return { storage, recovered, notes };
    } catch (err) {
      await wal.close();
      throw err;
    }
  }

  /** The latest snapshot: the one the log was last compacted to or restored from. */
  get snapshot(): SnapshotMetadata | undefined {
    return this.wal.snapshot;
  }

  /** True if opening this storage needs the unlock key. */
  get autolocked(): boolean {
    return this.keys.autolocked;
  }

  /**
   * True while a retired data key is still in use (after {@link rotateDataKey}, or enabling autolock).
   * The rotation completes when a snapshot taken since covers everything written under the old key:
   * the caller should take one (swarmkit snapshots for this whatever its snapshot interval).
   */
  get dataKeyRotationPending(): boolean {
    return this.keys.dataKeyIds.length > 1;
  }

  /**
   * Makes one `Ready` durable: a restored snapshot (whose data {@link writeSnapshot} stored first),
   * then entries, then the hard state, as one WAL record, fdatasynced before this resolves unless
   * `update.sync` is false (see {@link RaftUpdate.sync}). Entries
   * that overlap the stored log replace it from their first index on. Throws INVALID_ARGUMENT, writing
   * nothing, for entries that do not continue the log.
   */
  async save(update: RaftUpdate): Promise<void> {
    await this.exclusive(async () => {
      if (update.snapshot !== undefined) this.requireStored(update.snapshot);
      await this.wal.save(update);
      if (update.snapshot !== undefined) await this.releaseCovered();
    });
  }

  /**
   * Stores a snapshot's data from a stream, chunk by chunk, durable before this resolves. Alone it
   * changes nothing: {@link compact} (a snapshot taken locally) or {@link save} (one received from the
   * leader) makes it the latest. Runs alongside saves, so a large snapshot does not hold raft up.
   */
  async writeSnapshot(metadata: SnapshotMetadata, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    this.ensureOpen();
    await this.snapshots.write(metadata, data);
  }

  /**
   * Records that a snapshot taken locally (and stored with {@link writeSnapshot}) covers the log up to
   * its index, then releases what it makes unnecessary: WAL segments covered with
   * `logEntriesForSlowFollowers` to spare, older snapshots beyond `keepOldSnapshots`, and retired data
   * keys no file uses any more. A snapshot no newer than the latest changes nothing.
   */
  async compact(snapshot: SnapshotMetadata): Promise<void> {
    await this.exclusive(async () => {
      this.requireStored(snapshot);
      if (snapshot.index > (this.wal.snapshot?.index ?? 0n)) await this.wal.recordSnapshotTaken(snapshot);
      await this.releaseCovered();
    });
  }

  /**
   * Opens a stored snapshot for reading as a stream of chunks: by default the latest, which is what a
   * restarted member loads and what a leader streams to a follower that fell behind. NOT_FOUND if
   * there is none.
   */
  async openSnapshot(metadata: SnapshotMetadata | undefined = this.snapshot): Promise<SnapshotReader> {
    this.ensureOpen();
    if (metadata === undefined) throw errors.notFound('no snapshot has been stored yet');
    return this.snapshots.openReader(metadata);
  }

  /**
   * Enables autolock, rotates the unlock key, or (with undefined) disables autolock, by re-wrapping the
   * data keys; the unlock key is never written to disk. Enabling also starts a data-key rotation (see
   * {@link dataKeyRotationPending}). Store the new key where the cluster keeps it before calling: once
   * this resolves, the old key no longer opens the storage.
   */
  async setUnlockKey(unlockKey: string | undefined): Promise<void> {
    await this.exclusive(async () => {
      const previousDataKey = this.keys.activeDataKeyId;
      await this.keys.setUnlockKey(unlockKey);
      if (this.keys.activeDataKeyId !== previousDataKey) await this.wal.roll();
    });
  }

  /**
   * Starts sealing everything new under a fresh data key. The old key stays until the files sealed with
   * it are released (see {@link dataKeyRotationPending}).
   */
  async rotateDataKey(): Promise<void> {
    await this.exclusive(async () => {
      await this.keys.rotateDataKey();
      await this.wal.roll();
    });
  }

  /** Closes the WAL after the writes already queued. Idempotent. */
  async close(): Promise<void> {
    await this.enqueue(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.wal.close();
    });
  }

  /** Runs `operation` on the open storage after every earlier one has finished. */
  private exclusive(operation: () => Promise<void>): Promise<void> {
    return this.enqueue(() => {
      this.ensureOpen();
      return operation();
    });
  }

  /** Runs `operation` after every earlier one has finished, so WAL and key file writes never interleave. */
  private enqueue(operation: () => Promise<void>): Promise<void> {
    const run = this.queue.then(operation);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private ensureOpen(): void {
    if (this.closed) throw errors.failedPrecondition('the raft storage is closed');
  }

  private requireStored(snapshot: SnapshotMetadata): void {
    if (!this.snapshots.has(snapshot)) {
      throw errors.failedPrecondition(`snapshot ${snapshot.index} (term ${snapshot.term}) is not stored; write it with writeSnapshot first`, {
        index: snapshot.index,
        term: snapshot.term,
      });
    }
  }

  /**
   * Deletes what the latest snapshot made unnecessary, then forgets retired data keys nothing uses.
   * In that order: a key goes only after the last file sealed with it, so a crash in between leaves
   * an unused key (dropped at the next open), never a file without its key.
   */
  private async releaseCovered(): Promise<void> {
    const { snapshot } = this.wal;
    const activeDataKey = this.keys.activeDataKeyId;
    if (snapshot !== undefined) {
      await this.wal.releaseCoveredSegments(snapshot.index, this.settings.logEntriesForSlowFollowers, activeDataKey);
      await this.snapshots.prune(snapshot, this.settings.keepOldSnapshots, activeDataKey);
    }
    const inUse = new Set([activeDataKey, ...this.wal.dataKeysInUse(), ...this.snapshots.dataKeysInUse()]);
    const unused = this.keys.dataKeyIds.filter((id) => !inUse.has(id));
    if (unused.length > 0) await this.keys.dropDataKeys(unused);
  }
}

function resolveSettings(options: RaftStorageOptions): Settings {
  const settings: Settings = {
    segmentBytes: options.segmentBytes ?? 64 * MiB,
    logEntriesForSlowFollowers: options.logEntriesForSlowFollowers ?? 500,
    keepOldSnapshots: options.keepOldSnapshots ?? 0,
    snapshotChunkBytes: options.snapshotChunkBytes ?? MiB,
  };
  const limits: Record<keyof Settings, [number, number]> = {
    segmentBytes: [1, Number.MAX_SAFE_INTEGER],
    logEntriesForSlowFollowers: [0, Number.MAX_SAFE_INTEGER],
    keepOldSnapshots: [0, Number.MAX_SAFE_INTEGER],
    snapshotChunkBytes: [1, MAX_SNAPSHOT_CHUNK_BYTES],
  };
  for (const [name, [min, max]] of Object.entries(limits) as Array<[keyof Settings, [number, number]]>) {
    const value = settings[name];
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw errors.invalidArgument(`raft storage option ${name} must be an integer from ${min} to ${max}`, { [name]: value });
    }
  }
  return settings;
}
