import { describe, expect, it } from 'vitest';
import { Cluster, Lease, Service, Task } from '../src/gen/shoal/v1/objects.js';
import { Message, MessageType } from '../src/gen/shoal/v1/raft.js';
import { ChangeAction, ObjectKind, StoreTransaction } from '../src/gen/shoal/v1/store.js';
import { TaskState } from '../src/gen/shoal/v1/types.js';

const maxUint64 = 18446744073709551615n;
const aboveSafeInteger = 2n ** 53n + 1n;

describe('64-bit integers on the wire', () => {
  it('round-trips a task whose slot and versions are 2^64-1 exactly', () => {
    const task = Task.fromPartial({
      id: 'task1',
      meta: { version: { index: maxUint64 }, createdAt: new Date('2026-01-02T03:04:05.678Z') },
      serviceId: 'svc1',
      slot: maxUint64,
      specVersion: { index: aboveSafeInteger },
      desiredState: TaskState.RUNNING,
      status: { state: TaskState.ASSIGNED, container: { containerId: 'c1', pid: 42, exitCode: 0 } },
      spec: { forceUpdate: maxUint64, placement: { maxReplicas: aboveSafeInteger } },
    });

    const decoded = Task.decode(Task.encode(task).finish());

    expect(decoded).toEqual(task);
    expect(decoded.slot).toBe(maxUint64);
    expect(decoded.meta?.version?.index).toBe(maxUint64);
    expect(decoded.specVersion?.index).toBe(aboveSafeInteger);
    expect(decoded.spec?.forceUpdate).toBe(maxUint64);
  });

  it('round-trips a service whose replica count and spec version exceed 2^53', () => {
    const service = Service.fromPartial({
      id: 'svc1',
      spec: {
        annotations: { name: 'web', labels: { tier: 'front' } },
        replicated: { replicas: aboveSafeInteger },
        task: { container: { image: 'nginx', pidsLimit: -1n, oomScoreAdj: -(2n ** 62n) } },
      },
      specVersion: { index: maxUint64 },
      previousSpecVersion: { index: maxUint64 - 1n },
    });

    const decoded = Service.decode(Service.encode(service).finish());

    expect(decoded).toEqual(service);
    expect(decoded.spec?.replicated?.replicas).toBe(aboveSafeInteger);
    expect(decoded.spec?.task?.container?.oomScoreAdj).toBe(-(2n ** 62n));
  });

  it('round-trips a negative int64 (keep all task history) and a large lamport clock', () => {
    const cluster = Cluster.fromPartial({
      id: 'cluster1',
      spec: { orchestration: { taskHistoryRetentionLimit: -1n } },
      encryptionKeyLamportClock: maxUint64,
    });

    const decoded = Cluster.decode(Cluster.encode(cluster).finish());

    expect(decoded.spec?.orchestration?.taskHistoryRetentionLimit).toBe(-1n);
    expect(decoded.encryptionKeyLamportClock).toBe(maxUint64);
  });

  it('round-trips a lease epoch of 2^64-1', () => {
    const lease = Lease.fromPartial({ id: 'l1', name: 'orchestrator', holder: 'i1', epoch: maxUint64 });
    expect(Lease.decode(Lease.encode(lease).finish()).epoch).toBe(maxUint64);
  });

  it('round-trips raft terms and indexes of 2^64-1 in a message with entries', () => {
    const message = Message.fromPartial({
      type: MessageType.MSG_APP,
      to: maxUint64,
      from: aboveSafeInteger,
      term: maxUint64,
      logTerm: maxUint64 - 1n,
      index: maxUint64,
      commit: maxUint64,
      entries: [{ term: maxUint64, index: maxUint64, data: Buffer.from([1, 2, 3]) }],
    });
    expect(Message.decode(Message.encode(message).finish())).toEqual(message);
  });

  it('round-trips a store transaction with a lease-epoch precondition', () => {
    const transaction = StoreTransaction.fromPartial({
      requestId: maxUint64,
      changes: [
        { action: ChangeAction.UPDATE, object: { task: { id: 't1', meta: { version: { index: maxUint64 } } } } },
        { action: ChangeAction.DELETE, target: { kind: ObjectKind.TASK, id: 't2', version: { index: 7n } } },
      ],
      preconditions: [{ kind: ObjectKind.LEASE, id: 'l1', leaseEpoch: maxUint64 }],
      proposedAt: new Date('2026-11-21T10:00:00.123Z'),
    });
    expect(StoreTransaction.decode(StoreTransaction.encode(transaction).finish())).toEqual(transaction);
  });

  it('refuses to encode a uint64 that does not fit rather than wrapping it', () => {
    expect(() => Task.encode(Task.fromPartial({ slot: maxUint64 + 1n }))).toThrow(/too large/);
  });
});
