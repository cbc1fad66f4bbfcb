import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster } from '@shoal/proto';
import { parseUnlockKey } from '@shoal/raft-storage';
import { MANAGER_UNLOCK_SUBSYSTEM } from '../../src/replica/index.js';

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** The files of `paths` that contain `needle` as raw bytes, base64 or hex. */
export function filesContaining(paths: string[], needle: Buffer): string[] {
  const encodings = [needle, Buffer.from(needle.toString('base64')), Buffer.from(needle.toString('hex'))];
  return paths.filter((path) => {
    const content = readFileSync(path);
    return encodings.some((encoded) => content.includes(encoded));
  });
}

/** The cluster object with autolock on and `unlockKey` as the managers' key, as `docker swarm update --autolock` leaves it. */
export function autolockedCluster(unlockKey: string): Cluster {
  return Cluster.fromPartial({
    id: 'cluster-autolock',
    spec: { annotations: { name: 'default' }, encryptionConfig: { autoLockManagers: true } },
    unlockKeys: [{ subsystem: MANAGER_UNLOCK_SUBSYSTEM, key: parseUnlockKey(unlockKey) }],
  });
}
