/**
 * Builders of store objects for tests (`@shoal/store/testing`), so every package's tests describe
 * objects the same way. Test-only: not re-exported from the package's main entry.
 */
import { Lease, Network, Node, NodeRole, Secret, Service, Task, TaskState } from '@shoal/proto';
import type { Commit } from './watch.js';

type PartialOf<T extends { fromPartial(object: never): unknown }> = Parameters<T['fromPartial']>[0];

/** A service named `name`, plus whatever `rest` sets. */
export function service(id: string, name: string, rest: PartialOf<typeof Service> = {}): Service {
  return Service.fromPartial({ ...rest, id, spec: { ...rest.spec, annotations: { name, ...rest.spec?.annotations } } });
}

/** A task of `serviceId`, in slot 1 and desired RUNNING unless `rest` says otherwise. */
export function task(id: string, serviceId: string, rest: PartialOf<typeof Task> = {}): Task {
  return Task.fromPartial({ slot: 1n, desiredState: TaskState.RUNNING, ...rest, id, serviceId });
}

/** A worker node reporting `hostname`, unless `rest` says otherwise. */
export function node(id: string, hostname: string, rest: PartialOf<typeof Node> = {}): Node {
  return Node.fromPartial({ role: NodeRole.WORKER, ...rest, id, description: { hostname } });
}

export function network(id: string, name: string): Network {
  return Network.fromPartial({ id, spec: { annotations: { name } } });
}

/** A secret named `name` holding `data` (three bytes unless told). */
export function secret(id: string, name: string, data: Buffer = Buffer.from([1, 2, 3])): Secret {
  return Secret.fromPartial({ id, spec: { annotations: { name }, data } });
}

export function lease(id: string, name: string, epoch: bigint, expiry: Date): Lease {
  return Lease.fromPartial({ id, name, holder: 'instance-1', epoch, expiry });
}

/** Reads the next `count` commits of a watch, local or remote (waiting for them as needed). */
export async function take(watch: AsyncIterator<Commit>, count: number): Promise<Commit[]> {
  const commits: Commit[] = [];
  while (commits.length < count) {
    const next = await watch.next();
    if (next.done === true) throw new Error(`watch ended after ${commits.length} of ${count} commits`);
    commits.push(next.value);
  }
  return commits;
}
