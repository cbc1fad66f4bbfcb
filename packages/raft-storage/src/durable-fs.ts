import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errors } from '@shoal/errors';

/**
 * File-system steps whose ordering the crash-safety argument depends on. Everything is async
 * (`fs/promises`): an fsync takes milliseconds and blocking the event loop for it would stall every
 * other request the raft process serves.
 */

/** Suffix of files being written; a crash leaves them behind and {@link removeTempFiles} clears them. */
const TEMP_SUFFIX = '.tmp';

/** Every file here is readable by the owner only: even sealed, it is nobody else's business. */
export const PRIVATE_FILE_MODE = 0o600;

/** A unique temporary name next to `path`, so two writers of the same file never share one. */
export function tempPathFor(path: string): string {
  return `${path}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`;
}

/** fsyncs a directory, making the creations, renames and removals inside it durable. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates `dir` (and its parents) if missing, readable by the owner only; each new directory's entry
 * is fsynced into its parent.
 */
export async function ensureDirectory(dir: string): Promise<void> {
  const firstCreated = await mkdir(dir, { recursive: true, mode: 0o700 });
  if (firstCreated === undefined) return;
  for (let created = dir; ; created = dirname(created)) {
    await fsyncDirectory(dirname(created));
    if (created === firstCreated) return;
  }
}

/** Writes all of `data` at `position`, looping over short writes. */
export async function writeFully(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    if (bytesWritten === 0) throw errors.internal('a write made no progress', { position: position + done });
    done += bytesWritten;
  }
}

/** Reads up to `length` bytes at `position`; the result is shorter only at the end of the file. */
export async function readUpTo(handle: FileHandle, length: number, position: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buffer : buffer.subarray(0, done);
}

/**
 * Replaces `path` with `data` so that after a crash at any instant the file holds either its old or
 * its new content, never a mix: write a temporary file, fsync it, rename it over `path`, fsync the
 * directory. The rename is the commit point; a temporary file left by a crash is never read.
 */
export async function replaceFileAtomically(path: string, data: Uint8Array): Promise<void> {
  const temp = tempPathFor(path);
  const handle = await open(temp, 'wx', PRIVATE_FILE_MODE);
  try {
    await writeFully(handle, data, 0);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(temp, path);
  await fsyncDirectory(dirname(path));
}

/** Cuts `path` down to `length` bytes and makes the new length durable. */
export async function truncateDurably(path: string, length: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.truncate(length);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Removes a file and makes the removal durable before returning. */
export async function removeDurably(path: string): Promise<void> {
  await rm(path, { force: true });
  await fsyncDirectory(dirname(path));
}

/** Removes the temporary files a crash left in `dir` and returns their paths. */
export async function removeTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir)) {
    if (!name.endsWith(TEMP_SUFFIX)) continue;
    const path = join(dir, name);
    await rm(path, { force: true });
    removed.push(path);
  }
  if (removed.length > 0) await fsyncDirectory(dir);
  return removed;
}

/** True if `path` exists. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** The names in `dir` matching `pattern`, with the pattern's captures. */
export async function listMatching(dir: string, pattern: RegExp): Promise<Array<{ name: string; path: string; groups: string[] }>> {
  const found = [];
  for (const name of await readdir(dir)) {
    const match = pattern.exec(name);
    if (match) found.push({ name, path: join(dir, name), groups: match.slice(1) });
  }
  return found;
}

