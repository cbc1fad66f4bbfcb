import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectBus, subjects, type BusConnection, type LogPublication, type LogSubscription } from '@shoal/bus';
import { Node, NodeRole, NodeStatus_State, Task, TaskState } from '@shoal/proto';
import { captureLogs } from '@shoal/runtime/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCKER_CLIS, runDocker } from '@shoal/testkit';
import { ShoalHost } from './support/shoal-host.js';

const NODE_ID = 'lognode000000000000000001';

/**
 * Plays the part the node agent takes in issue 6: answers each log subscription naming its node
 * with the lines of the tasks asked for, then says it is done unless the reader follows.
 */
function answerAsNode(bus: BusConnection, lines: (taskId: string) => string[], serviceOf: (taskId: string) => string): void {
  const subscription = bus.nc.subscribe(subjects.logSubscribe);
  void (async () => {
    for await (const message of subscription) {
      const request = message.json<LogSubscription>();
      if (!request.nodeIds.includes(NODE_ID)) continue;
      const reply = (publication: LogPublication) => bus.nc.publish(subjects.logStream(request.id), JSON.stringify(publication));
      for (const taskId of request.taskIds) {
        for (const [index, line] of lines(taskId).entries()) {
          reply({
            nodeId: NODE_ID,
            serviceId: serviceOf(taskId),
            taskId,
            stream: index % 2 === 0 ? 'stdout' : 'stderr',
            time: `2026-11-21T19:45:1${index}.431126636Z`,
            line,
          });
        }
      }
      if (!request.follow) reply({ nodeId: NODE_ID, done: true });
    }
  })();
}

describe('docker service logs through Shoal', () => {
  let host: ShoalHost;
  let bus: BusConnection;
  let configDir: string;
  const taskId = 'logtask000000000000000001';

  beforeAll(async () => {
    host = await ShoalHost.start();
    configDir = mkdtempSync(join(tmpdir(), 'shoal-logs-test-'));
    bus = await connectBus({ url: host.natsUrl, name: 'test-node', log: captureLogs({ level: 'warn' }).log });
    let serviceId = '';
    answerAsNode(bus, (id) => (id === taskId ? ['line 1', 'err 1', 'line 2'] : []), () => serviceId);
    const docker = DOCKER_CLIS[0].path;
    expect((await runDocker(docker, host.dockerHost, ['swarm', 'init'], { configDir })).code).toBe(0);
    const created = await runDocker(docker, host.dockerHost, ['service', 'create', '-d', '--name', 'logsvc', 'shoal/busybox:1', 'sleep', '1'], { configDir });
    expect(created.code).toBe(0);
    serviceId = created.stdout.trim();
    const store = host.storeClient();
    try {
      const node = Node.fromPartial({
        id: NODE_ID,
        spec: { desiredRole: NodeRole.WORKER },
        description: { hostname: 'lognode' },
        status: { state: NodeStatus_State.READY },
      });
      // The task the orchestrator and scheduler would have made, on the node that ran it.
      const task = Task.fromPartial({
        id: taskId,
        serviceId,
        slot: 1n,
        nodeId: NODE_ID,
        serviceAnnotations: { name: 'logsvc' },
        spec: { container: { image: 'shoal/busybox:1' } },
        desiredState: TaskState.RUNNING,
        status: { state: TaskState.RUNNING },
      });
      await store.commit({ changes: [{ action: 'create', kind: 'node', object: node }, { action: 'create', kind: 'task', object: task }] });
    } finally {
      store.close();
    }
  });
  afterAll(async () => {
    await bus?.close();
    await host?.stop();
    rmSync(configDir, { recursive: true, force: true });
  });

  it.each(DOCKER_CLIS)('$name prints each line with its task and node, stdout and stderr apart', async ({ path }) => {
    const result = await runDocker(path, host.dockerHost, ['service', 'logs', 'logsvc'], { configDir });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual([`logsvc.1.${taskId.slice(0, 12)}@lognode    | line 1`, `logsvc.1.${taskId.slice(0, 12)}@lognode    | line 2`]);
    expect(result.stderr.trim()).toBe(`logsvc.1.${taskId.slice(0, 12)}@lognode    | err 1`);
  });

  it('adds timestamps and details when asked, and answers a task\'s logs by task ID', async () => {
    const result = await runDocker(DOCKER_CLIS[0].path, host.dockerHost, ['service', 'logs', '--timestamps', '--details', '--no-task-ids', taskId], { configDir });
    expect(result.code, result.stderr).toBe(0);
    // The CLI takes the com.docker.swarm.* details to name the task and node, leaving no other details to print.
    expect(result.stdout.split('\n')[0]).toBe('2026-11-21T19:45:10.431126636Z logsvc.1@lognode    |  line 1');
  });

  it('ends at once, with nothing, for a service whose tasks never ran on a node', async () => {
    const docker = DOCKER_CLIS[0].path;
    expect((await runDocker(docker, host.dockerHost, ['service', 'create', '-d', '--name', 'quiet', 'shoal/busybox:1'], { configDir })).code).toBe(0);
    const result = await runDocker(docker, host.dockerHost, ['service', 'logs', 'quiet'], { configDir });
    expect(result).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });
});
