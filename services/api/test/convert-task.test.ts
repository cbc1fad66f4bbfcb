import { ErrorCode } from '@shoal/errors';
import {
  type IPAMOptions,
  Network,
  PortConfig_Protocol,
  PortConfig_PublishMode,
  Task,
  TaskSpec,
  TaskState,
  TaskStatus,
  parseTaskState,
} from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { Decoder } from '../src/convert/decode.js';
import { taskSpecFromDocker, taskToDocker } from '../src/convert/task.js';

type Json = Record<string, any>;

// Tasks as dockerd 20.10 returned them in the recorded transcripts named beside each, with the
// times cut to the milliseconds Shoal keeps.

/** job_create_28: a job task before scheduling: no slot (sic, swarmkit's), no node, iteration 0. */
const pendingJobTask = {
  ID: '92i1hnu7pt7hk0s4z9i71xzq5',
  Version: { Index: 650 },
  CreatedAt: '2026-11-21T19:51:38.358Z',
  UpdatedAt: '2026-11-21T19:51:38.359Z',
  Labels: {},
  Spec: {
    ContainerSpec: {
      Image: 'swarmtest/busybox:1',
      Args: ['sh', '-c', 'echo done'],
      Init: false,
      DNSConfig: {},
      Isolation: 'default',
    },
    Resources: { Limits: {}, Reservations: {} },
    Placement: {},
    ForceUpdate: 0,
  },
  ServiceID: '3w9vi8pu2q53xpzwm54cg4sh5',
  Status: {
    Timestamp: '2026-11-21T19:51:38.359Z',
    State: 'pending',
    Message: 'pending task scheduling',
    PortStatus: {},
  },
  DesiredState: 'complete',
  JobIteration: {},
};

/** svc_update_env_28: the replacement task of a rolling update, created and held at ready. */
const newUpdateTask = {
  ID: 'unmu8p2l773blmp8i2m084uzq',
  Version: { Index: 252 },
  CreatedAt: '2026-11-21T19:44:05.744Z',
  UpdatedAt: '2026-11-21T19:44:05.744Z',
  Labels: {},
  Spec: {
    ContainerSpec: {
      Image: 'swarmtest/busybox:1',
      Args: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo "line $i"; echo "err $i" >&2; sleep 1; done'],
      Env: ['FOO=bar'],
      Init: false,
      DNSConfig: {},
      Isolation: 'default',
    },
    Resources: { Limits: {}, Reservations: {} },
    Placement: {},
    ForceUpdate: 0,
  },
  ServiceID: 'mb6b37cx8ev7fzc0dqbnzg59t',
  Slot: 2,
  Status: { Timestamp: '2026-11-21T19:44:05.744Z', State: 'new', Message: 'created', PortStatus: {} },
  DesiredState: 'ready',
};

/** stk_deploy_wait_28: a stack task placed on its node, attached to the stack's network. */
const assignedStackTask = {
  ID: 'a2z8c677xmsbx95x6r7d76vid',
  Version: { Index: 470 },
  CreatedAt: '2026-11-21T19:46:31.518Z',
  UpdatedAt: '2026-11-21T19:46:31.576Z',
  Labels: {},
  Spec: {
    ContainerSpec: {
      Image: 'swarmtest/busybox:1',
      Labels: { 'com.docker.stack.namespace': 'probe_sw' },
      Args: ['sleep', '100000'],
      Privileges: { CredentialSpec: null, SELinuxContext: null },
      Isolation: 'default',
    },
    Resources: {},
    Placement: {},
    Networks: [{ Target: 'rom3fiqhr8vc8ecqq2vlf04nu', Aliases: ['app'] }],
    ForceUpdate: 0,
  },
  ServiceID: 'z5guadwz1hxpeyaypay464s9w',
  Slot: 1,
  NodeID: 'plm4mybsj4rzwpzo2a7oe05kw',
  Status: {
    Timestamp: '2026-11-21T19:46:31.576Z',
    State: 'assigned',
    Message: 'scheduler assigned task to node',
    PortStatus: {},
  },
  DesiredState: 'running',
  NetworksAttachments: [
    {
      Network: {
        ID: 'rom3fiqhr8vc8ecqq2vlf04nu',
        Version: { Index: 465 },
        CreatedAt: '2026-11-21T19:46:31.506Z',
        UpdatedAt: '2026-11-21T19:46:31.508Z',
        Spec: {
          Name: 'probe_sw_default',
          Labels: { 'com.docker.stack.namespace': 'probe_sw' },
          DriverConfiguration: { Name: 'overlay' },
          Scope: 'swarm',
        },
        DriverState: { Name: 'overlay', Options: { 'com.docker.network.driver.overlay.vxlanid_list': '4105' } },
        IPAMOptions: { Driver: { Name: 'default' }, Configs: [{ Subnet: '10.0.7.0/24', Gateway: '10.0.7.1' }] },
      },
      Addresses: ['10.0.7.3/24'],
    },
  ],
};

/** svc_logs_20: a running task with its container, attached to the ingress network. */
const runningIngressTask = {
  ID: 'j9gi95fhn8lfvy1302fdhwun4',
  Version: { Index: 359 },
  CreatedAt: '2026-11-21T19:44:51.74Z',
  UpdatedAt: '2026-11-21T19:44:56.117Z',
  Labels: {},
  Spec: {
    ContainerSpec: {
      Image: 'swarmtest/busybox:1',
      Args: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo "line $i"; echo "err $i" >&2; sleep 1; done'],
      Init: false,
      DNSConfig: {},
      Isolation: 'default',
    },
    Resources: { Limits: {}, Reservations: {} },
    Placement: {},
    ForceUpdate: 1,
  },
  ServiceID: 'lyh8xrfuux147mlls9ftdt40z',
  Slot: 1,
  NodeID: 'plm4mybsj4rzwpzo2a7oe05kw',
  Status: {
    Timestamp: '2026-11-21T19:44:56.038Z',
    State: 'running',
    Message: 'started',
    ContainerStatus: {
      ContainerID: 'c5b3c7922687c6e1b9777a05e9ee4b907e3961317255e1f66b014689285e8aa1',
      PID: 6523,
      ExitCode: 0,
    },
    PortStatus: {},
  },
  DesiredState: 'running',
  NetworksAttachments: [
    {
      Network: {
        ID: 'thb95n59rqizw5gk1hz9671i4',
        Version: { Index: 6 },
        CreatedAt: '2026-11-21T19:34:37.328Z',
        UpdatedAt: '2026-11-21T19:34:37.343Z',
        Spec: {
          Name: 'ingress',
          Labels: {},
          DriverConfiguration: {},
          Ingress: true,
          IPAMOptions: { Driver: {} },
          Scope: 'swarm',
        },
        DriverState: { Name: 'overlay', Options: { 'com.docker.network.driver.overlay.vxlanid_list': '4096' } },
        IPAMOptions: { Driver: { Name: 'default' }, Configs: [{ Subnet: '10.0.0.0/24', Gateway: '10.0.0.1' }] },
      },
      Addresses: ['10.0.0.26/24'],
    },
  ],
};

/** svc_ps_full_28 (the rest of that response was cut by the recorder): a task that failed to start. */
const failedStatus = {
  Timestamp: '2026-11-21T19:43:45.671Z',
  State: 'failed',
  Message: 'starting',
  Err: 'starting container failed: unable to find user root: no matching entries in passwd file',
  ContainerStatus: {
    ContainerID: '3635cc6104d13fe09408e3cafa06d33f9ea9a03559129ba692be123fa7df9c13',
    PID: 0,
    ExitCode: 128,
  },
  PortStatus: {},
};

function metaFromRecorded(recorded: Json) {
  return {
    version: { index: BigInt(recorded['Version']['Index']) },
    createdAt: new Date(recorded['CreatedAt']),
    updatedAt: new Date(recorded['UpdatedAt']),
  };
}

function ipamFromRecorded(ipam: Json | undefined): IPAMOptions | undefined {
  return (
    ipam && {
      driver: { name: ipam['Driver']['Name'] ?? '', options: ipam['Driver']['Options'] ?? {} },
      configs: (ipam['Configs'] ?? []).map((config: Json) => ({
        family: 0,
        subnet: config['Subnet'] ?? '',
        range: config['Range'] ?? '',
        gateway: config['Gateway'] ?? '',
        reserved: {},
      })),
    }
  );
}

function networkFromRecorded(recorded: Json): Network {
  const spec: Json = recorded['Spec'];
  const driverConfig: Json | undefined = spec['DriverConfiguration'];
  return Network.create({
    id: recorded['ID'],
    meta: metaFromRecorded(recorded),
    spec: {
      annotations: { name: spec['Name'], labels: spec['Labels'] },
      driverConfig: driverConfig && { name: driverConfig['Name'] ?? '', options: driverConfig['Options'] ?? {} },
      attachable: spec['Attachable'] ?? false,
      ingress: spec['Ingress'] ?? false,
      ipam: ipamFromRecorded(spec['IPAMOptions']),
    },
    driverState: { name: recorded['DriverState']['Name'], options: recorded['DriverState']['Options'] },
    ipam: ipamFromRecorded(recorded['IPAMOptions']),
  });
}

function statusFromRecorded(status: Json): TaskStatus {
  const container: Json | undefined = status['ContainerStatus'];
  return TaskStatus.create({
    timestamp: new Date(status['Timestamp']),
    state: parseTaskState(status['State']),
    message: status['Message'] ?? '',
    err: status['Err'] ?? '',
    container: container && { containerId: container['ContainerID'], pid: container['PID'], exitCode: container['ExitCode'] },
    portStatus: { ports: [] },
  });
}

/** The stored Task a recorded GET /tasks entry was made from. */
function taskFromRecorded(recorded: Json): Task {
  return Task.create({
    id: recorded['ID'],
    meta: metaFromRecorded(recorded),
    annotations: { name: '', labels: recorded['Labels'] },
    spec: taskSpecFromDocker(Decoder.root(recorded['Spec'], 'TaskSpec')),
    serviceId: recorded['ServiceID'],
    slot: BigInt(recorded['Slot'] ?? 0),
    nodeId: recorded['NodeID'] ?? '',
    status: statusFromRecorded(recorded['Status']),
    desiredState: parseTaskState(recorded['DesiredState']),
    networks: (recorded['NetworksAttachments'] ?? []).map((attachment: Json) => ({
      network: networkFromRecorded(attachment['Network']),
      addresses: attachment['Addresses'],
    })),
    jobIteration: recorded['JobIteration'] && { index: BigInt(recorded['JobIteration']['Index'] ?? 0) },
  });
}

function asJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

/** A task of a replicated service on a node, running busybox. */
function runningTask(fields: Partial<Task> = {}): Task {
  return Task.create({
    id: 'task1',
    spec: TaskSpec.create({ container: { image: 'busybox:1' } }),
    serviceId: 'svc1',
    slot: 1n,
    nodeId: 'node1',
    status: { timestamp: new Date('2026-01-01T00:00:00Z'), state: TaskState.RUNNING, message: 'started' },
    desiredState: TaskState.RUNNING,
    ...fields,
  });
}

describe('taskToDocker', () => {
  it.each([
    ['a pending job task', pendingJobTask],
    ['a new task of a rolling update', newUpdateTask],
    ['an assigned stack task on its network', assignedStackTask],
    ['a running task on the ingress network', runningIngressTask],
  ])('writes %s as dockerd did', (_case, recorded) => {
    expect(asJson(taskToDocker(taskFromRecorded(recorded)))).toStrictEqual(recorded);
  });

  it('writes the status of a failed task with its error and container as dockerd did', () => {
    const task = runningTask({ status: statusFromRecorded(failedStatus), desiredState: TaskState.SHUTDOWN });
    const shown = taskToDocker(task);
    expect(asJson(shown.Status)).toStrictEqual(failedStatus);
    expect(shown.DesiredState).toBe('shutdown');
  });

  it('names a global task by its node: no slot, a node ID', () => {
    const shown = asJson(taskToDocker(runningTask({ slot: 0n, nodeId: 'node7' }))) as Json;
    expect('Slot' in shown).toBe(false);
    expect(shown['NodeID']).toBe('node7');
  });

  it('shows the ports the task published on its node', () => {
    const hostPort = {
      name: '',
      protocol: PortConfig_Protocol.UDP,
      targetPort: 81,
      publishedPort: 30001,
      publishMode: PortConfig_PublishMode.HOST,
    };
    const task = runningTask();
    task.status!.portStatus = { ports: [hostPort] };
    expect(asJson(taskToDocker(task).Status.PortStatus)).toStrictEqual({
      Ports: [{ Protocol: 'udp', TargetPort: 81, PublishedPort: 30001, PublishMode: 'host' }],
    });
  });

  it('shows a task’s own name and the generic resources reserved for it', () => {
    const task = runningTask({
      annotations: { name: 'custom-name', labels: { a: 'b' }, indices: [] },
      assignedGenericResources: [{ discreteResourceSpec: { kind: 'gpu', value: 2n } }],
    });
    const shown = asJson(taskToDocker(task)) as Json;
    expect(shown['Name']).toBe('custom-name');
    expect(shown['Labels']).toStrictEqual({ a: 'b' });
    expect(shown['GenericResources']).toStrictEqual([{ DiscreteResourceSpec: { Kind: 'gpu', Value: 2 } }]);
  });

  it('writes a task nobody has reported on yet as new at Go’s zero time', () => {
    const shown = taskToDocker(Task.create({ id: 'task1', serviceId: 'svc1', slot: 1n }));
    expect(asJson(shown.Status)).toStrictEqual({ Timestamp: '0001-01-01T00:00:00Z', State: 'new', PortStatus: {} });
    expect(asJson(shown.Spec)).toStrictEqual({ ForceUpdate: 0 });
  });

  it('marks the network-attachment runtime of a task standing for an outside container', () => {
    const task = runningTask({ spec: TaskSpec.create({ attachment: { containerId: 'c0ffee' } }) });
    expect(asJson(taskToDocker(task).Spec)).toStrictEqual({
      NetworkAttachmentSpec: { ContainerID: 'c0ffee' },
      ForceUpdate: 0,
      Runtime: 'attachment',
    });
  });

  it('refuses to name a state the protocol does not define', () => {
    const task = runningTask({ desiredState: TaskState.UNRECOGNIZED });
    expect(() => taskToDocker(task)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
  });

});
