import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, hasCode } from '@shoal/errors';
import { RaftMembershipService, RaftUnlockService, type ListMembersResponse } from '@shoal/proto';
import { createChannelCredentials, createClient, unaryCall, type ClientTls } from '@shoal/rpc';
import { createStoreClient, type StoreApiClient } from '@shoal/store-client';
import { createTestPki, freeLoopbackPort, type TestCertificateAuthority } from '@shoal/testkit';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import { eventually } from './cluster.js';
import { network } from './objects.js';

/** The built service: real-process tests run exactly what `shoal up` runs. */
export const RAFT_MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** How a process ended. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What a service that stopped cleanly exits with. */
export const CLEAN_EXIT: ProcessExit = { code: 0, signal: null };

/** One line of the JSON log a Shoal process writes (see `createLogger` in @shoal/runtime). */
export type LogEntry = { level: string; msg: string } & Record<string, unknown>;

/**
 * One `node services/raft/dist/main.js` process with its own data directory, certificate files and
 * log file, which it can be stopped, killed and started again from.
 */
export class ReplicaProcess {
  /** The replica's `SHOAL_DATA_DIR`. */
  readonly dataDir: string;
  /** Everything the process wrote to stdout and stderr, over all its runs, as an operator's log file holds it. */
  readonly logFile: string;
  readonly env: NodeJS.ProcessEnv;
  /** How the latest run ended; undefined while it runs (or before the first). */
  lastExit: ProcessExit | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<ProcessExit> = Promise.resolve(CLEAN_EXIT);
  /** Where the latest run's output starts in the log file. */
  #runStartsAt = 0;
  #client: StoreApiClient | undefined;

  constructor(
    readonly nodeId: string,
    readonly address: string,
    root: string,
    ca: TestCertificateAuthority,
    private readonly clientTls: ClientTls,
    joinVia: string | undefined,
  ) {
    if (!existsSync(RAFT_MAIN)) throw new Error(`${RAFT_MAIN} is missing: build services/raft (npx tsc -b) before running its tests`);
    const dir = join(root, nodeId);
    mkdirSync(dir, { recursive: true });
    const identity = ca.issue({ cn: nodeId, ou: 'swarm-manager', o: 'process-cluster', serverNames: [MANAGER_SERVER_NAME, '127.0.0.1'] });
    const file = (name: string, content: string) => {
      const path = join(dir, name);
      writeFileSync(path, content, { mode: 0o600 });
      return path;
    };
    this.dataDir = join(dir, 'data');
    this.logFile = join(dir, 'replica.log');
    this.env = {
      ...process.env,
      SHOAL_DATA_DIR: this.dataDir,
      SHOAL_RAFT_LISTEN: address,
      SHOAL_RAFT_JOIN: joinVia ?? '',
      SHOAL_TLS_CA: file('ca.pem', identity.caCertPem),
      SHOAL_TLS_CERT: file('node.crt', identity.certPem),
      SHOAL_TLS_KEY: file('node.key', identity.keyPem),
      SHOAL_RAFT_TICK: '50ms',
      SHOAL_NATS_URL: '',
      SHOAL_LOG_LEVEL: 'info',
    };
  }

  get running(): boolean {
    return this.#child !== undefined && this.lastExit === undefined;
  }

  /** Starts the process and resolves once it reports ready over IPC, as `shoal up` waits for it; rejects if it exits first. */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.running) throw new Error(`${this.nodeId} is already running`);
    this.#closeClient();
    this.#runStartsAt = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
    // The process writes its log straight into the file, so what it logged is there the moment it logged it.
    const log = openSync(this.logFile, 'a', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [RAFT_MAIN], { env: this.env, stdio: ['ignore', log, log, 'ipc'] });
    } finally {
      closeSync(log);
    }
    this.#child = child;
    this.lastExit = undefined;
    this.#exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.lastExit = { code, signal };
        resolve(this.lastExit);
      }),
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.nodeId} did not report ready:\n${this.runLog().join('\n')}`)), timeoutMs);
      child.on('message', (message: { type?: string }) => {
        if (message.type !== 'shoal.ready') return;
        clearTimeout(timer);
        resolve();
      });
      void this.#exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${this.nodeId} exited (${code ?? signal}) before it was ready:\n${this.runLog().join('\n')}`));
      });
    });
  }

  /** SIGTERM, as `docker stop` or a host shutdown sends it; resolves with how the process exited. */
  async stop(): Promise<ProcessExit> {
    if (!this.running) throw new Error(`${this.nodeId} is not running`);
    return this.#end('SIGTERM');
  }

  /** SIGKILL: no shutdown, no flush; what is on disk is all that survives. Of a replica that is not running, only closes its client. */
  async kill(): Promise<void> {
    if (this.running) await this.#end('SIGKILL');
    else this.#closeClient();
  }

  /** A Store API client of this run of the replica, as a manager that is not a raft member (an API service) calls it. */
  client(): StoreApiClient {
    this.#client ??= createStoreClient({ address: this.address, tls: this.clientTls, serverName: MANAGER_SERVER_NAME });
    return this.#client;
  }

  listMembers(): Promise<ListMembersResponse> {
    return this.#call(RaftMembershipService.listMembers, {});
  }

  /** RaftUnlock.Unlock: what a manager's API relays for `docker swarm unlock`. */
  unlock(unlockKey: string): Promise<unknown> {
    return this.#call(RaftUnlockService.unlock, { unlockKey });
  }

  /** The lines the latest run wrote. */
  runLog(): string[] {
    if (!existsSync(this.logFile)) return [];
    return readFileSync(this.logFile).subarray(this.#runStartsAt).toString('utf8').split('\n').filter((line) => line !== '');
  }

  /** The JSON log entries of the latest run (lines that are not JSON, such as a crash's stack on stderr, are left out). */
  runLogEntries(): LogEntry[] {
    return this.runLog().flatMap((line) => {
      try {
        return [JSON.parse(line) as LogEntry];
      } catch {
        return [];
      }
    });
  }

  /** Waits until the current run has logged an entry `matches` accepts, and returns it. */
  loggedEntry(matches: (entry: LogEntry) => boolean, timeoutMs = 10_000): Promise<LogEntry> {
    return eventually(() => {
      const entry = this.runLogEntries().find(matches);
      if (entry === undefined) throw new Error(`${this.nodeId} has not logged the entry awaited:\n${this.runLog().join('\n')}`);
      return entry;
    }, timeoutMs);
  }

  /** The newest segment of the replica's write-ahead log: the one appended to, where a crash can tear a record. */
  newestWalSegment(): string {
    const dir = join(this.dataDir, 'raft', 'wal');
    // Segments are named `<sequence>-<first index>.wal` in fixed-width hex, so names sort in sequence.
    const newest = readdirSync(dir)
      .filter((name) => name.endsWith('.wal'))
      .sort()
      .at(-1);
    if (newest === undefined) throw new Error(`${dir} holds no WAL segment`);
    return join(dir, newest);
  }

  async #end(signal: NodeJS.Signals): Promise<ProcessExit> {
    this.#child?.kill(signal);
    const exit = await this.#exited;
    // Closed only now, so calls in flight fail as a dead server makes them fail (UNAVAILABLE), not cancelled.
    this.#closeClient();
    return exit;
  }

  #closeClient(): void {
    this.#client?.close();
    this.#client = undefined;
  }

  async #call<Req, Res>(method: Parameters<typeof unaryCall<Req, Res>>[1], request: Req): Promise<Res> {
    const client = createClient({ address: this.address, credentials: createChannelCredentials(this.clientTls), serverName: MANAGER_SERVER_NAME });
    try {
      return await unaryCall(client, method, request, { deadlineMs: 5_000 });
    } finally {
      client.close();
    }
  }
}

/**
 * Raft replicas as real processes on loopback, each with its own data directory, certificate and log
 * file under one temporary directory, from one test PKI: the first bootstraps the cluster, the others
 * join through it. `close()` kills every process and removes the directory.
 */
export class ProcessCluster {
  readonly replicas: ReplicaProcess[] = [];
  readonly root = mkdtempSync(join(tmpdir(), 'shoal-raft-processes-'));
  /** A manager certificate that is not any replica's: what the API and other services call with. */
  readonly clientTls: ClientTls;
  readonly #ca: TestCertificateAuthority;

  private constructor() {
    this.#ca = createTestPki().ca;
    const client = this.#ca.issue({ cn: 'api-client', ou: 'swarm-manager', o: 'process-cluster' });
    this.clientTls = { ca: client.caCertPem, cert: client.certPem, key: client.keyPem };
  }

  /** Starts `size` replicas one after another and resolves once every one of them votes. */
  static async start(size: number): Promise<ProcessCluster> {
    const cluster = new ProcessCluster();
    try {
      for (let i = 1; i <= size; i++) {
        const address = `127.0.0.1:${await freeLoopbackPort()}`;
        const replica = new ReplicaProcess(`manager-${i}`, address, cluster.root, cluster.#ca, cluster.clientTls, cluster.replicas[0]?.address);
        cluster.replicas.push(replica);
        await replica.start();
      }
      // Joiners start as learners, flagged by a status message until they are promoted.
      await eventually(async () => {
        const { members } = await cluster.replicas[0]!.listMembers();
        if (members.length !== size || members.some((member) => member.status?.message !== '')) {
          throw new Error(`not every member votes yet: ${JSON.stringify(members.map((member) => member.status?.message))}`);
        }
      }, 20_000);
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  get running(): ReplicaProcess[] {
    return this.replicas.filter((replica) => replica.running);
  }

  /** The running replica the running replicas name as leader, once there is one. */
  leader(timeoutMs = 20_000): Promise<ReplicaProcess> {
    return eventually(async () => {
      // Any running replica will do; a locked or starting one refuses, so ask them all.
      const { members, leader } = await Promise.any(this.running.map((replica) => replica.listMembers()));
      const nodeId = members.find((member) => member.raftId === leader)?.nodeId;
      const found = this.running.find((replica) => replica.nodeId === nodeId);
      if (found === undefined) throw new Error('no running replica leads yet');
      return found;
    }, timeoutMs);
  }

  /** The running replicas that do not lead. */
  async followers(): Promise<ReplicaProcess[]> {
    const leader = await this.leader();
    return this.running.filter((replica) => replica !== leader);
  }

  async close(): Promise<void> {
    try {
      await Promise.all(this.replicas.map((replica) => replica.kill()));
    } finally {
      rmSync(this.root, { recursive: true, force: true });
    }
  }
}

/** Failures of a write after which it may or may not have committed, and another try is in order. */
const RETRYABLE = [ErrorCode.Unavailable, ErrorCode.DeadlineExceeded];

/** Creates network `id` through `replica`; resolves with the version it was committed at. */
function createNetwork(replica: ReplicaProcess, id: string): Promise<bigint> {
  return replica.client().commit({ changes: [{ action: 'create', kind: 'network', object: network(id, id) }] }, { deadlineMs: 5_000 });
}

/** Creates networks `<prefix>-0` … `<prefix>-<count - 1>` one after another through `through`, in turn; resolves with their versions. */
export async function writeNetworks(through: readonly ReplicaProcess[], prefix: string, count: number): Promise<Map<string, bigint>> {
  const written = new Map<string, bigint>();
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${i}`;
    written.set(id, await createNetwork(through[i % through.length]!, id));
  }
  return written;
}

/**
 * A write load: writers that each create one network after another through the replicas `targets()`
 * names at the time, in turn, and keep the version of every write that was acknowledged. A write that
 * fails retryably (the replica died, the leader changed) is not acknowledged, and the next one gets a
 * new ID; any other failure stops the load and is reported by {@link reach} and {@link stop}.
 */
export class WriteLoad {
  /** The version of every acknowledged write, by network ID. */
  readonly acknowledged = new Map<string, bigint>();
  #writing = true;
  #sequence = 0;
  #failure: unknown;
  readonly #writers: Promise<void>[];

  constructor(
    private readonly prefix: string,
    private readonly targets: () => readonly ReplicaProcess[],
    writers = 2,
  ) {
    this.#writers = Array.from({ length: writers }, (_, offset) => this.#write(offset));
  }

  /** Resolves once `count` writes in all have been acknowledged. */
  async reach(count: number, timeoutMs = 20_000): Promise<void> {
    await eventually(() => {
      if (this.#failure === undefined && this.acknowledged.size < count) throw new Error(`${this.acknowledged.size} of ${count} writes acknowledged`);
    }, timeoutMs);
    this.#rethrowFailure();
  }

  /** Stops writing; resolves once every write in flight has settled. */
  async stop(): Promise<void> {
    this.#writing = false;
    await Promise.all(this.#writers);
    this.#rethrowFailure();
  }

  async #write(offset: number): Promise<void> {
    for (let attempt = offset; this.#writing; attempt++) {
      const targets = this.targets();
      const id = `${this.prefix}-${this.#sequence++}`;
      try {
        this.acknowledged.set(id, await createNetwork(targets[attempt % targets.length]!, id));
      } catch (err) {
        if (RETRYABLE.some((code) => hasCode(err, code))) continue;
        this.#failure = err;
        this.#writing = false;
      }
    }
  }

  #rethrowFailure(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/**
 * The writes of `expected` that a linearizable List through `replica` does not show at the version they
 * were acknowledged at: empty when the replica holds every one of them.
 */
export async function writesNotReadBack(replica: ReplicaProcess, expected: ReadonlyMap<string, bigint>): Promise<string[]> {
  const { objects } = await replica.client().list('network');
  const versions = new Map(objects.map((object) => [object.id, object.meta?.version?.index]));
  return [...expected].filter(([id, version]) => versions.get(id) !== version).map(([id]) => id);
}

/** A WAL segment's layout (packages/raft-storage README): the sealed-file header, then records of a header and a sealed body. */
const WAL_FILE_HEADER_BYTES = 40;
/** The bytes of a WAL record before its sealed body: magic, kind, body length and the CRC of those. */
export const WAL_RECORD_HEADER_BYTES = 16;
const WAL_RECORD_MAGIC = 'SREC';

/** The byte offset of every record of a WAL segment, the segment head first. */
export function walRecordOffsets(segment: Buffer): number[] {
  const offsets: number[] = [];
  for (let offset = WAL_FILE_HEADER_BYTES; offset < segment.length; offset += WAL_RECORD_HEADER_BYTES + segment.readUInt32LE(offset + 8)) {
    if (segment.toString('latin1', offset, offset + WAL_RECORD_MAGIC.length) !== WAL_RECORD_MAGIC) {
      throw new Error(`no WAL record at byte ${offset}: the WAL format changed, and this walk with it must`);
    }
    offsets.push(offset);
  }
  return offsets;
}
