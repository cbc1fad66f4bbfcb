import { isShoalError } from '@shoal/errors';
import { Lease, Network, Node, NodeRole, Secret, Service, Task, TaskState } from '@shoal/proto';
import type { Commit, MemoryStoreOptions, Watch } from '../src/index.js';

type PartialOf<T extends { fromPartial(object: never): unknown }> = Parameters<T['fromPartial']>[0];

/** A service named `name`, plus whatever `rest` sets. */
export function service(id: string, name: string, rest: PartialOf<typeof Service> = {}): Service {
  return Service.fromPartial({ ...rest, id, spec: { ...rest.spec, annotations: { name, ...rest.spec?.annotations } } });
}

/** A task of `serviceId`, in slot 1 and desired RUNNING unless `rest` says otherwise. */
export function task(id: string, serviceId: string, rest: PartialOf<typeof Task> = {}): Task {
  return Task.fromPartial({ slot: 1n, desiredState: TaskState.RUNNING, ...rest, id, serviceId });
}

/** A worker node reporting `hostname`. */
export function node(id: string, hostname: string, rest: PartialOf<typeof Node> = {}): Node {
  return Node.fromPartial({ role: NodeRole.WORKER, ...rest, id, description: { hostname } });
}

export function network(id: string, name: string): Network {
  return Network.fromPartial({ id, spec: { annotations: { name } } });
}

export function secret(id: string, name: string): Secret {
  return Secret.fromPartial({ id, spec: { annotations: { name }, data: Buffer.from([1, 2, 3]) } });
}

export function lease(id: string, name: string, epoch: bigint, expiry: Date): Lease {
  return Lease.fromPartial({ id, name, holder: 'instance-1', epoch, expiry });
}

/** A clock that starts at 2025-01-01T00:00:00Z and moves one second per reading. */
export function steppingClock(): () => Date {
  let seconds = 0;
  return () => new Date(Date.UTC(2025, 0, 1) + 1000 * seconds++);
}

/** Options every test store uses: a deterministic clock. */
export function testOptions(options: MemoryStoreOptions = {}): MemoryStoreOptions {
  return { clock: steppingClock(), ...options };
}

/** Reads `count` commits from `watch` (waiting for them as needed). */
export async function take(watch: Watch, count: number): Promise<Commit[]> {
  const commits: Commit[] = [];
  while (commits.length < count) {
    const next = await watch.next();
    if (next.done === true) throw new Error(`watch ended after ${commits.length} of ${count} commits`);
    commits.push(next.value);
  }
  return commits;
}

/** Reads whatever `watch` has already queued, without waiting for more, by closing it after a turn. */
export async function drain(watch: Watch): Promise<Commit[]> {
  const commits: Commit[] = [];
  const pending = (async () => {
    for await (const commit of watch) commits.push(commit);
  })();
  await new Promise((resolve) => setImmediate(resolve));
  watch.close();
  await pending;
  return commits;
}

/** What a commit says happened, compactly: `["create task t1", …]`. */
export function summary(commit: Commit): string[] {
  return commit.events.map((event) => `${event.action} ${event.kind} ${event.object.id}`);
}

/** Returns what `action` throws; fails the test if it returns. */
export function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

/** The code and message of an error, to compare in one assertion; anything but a ShoalError has no code. */
export function describeError(error: unknown): { code: string | undefined; message: string } {
  return { code: isShoalError(error) ? error.code : undefined, message: error instanceof Error ? error.message : String(error) };
}

/** What `action` throws, as {@link describeError} describes it; fails the test if it returns. */
export function failure(action: () => unknown): { code: string | undefined; message: string } {
  return describeError(thrown(action));
}
