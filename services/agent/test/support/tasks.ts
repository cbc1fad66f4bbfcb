import { TaskState, Task, newId } from '@shoal/proto';

/** A task as the scheduler leaves it for a node: ASSIGNED, desired RUNNING unless said otherwise. */
export function assignedTask(nodeId: string, overrides: { desiredState?: TaskState; serviceId?: string; secretIds?: string[]; configIds?: string[] } = {}): Task {
  return Task.fromPartial({
    id: newId(),
    serviceId: overrides.serviceId ?? 'service-1',
    nodeId,
    slot: 1n,
    serviceAnnotations: { name: 'web' },
    desiredState: overrides.desiredState ?? TaskState.RUNNING,
    status: { state: TaskState.ASSIGNED, message: 'scheduler assigned task to node' },
    spec: {
      container: {
        image: 'shoal/busybox:1',
        secrets: (overrides.secretIds ?? []).map((secretId) => ({ secretId, secretName: secretId })),
        configs: (overrides.configIds ?? []).map((configId) => ({ configId, configName: configId })),
      },
    },
  });
}
