import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errors } from '@shoal/errors';

/**
 * Which node of the cluster this host is: the one fact the API cannot read from the store, since
 * every manager's API reads the same store. Kept in the API's data directory (a node ID, nothing
 * secret) so `docker info` still names this node after a restart, and removed by `swarm leave`.
 */
export class LocalNodeFile {
  readonly #path: string;
  #nodeId: string | undefined;

  private constructor(path: string, nodeId: string | undefined) {
    this.#path = path;
    this.#nodeId = nodeId;
  }

  static async open(dataDir: string): Promise<LocalNodeFile> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const path = join(dataDir, 'local-node.json');
    try {
      const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
      const nodeId = (parsed as { nodeId?: unknown }).nodeId;
      if (typeof nodeId !== 'string' || nodeId === '') throw errors.internal(`${path} names no node: delete it, or run docker swarm leave --force`);
      return new LocalNodeFile(path, nodeId);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new LocalNodeFile(path, undefined);
      throw err;
    }
  }

  /** This host's node ID, or undefined when it is in no swarm. */
  get nodeId(): string | undefined {
    return this.#nodeId;
  }

  async set(nodeId: string): Promise<void> {
    const temporary = `${this.#path}.tmp`;
    await writeFile(temporary, `${JSON.stringify({ nodeId })}\n`, { mode: 0o600 });
    await rename(temporary, this.#path);
    this.#nodeId = nodeId;
  }

  async clear(): Promise<void> {
    await rm(this.#path, { force: true });
    this.#nodeId = undefined;
  }
}
