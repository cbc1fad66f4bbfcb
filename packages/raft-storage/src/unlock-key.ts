import { randomBytes } from 'node:crypto';
import { errors } from '@shoal/errors';
import type { Cluster, EncryptionKey } from '@shoal/proto';
import { KEY_BYTES } from './sealing.js';

/** Prefix of every unlock key, as Docker prints it (`docker swarm unlock-key`). */
export const UNLOCK_KEY_PREFIX = 'SWMKEY-1-';

/** Unpadded base64 of {@link KEY_BYTES} bytes. */
const ENCODED_KEY = /^[A-Za-z0-9+/]{43}$/;

/**
 * A new random unlock key in Docker's format: `SWMKEY-1-` followed by the unpadded standard base64 of
 * 32 random bytes. Whoever holds it can decrypt an autolocked node's raft data, so it must never be
 * written to that node's disk.
 */
export function generateUnlockKey(): string {
  return UNLOCK_KEY_PREFIX + unpaddedBase64(randomBytes(KEY_BYTES));
}

/**
 * The 32 key bytes of an unlock key (surrounding whitespace, such as a pasted newline, is ignored).
 * Throws INVALID_ARGUMENT saying what is wrong with the format; the message never repeats the key.
 */
export function parseUnlockKey(unlockKey: string): Buffer {
  const text = unlockKey.trim();
  if (!text.startsWith(UNLOCK_KEY_PREFIX)) {
    throw errors.invalidArgument(`malformed unlock key: it must start with ${UNLOCK_KEY_PREFIX}`);
  }
  const encoded = text.slice(UNLOCK_KEY_PREFIX.length);
  const key = Buffer.from(encoded, 'base64');
  // The round trip rejects encodings that decode to the same bytes but are not the one Docker prints.
  if (!ENCODED_KEY.test(encoded) || key.length !== KEY_BYTES || unpaddedBase64(key) !== encoded) {
    throw errors.invalidArgument(
      `malformed unlock key: ${UNLOCK_KEY_PREFIX} must be followed by the unpadded base64 of a ${KEY_BYTES}-byte key (43 characters)`,
    );
  }
  return key;
}

/** The subsystem of the cluster's unlock key for managers' raft data (swarmkit's `ca.ManagerRole`). */
export const MANAGER_UNLOCK_SUBSYSTEM = 'swarm-manager';

/**
 * The unlock key the cluster object asks every manager to lock its raft data with, as Docker prints it,
 * or undefined when autolock is off. swarmkit's managers follow the cluster object the same way
 * (`manager.go` `watchForClusterChanges` → `updateKEK`), so `docker swarm update --autolock` locks,
 * rotates or unlocks every manager's data at once.
 */
export function clusterUnlockKey(cluster: Cluster | undefined): string | undefined {
  if (cluster?.spec?.encryptionConfig?.autoLockManagers !== true) return undefined;
  const key = cluster.unlockKeys.find((candidate) => candidate.subsystem === MANAGER_UNLOCK_SUBSYSTEM)?.key;
  if (key === undefined || key.length === 0) return undefined;
  return UNLOCK_KEY_PREFIX + unpaddedBase64(Buffer.from(key));
}

/** The cluster's `unlockKeys` holding `unlockKey` for managers. */
export function managerUnlockKeys(unlockKey: string): EncryptionKey[] {
  return [{ subsystem: MANAGER_UNLOCK_SUBSYSTEM, algorithm: 0, key: parseUnlockKey(unlockKey), lamportTime: 0n }];
}

function unpaddedBase64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}
