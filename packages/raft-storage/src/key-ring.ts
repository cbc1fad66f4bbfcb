import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import { corruptionError } from './corruption.js';
import { replaceFileAtomically } from './durable-fs.js';
import type { DataKeyLookup } from './sealed-file.js';
import { deriveKey, KEY_BYTES, seal, unseal } from './sealing.js';
import { parseUnlockKey } from './unlock-key.js';

/**
 * Docker's words for a locked manager, so operators see what they already know (Shoal's API is the
 * one the docker CLI talks to, so the advice holds).
 */
export const LOCKED_MESSAGE = 'Swarm is encrypted and needs to be unlocked before it can be used. Use "docker swarm unlock" to unlock it.';
/** Docker's words for a wrong unlock key (Docker answers it with 401, hence UNAUTHENTICATED). */
export const INVALID_UNLOCK_KEY_MESSAGE = 'swarm could not be unlocked: invalid key provided';

const SALT_BYTES = 16;

/**
 * The key that wraps the data keys. Without autolock it is random and stored in the key file next to
 * what it wraps (as Docker keeps an unlocked manager's keys on disk). With autolock it is derived from
 * the unlock key and a stored salt, and only the salt is on disk.
 */
type KeyEncryptionKey = { readonly source: 'stored'; readonly key: Buffer } | { readonly source: 'unlock-key'; readonly salt: Buffer; readonly key: Buffer };

interface KeyRingState {
  readonly keyEncryptionKey: KeyEncryptionKey;
  readonly dataKeys: ReadonlyMap<number, Buffer>;
  readonly activeDataKeyId: number;
}

/** keys.json as stored; byte strings are base64. */
interface KeysFile {
  readonly version: 1;
  readonly keyEncryptionKey: { readonly source: 'stored'; readonly key: string } | { readonly source: 'unlock-key'; readonly salt: string };
  readonly activeDataKey: number;
  readonly dataKeys: ReadonlyArray<{ readonly id: number; readonly wrapped: string }>;
}

/**
 * The data keys (DEKs) that seal the WAL and snapshots, kept in one key file, each wrapped (AES-256-GCM,
 * its id as AAD) by the key-encryption key. One DEK is active and seals everything new; retired ones
 * stay only while some file still needs them. Every change replaces the key file atomically, so a
 * crash leaves either the old file or the new one, never a key lost between them.
 */
export class KeyRing implements DataKeyLookup {
  private constructor(
    private readonly path: string,
    private state: KeyRingState,
  ) {}

  /** Creates the key file with a fresh data key; autolocked under `unlockKey` if one is given. */
  static async create(path: string, unlockKey: string | undefined): Promise<KeyRing> {
    const ring = new KeyRing(path, { keyEncryptionKey: newKeyEncryptionKey(unlockKey), dataKeys: new Map([[1, randomBytes(KEY_BYTES)]]), activeDataKeyId: 1 });
    await ring.commit(ring.state);
    return ring;
  }

  /**
   * Loads the key file and unwraps the data keys. An autolocked file needs `unlockKey`: without it this
   * throws FAILED_PRECONDITION ({@link LOCKED_MESSAGE}), with a wrong one UNAUTHENTICATED
   * ({@link INVALID_UNLOCK_KEY_MESSAGE}). `unlockKey` is ignored when the file is not autolocked.
   */
  static async load(path: string, unlockKey: string | undefined): Promise<KeyRing> {
    const file = parseKeysFile(await readFile(path, 'utf8'), path);
    const stored = file.keyEncryptionKey;
    let keyEncryptionKey: KeyEncryptionKey;
    if (stored.source === 'stored') {
      keyEncryptionKey = { source: 'stored', key: Buffer.from(stored.key, 'base64') };
    } else {
      if (unlockKey === undefined) throw errors.failedPrecondition(LOCKED_MESSAGE);
      const salt = Buffer.from(stored.salt, 'base64');
      keyEncryptionKey = { source: 'unlock-key', salt, key: keyFromUnlockKey(unlockKey, salt) };
    }
    const dataKeys = new Map<number, Buffer>();
    for (const { id, wrapped } of file.dataKeys) {
      const dataKey = unseal(keyEncryptionKey.key, Buffer.from(wrapped, 'base64'), wrappingAad(id));
      if (dataKey === undefined) {
        // Under autolock a wrong key and a damaged file look the same; the wrong key is far likelier.
        if (keyEncryptionKey.source === 'unlock-key') throw new ShoalError(ErrorCode.Unauthenticated, INVALID_UNLOCK_KEY_MESSAGE);
        throw corruptionError(path, 0, `data key ${id} does not unwrap`);
      }
      dataKeys.set(id, dataKey);
    }
    return new KeyRing(path, { keyEncryptionKey, dataKeys, activeDataKeyId: file.activeDataKey });
  }

  /** True if the data keys can only be unwrapped with the unlock key. */
  get autolocked(): boolean {
    return this.state.keyEncryptionKey.source === 'unlock-key';
  }

  get activeDataKeyId(): number {
    return this.state.activeDataKeyId;
  }

  /** The ids of every data key held, the active one included. */
  get dataKeyIds(): number[] {
    return [...this.state.dataKeys.keys()];
  }

  dataKey(id: number): Buffer | undefined {
    return this.state.dataKeys.get(id);
  }

  /** Adds a new data key and makes it the active one; the previous one is kept, retired. */
  async rotateDataKey(): Promise<void> {
    await this.commit(withNewDataKey(this.state));
  }

  /**
   * Re-wraps the data keys: under a key derived from `unlockKey` (enabling autolock, or rotating the
   * unlock key), or under a new random stored key when it is undefined (disabling autolock). Enabling
   * autolock also rotates the data key, as swarmkit does: the old one sat on disk next to its wrapping
   * key, so any copy of the disk taken before must not decrypt what is written from now on.
   */
  async setUnlockKey(unlockKey: string | undefined): Promise<void> {
    if (unlockKey === undefined && !this.autolocked) return;
    const rewrapped = { ...this.state, keyEncryptionKey: newKeyEncryptionKey(unlockKey) };
    await this.commit(unlockKey !== undefined && !this.autolocked ? withNewDataKey(rewrapped) : rewrapped);
  }

  /** Forgets retired data keys that no file uses any more. */
  async dropDataKeys(ids: readonly number[]): Promise<void> {
    if (ids.includes(this.state.activeDataKeyId)) throw errors.internal('the active data key cannot be dropped');
    const dataKeys = new Map([...this.state.dataKeys].filter(([id]) => !ids.includes(id)));
    await this.commit({ ...this.state, dataKeys });
  }

  /** Makes `next` durable, then current: memory never runs ahead of the disk. */
  private async commit(next: KeyRingState): Promise<void> {
    const kek = next.keyEncryptionKey;
    const file: KeysFile = {
      version: 1,
      keyEncryptionKey: kek.source === 'stored' ? { source: 'stored', key: kek.key.toString('base64') } : { source: 'unlock-key', salt: kek.salt.toString('base64') },
      activeDataKey: next.activeDataKeyId,
      dataKeys: [...next.dataKeys].map(([id, dataKey]) => ({ id, wrapped: seal(kek.key, dataKey, wrappingAad(id)).toString('base64') })),
    };
    await replaceFileAtomically(this.path, Buffer.from(`${JSON.stringify(file, null, 2)}\n`));
    this.state = next;
  }
}

function newKeyEncryptionKey(unlockKey: string | undefined): KeyEncryptionKey {
  if (unlockKey === undefined) return { source: 'stored', key: randomBytes(KEY_BYTES) };
  const salt = randomBytes(SALT_BYTES);
  return { source: 'unlock-key', salt, key: keyFromUnlockKey(unlockKey, salt) };
}

function keyFromUnlockKey(unlockKey: string, salt: Buffer): Buffer {
  return deriveKey(parseUnlockKey(unlockKey), salt, 'key-encryption key');
}

function withNewDataKey(state: KeyRingState): KeyRingState {
  const id = Math.max(...state.dataKeys.keys()) + 1;
  return { ...state, dataKeys: new Map([...state.dataKeys, [id, randomBytes(KEY_BYTES)]]), activeDataKeyId: id };
}

/** Binds each wrapped data key to its id, so wrapped keys cannot be swapped in the file. */
function wrappingAad(id: number): Buffer {
  return Buffer.from(`shoal raft-storage data key ${id}`);
}

function parseKeysFile(text: string, path: string): KeysFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw corruptionError(path, 0, 'the key file is not JSON');
  }
  if (!isKeysFile(parsed)) throw corruptionError(path, 0, 'the key file does not have the expected fields');
  return parsed;
}

function isKeysFile(value: unknown): value is KeysFile {
  if (!isRecord(value) || value.version !== 1 || !Array.isArray(value.dataKeys) || !isRecord(value.keyEncryptionKey)) return false;
  const kek = value.keyEncryptionKey;
  const kekValid = (kek.source === 'stored' && typeof kek.key === 'string') || (kek.source === 'unlock-key' && typeof kek.salt === 'string');
  const dataKeysValid = value.dataKeys.every((entry) => isRecord(entry) && Number.isSafeInteger(entry.id) && typeof entry.wrapped === 'string');
  return kekValid && dataKeysValid && value.dataKeys.some((entry: Record<string, unknown>) => entry.id === value.activeDataKey);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
