import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { errors } from '@shoal/errors';
import type { ContainerSpec, FileTarget } from '@shoal/proto';
import type { TaskDependencies } from '../executor.js';

/** Where the agent mounts each task's tmpfs of secrets and configs unless told otherwise. */
export const DEFAULT_SECRETS_DIR = '/run/shoal/secrets';

/** Where a secret lands in the container when its file name is relative, as in Docker. */
const SECRETS_TARGET_DIR = '/run/secrets';
/** Where a config lands in the container when its file name is relative, as in Docker. */
const CONFIGS_TARGET_DIR = '/';
/** The permission bits Docker gives secret and config files when the spec leaves them at zero. */
const DEFAULT_FILE_MODE = 0o444;
const PAGE_SIZE = 4096;

const run = promisify(execFile);

/** One secret or config file of a task: where it lives on the task's tmpfs and where the container sees it. */
export interface TaskFile {
  readonly kind: 'secret' | 'config';
  /** The secret's or config's ID, under which the dispatcher delivered its data. */
  readonly objectId: string;
  /** Absolute path inside the container, normalised. */
  readonly containerPath: string;
  /** The file on the task's tmpfs that is bind-mounted there. */
  readonly hostPath: string;
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
}

/**
 * A task's secrets and configs as files on a tmpfs of its own, mounted at `<secretsDir>/<task id>`
 * (0700, root) for as long as the task exists. The data lives only in that tmpfs (memory) and in the
 * container's read-only bind mounts of it: never on the host's disk, and never in another task's
 * container. Inside the tmpfs each file sits at its container path, so targets never collide.
 */
export class TaskFiles {
  private constructor(
    /** The tmpfs mount point. */
    readonly directory: string,
    readonly files: readonly TaskFile[],
  ) {}

  /**
   * The files `spec` asks for, or `undefined` when it references none (configs with a runtime target
   * are for Windows credential specs and give no file). Throws INVALID_ARGUMENT for a reference whose
   * target is not a file path or whose owner is not numeric, so the task is rejected before anything
   * is written.
   */
  static forTask(taskId: string, spec: ContainerSpec, secretsDir: string): TaskFiles | undefined {
    const directory = taskFilesDirectory(secretsDir, taskId);
    const planned: TaskFile[] = [];
    const plan = (kind: TaskFile['kind'], objectId: string, objectName: string, target: FileTarget, baseDir: string) => {
      const containerPath = posix.resolve(baseDir, target.name);
      if (target.name.trim() === '' || containerPath === baseDir || containerPath === '/') {
        throw errors.invalidArgument(`invalid ${kind} reference ${objectName}: "${target.name}" is not a file path`, { objectId });
      }
      planned.push({
        kind,
        objectId,
        containerPath,
        hostPath: posix.join(directory, containerPath),
        uid: numericOwner(kind, objectName, 'uid', target.uid),
        gid: numericOwner(kind, objectName, 'gid', target.gid),
        mode: target.mode === 0 ? DEFAULT_FILE_MODE : target.mode & 0o7777,
      });
    };
    for (const ref of spec.secrets) if (ref.file !== undefined) plan('secret', ref.secretId, ref.secretName, ref.file, SECRETS_TARGET_DIR);
    for (const ref of spec.configs) if (ref.file !== undefined) plan('config', ref.configId, ref.configName, ref.file, CONFIGS_TARGET_DIR);
    return planned.length === 0 ? undefined : new TaskFiles(directory, planned);
  }

  /**
   * Mounts the tmpfs (unless it already is: a restarted agent finds it in place) and writes every file
   * with its owner and mode. Fails with FAILED_PRECONDITION when a secret or config was not delivered
   * with the task, and with INTERNAL when the tmpfs cannot be mounted; nothing is written then.
   */
  async write(dependencies: TaskDependencies): Promise<void> {
    const contents = this.files.map((file) => ({ file, data: dataOf(file, dependencies) }));
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    if (!(await isMountPoint(this.directory))) {
      const size = PAGE_SIZE * (1 + contents.reduce((pages, { data }) => pages + Math.ceil(data.length / PAGE_SIZE), 0));
      await runMountCommand('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700,nodev,nosuid,noexec`, 'tmpfs', this.directory]);
      // Writing into a directory that is not our tmpfs would put secrets on the host's disk.
      if (!(await isMountPoint(this.directory))) throw errors.internal(`no tmpfs is mounted at ${this.directory}`);
    }
    for (const { file, data } of contents) {
      await mkdir(posix.dirname(file.hostPath), { recursive: true, mode: 0o700 });
      await writeFile(file.hostPath, data, { mode: 0o600 });
      await chown(file.hostPath, file.uid, file.gid);
      // After chown, which clears set-id bits, so the requested mode is exactly what stays.
      await chmod(file.hostPath, file.mode);
    }
  }

  /** Unmounts the tmpfs, which frees the data, and removes its mount point. Nothing there is fine. */
  remove(): Promise<void> {
    return removeTaskFiles(this.directory);
  }
}

/** The mount point of a task's tmpfs. Throws INVALID_ARGUMENT for an ID that is not a plain name. */
export function taskFilesDirectory(secretsDir: string, taskId: string): string {
  if (!/^[\w.-]+$/.test(taskId) || taskId === '.' || taskId === '..') throw errors.invalidArgument(`invalid task ID "${taskId}"`);
  return posix.join(secretsDir, taskId);
}

/** Unmounts a task's tmpfs, which frees its data, and removes the mount point. Nothing there is fine. */
export async function removeTaskFiles(directory: string): Promise<void> {
  if (await isMountPoint(directory)) await runMountCommand('umount', [directory]);
  await rm(directory, { recursive: true, force: true });
}

/** The IDs of the tasks that have a directory under `secretsDir` (a tmpfs, or what is left of one). */
export async function tasksWithFiles(secretsDir: string): Promise<string[]> {
  try {
    const entries = await readdir(secretsDir, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function numericOwner(kind: TaskFile['kind'], objectName: string, field: 'uid' | 'gid', value: string): number {
  if (value === '') return 0;
  if (!/^\d+$/.test(value)) throw errors.invalidArgument(`invalid ${kind} reference ${objectName}: ${field} "${value}" is not a number`);
  return Number(value);
}

function dataOf(file: TaskFile, dependencies: TaskDependencies): Uint8Array {
  const object = file.kind === 'secret' ? dependencies.secrets.get(file.objectId) : dependencies.configs.get(file.objectId);
  if (object?.spec === undefined) {
    throw errors.failedPrecondition(`${file.kind} ${file.objectId} was not delivered with the task`, { objectId: file.objectId });
  }
  return object.spec.data;
}

/** A directory is a mount point when it sits on another filesystem than its parent. */
async function isMountPoint(directory: string): Promise<boolean> {
  try {
    const [own, parent] = await Promise.all([stat(directory), stat(posix.dirname(directory))]);
    return own.dev !== parent.dev;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function runMountCommand(command: 'mount' | 'umount', args: string[]): Promise<void> {
  try {
    await run(command, args);
  } catch (err) {
    const stderr = (err as { stderr?: unknown }).stderr;
    const reason = typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : (err as Error).message;
    throw errors.internal(`${command} ${args.at(-1) ?? ''} failed: ${reason}`);
  }
}
