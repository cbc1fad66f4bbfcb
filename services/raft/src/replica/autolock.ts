import type { Cluster } from '@shoal/proto';
import { UNLOCK_KEY_PREFIX } from '@shoal/raft-storage';

/** The subsystem of the cluster's unlock key for managers' raft data (swarmkit's `ca.ManagerRole`). */
export const MANAGER_UNLOCK_SUBSYSTEM = 'swarm-manager';

/**
 * The unlock key the cluster object asks every manager to lock its raft data with, as Docker prints it
 * (`SWMKEY-1-` + unpadded base64 of the key), or undefined when autolock is off. swarmkit's managers
 * follow the cluster object the same way (`manager.go` `watchForClusterChanges` → `updateKEK`), so
 * `docker swarm update --autolock` locks, rotates or unlocks every manager's data at once.
 */
export function clusterUnlockKey(cluster: Cluster | undefined): string | undefined {
  if (cluster?.spec?.encryptionConfig?.autoLockManagers !== true) return undefined;
  const key = cluster.unlockKeys.find((candidate) => candidate.subsystem === MANAGER_UNLOCK_SUBSYSTEM)?.key;
  if (key === undefined || key.length === 0) return undefined;
  return UNLOCK_KEY_PREFIX + Buffer.from(key).toString('base64').replace(/=+$/, '');
}
