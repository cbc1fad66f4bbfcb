import { errors, type ShoalError } from '@shoal/errors';

/**
 * The error for data that is on disk but wrong: it names the file and byte offset so an operator can
 * find it, and is INTERNAL because nothing the caller changes makes the data right again. Storage
 * never serves around such data; the node stays down until the file is restored or the node rejoins.
 */
export function corruptionError(file: string, offset: number, problem: string): ShoalError {
  return errors.internal(`raft storage is corrupt: ${file} at byte ${offset}: ${problem}`, { file, offset });
}
