/**
 * Serialized answers to reads, kept while the store copy stays at the version they were computed
 * at. CLI 28's `stack rm` polls `GET /tasks` without pausing and `service create` polls once per
 * 200 ms; between commits every poll would compute and serialize the same answer again.
 */
export class ReplyCache {
  readonly #entries = new Map<string, { version: bigint; json: string }>();

  constructor(private readonly capacity = 16) {}

  /** The serialized answer for `key` at `version`, computing (and keeping) it when there is none yet. */
  serialized(key: string, version: bigint, compute: () => unknown): string {
    const cached = this.#entries.get(key);
    if (cached !== undefined && cached.version === version) {
      // Least recently used goes first when full: re-insert to mark it used.
      this.#entries.delete(key);
      this.#entries.set(key, cached);
      return cached.json;
    }
    const json = `${JSON.stringify(compute())}\n`;
    this.#entries.delete(key);
    if (this.#entries.size >= this.capacity) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(key, { version, json });
    return json;
  }
}
