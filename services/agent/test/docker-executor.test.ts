import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { Mount_BindOptions_Propagation, Mount_Type, Task, newId, taskName } from '@shoal/proto';
import { TEST_LABEL } from '@shoal/testkit';
import { CONTAINER_UNHEALTHY } from '../src/docker/index.js';
import { DockerTestBed, firstLines, logsSoFar, noCancel, noDependencies, seconds, sleepForever, startTask, watchedDockerClient } from './docker-fixtures.js';

let bed: DockerTestBed;

beforeAll(async () => {
  bed = await DockerTestBed.create();
});

afterAll(async () => {
  await bed?.cleanUp();
});

describe('the task container', () => {
  it("carries the task's swarm name and labels and the spec's command, environment, user, mounts and limits", async () => {
    const hostDir = await mkdtemp(join(tmpdir(), 'shoal-test-bind-'));
    const volumeName = `shoal-test-${bed.runId}`;
    const task = bed.task(
      {
        command: ['sh', '-c'],
        args: ["trap 'exit 0' USR1; sleep 300 & wait"],
        env: ['GREETING=hello'],
        dir: '/tmp',
        user: '1000:1000',
        groups: ['2000'],
        hostname: 'web-host',
        labels: { 'com.example.tier': 'web' },
        readOnly: true,
        stopSignal: 'SIGUSR1',
        stopGracePeriod: seconds(2.5),
        hosts: ['10.0.0.7 db.internal db'],
        dnsConfig: { nameservers: ['10.0.0.2'], search: ['example.internal'], options: ['ndots:2'] },
        capabilityAdd: ['NET_ADMIN'],
        capabilityDrop: ['MKNOD'],
        pidsLimit: 64n,
        ulimits: [{ name: 'nofile', soft: 1024n, hard: 2048n }],
        mounts: [
          { type: Mount_Type.TMPFS, target: '/scratch', tmpfsOptions: { sizeBytes: 1_048_576n, mode: 0o1777 } },
          { type: Mount_Type.BIND, source: hostDir, target: '/data', readonly: true, bindOptions: { propagation: Mount_BindOptions_Propagation.PRIVATE } },
          { type: Mount_Type.VOLUME, source: volumeName, target: '/cache', volumeOptions: { labels: { [TEST_LABEL]: bed.runId } } },
        ],
      },
      { spec: { resources: { limits: { nanoCpus: 500_000_000n, memoryBytes: 64n * 1024n * 1024n } } } },
    );
    const controller = await startTask(bed.executor(), task);
    try {
      const info = await bed.inspect(task);
      expect(info.Name).toBe(`/shoal-test.1.${task.id}`);
      expect(info.State.Running).toBe(true);
      // The image's own labels are there too.
      expect(info.Config.Labels).toEqual(expect.objectContaining({
        'com.docker.swarm.task': '',
        'com.docker.swarm.task.id': task.id,
        'com.docker.swarm.task.name': `shoal-test.1.${task.id}`,
        'com.docker.swarm.node.id': bed.nodeId,
        'com.docker.swarm.service.id': task.serviceId,
        'com.docker.swarm.service.name': 'shoal-test',
        'com.example.tier': 'web',
        [TEST_LABEL]: bed.runId,
      }));
      expect(info.Config).toMatchObject({
        Entrypoint: ['sh', '-c'],
        Cmd: ["trap 'exit 0' USR1; sleep 300 & wait"],
        WorkingDir: '/tmp',
        User: '1000:1000',
        Hostname: 'web-host',
        StopSignal: 'SIGUSR1',
        // Docker takes whole seconds; the grace is rounded up, never cut short.
        StopTimeout: 3,
      });
      expect(info.Config.Env).toContain('GREETING=hello');
      expect(info.HostConfig).toMatchObject({
        NetworkMode: 'bridge',
        RestartPolicy: { Name: 'no' },
        ReadonlyRootfs: true,
        GroupAdd: ['2000'],
        NanoCpus: 500_000_000,
        Memory: 64 * 1024 * 1024,
        PidsLimit: 64,
        Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
        CapAdd: ['NET_ADMIN'],
        CapDrop: ['MKNOD'],
        ExtraHosts: ['db.internal:10.0.0.7'],
        Dns: ['10.0.0.2'],
        DnsSearch: ['example.internal'],
        DnsOptions: ['ndots:2'],
      });
      expect(info.HostConfig.Mounts).toEqual([
        { Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 1_048_576, Mode: 0o1777 } },
        { Type: 'bind', Source: hostDir, Target: '/data', ReadOnly: true, BindOptions: { Propagation: 'private' } },
        { Type: 'volume', Source: volumeName, Target: '/cache', VolumeOptions: { Labels: { [TEST_LABEL]: bed.runId } } },
      ]);
      expect(info.Mounts).toContainEqual(expect.objectContaining({ Type: 'bind', Destination: '/data', RW: false, Propagation: 'private' }));
      expect((await bed.docker.getVolume(volumeName).inspect()).Labels).toEqual({ [TEST_LABEL]: bed.runId });
    } finally {
      await controller.remove(noCancel);
      await bed.docker.getVolume(volumeName).remove();
      await rm(hostDir, { recursive: true });
    }
  });

  it("is named after the node for a global task, and args alone leave the image's entrypoint", async () => {
    const task = bed.task({ args: ['true'] }, { slot: 0n });
    const controller = bed.executor().controller(task, noDependencies);
    await controller.prepare(noCancel);
    const info = await bed.inspect(task);
    expect(info.Name).toBe(`/shoal-test.${bed.nodeId}.${task.id}`);
    expect(info.Config.Cmd).toEqual(['true']);
    expect(info.Config.Entrypoint).toBeNull();
    expect(await controller.inspect(noCancel)).toEqual({ state: 'created', containerId: info.Id });
  });

  it('is created once: a second prepare reuses the container of the same name', async () => {
    const task = bed.task({ args: ['true'] });
    await bed.executor().controller(task, noDependencies).prepare(noCancel);
    const first = await bed.inspect(task);
    await bed.executor().controller(task, noDependencies).prepare(noCancel);
    expect((await bed.inspect(task)).Id).toBe(first.Id);
  });

  it('is refused for a task that is not a container or names no image', () => {
    const executor = bed.executor();
    const notAContainer = Task.fromPartial({ id: newId(), nodeId: bed.nodeId, spec: { generic: { kind: 'vm' } } });
    expect(() => executor.controller(notAContainer, noDependencies)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument, message: 'unsupported runtime' }));
    expect(() => executor.controller(bed.task({ image: '' }), noDependencies)).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidArgument, message: 'dockerexec: image required' }),
    );
  });

  it("fails to prepare with the engine's own message when the image is neither local nor pullable", async () => {
    // `.invalid` never resolves (RFC 2606), so the daemon fails at once without reaching any registry.
    const task = bed.task({ image: 'shoal-test.invalid/missing:1', args: ['true'] });
    const controller = bed.executor().controller(task, noDependencies);
    const failure = await controller.prepare(noCancel).then(
      () => undefined,
      (err: unknown) => err as Error & { code: string },
    );
    expect(failure?.code).toBe(ErrorCode.FailedPrecondition);
    expect(failure?.message).toContain('https://shoal-test.invalid/v2/');
    expect(failure?.message).not.toContain('HTTP code');
    expect(await controller.inspect(noCancel)).toEqual({ state: 'absent' });
  });
});

describe('waiting for a task', () => {
  it("resolves with the process's exit code, zero or not", async () => {
    const executor = bed.executor();
    const failing = await startTask(executor, bed.task({ command: ['sh', '-c', 'exit 3'] }));
    const succeeding = await startTask(executor, bed.task({ command: ['sh', '-c', 'exit 0'] }));
    expect(await failing.wait(noCancel)).toEqual({ exitCode: 3 });
    expect(await succeeding.wait(noCancel)).toEqual({ exitCode: 0 });
    expect(await failing.inspect(noCancel)).toMatchObject({ state: 'exited', exitCode: 3 });
  });

  it('resolves with 137 when the container is force-removed while the wait is in progress', async () => {
    const { docker, inspected } = watchedDockerClient();
    const task = bed.task(sleepForever);
    const controller = await startTask(bed.executor({ docker }), task);
    const waitSawItRunning = inspected();
    const exit = controller.wait(noCancel);
    await waitSawItRunning;
    await bed.docker.getContainer(taskName(task)).remove({ force: true });
    expect(await exit).toEqual({ exitCode: 137 });
  });

  it('resolves with the exit code the engine remembers when the container was removed before the wait began', async () => {
    const task = bed.task({ command: ['sh', '-c', 'exit 5'] });
    await startTask(bed.executor(), task);
    const container = bed.docker.getContainer(taskName(task));
    await container.wait();
    await container.remove();
    expect(await bed.executor().controller(task, noDependencies).wait(noCancel)).toEqual({ exitCode: 5 });
  });

  it("fails with Docker's no-such-container error, instead of hanging, when the container never existed", async () => {
    const task = bed.task({ args: ['true'] });
    await expect(bed.executor().controller(task, noDependencies).wait(noCancel)).rejects.toMatchObject({
      code: ErrorCode.NotFound,
      message: `No such container: ${taskName(task)}`,
    });
  });
});

describe('stopping a task', () => {
  it("sends the task's stop signal", async () => {
    const script = "trap 'echo caught USR1; exit 7' USR1; echo ready; while true; do sleep 0.1; done";
    const controller = await startTask(bed.executor(), bed.task({ command: ['sh', '-c', script], stopSignal: 'SIGUSR1' }));
    expect(await firstLines(controller, 1)).toMatchObject([{ line: 'ready' }]);
    await controller.shutdown(noCancel);
    expect(await controller.wait(noCancel)).toEqual({ exitCode: 7 });
    expect((await logsSoFar(controller)).map(({ line }) => line)).toEqual(['ready', 'caught USR1']);
  });

  it('kills a process that ignores the stop signal once the grace period is over', async () => {
    const script = "trap 'echo ignoring TERM' TERM; echo ready; while true; do sleep 0.1; done";
    const task = bed.task({ command: ['sh', '-c', script], stopGracePeriod: seconds(1) });
    const controller = await startTask(bed.executor(), task);
    expect(await firstLines(controller, 1)).toMatchObject([{ line: 'ready' }]);
    await controller.shutdown(noCancel);
    expect(await controller.wait(noCancel)).toEqual({ exitCode: 137 });
    expect((await logsSoFar(controller)).map(({ line }) => line)).toEqual(['ready', 'ignoring TERM']);
    expect((await bed.inspect(task)).Config).toMatchObject({ StopTimeout: 1 });
  });

  it('is harmless for a stopped or missing container, and removal leaves nothing of the task', async () => {
    const task = bed.task({ command: ['sh', '-c', 'exit 0'] });
    const controller = await startTask(bed.executor(), task);
    await controller.wait(noCancel);
    await controller.shutdown(noCancel);
    await controller.remove(noCancel);
    await controller.remove(noCancel);
    await controller.shutdown(noCancel);
    expect(await controller.inspect(noCancel)).toEqual({ state: 'absent' });
    expect(await bed.docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.task.id=${task.id}`] } })).toEqual([]);
  });
});

describe('a task with a healthcheck', () => {
  it('starts only once the container is healthy', async () => {
    const task = bed.task({
      command: ['sh', '-c', 'sleep 0.5; touch /tmp/healthy; sleep 300'],
      healthcheck: { test: ['CMD-SHELL', 'test -f /tmp/healthy'], interval: seconds(0.1), retries: 3, startPeriod: seconds(60) },
    });
    await startTask(bed.executor(), task);
    expect((await bed.inspect(task)).State.Health?.Status).toBe('healthy');
  });

  it('fails to start, stopped, when the container turns unhealthy', async () => {
    const task = bed.task({
      command: ['sleep', '300'],
      stopGracePeriod: seconds(1),
      healthcheck: { test: ['CMD', 'false'], interval: seconds(0.1), retries: 1 },
    });
    const controller = bed.executor().controller(task, noDependencies);
    await controller.prepare(noCancel);
    // sleep, as PID 1 without a handler, ignores SIGTERM: the engine kills it after the grace period.
    await expect(controller.start(noCancel)).rejects.toMatchObject({
      code: ErrorCode.FailedPrecondition,
      message: `task: non-zero exit (137): ${CONTAINER_UNHEALTHY}`,
    });
    expect((await bed.inspect(task)).State.Running).toBe(false);
  });
});

describe('adopting a task after an agent restart', () => {
  it('finds a running container and leaves it running', async () => {
    const task = bed.task(sleepForever);
    await startTask(bed.executor(), task);
    const before = await bed.inspect(task);

    const adopted = bed.executor().controller(task, noDependencies);
    expect(await adopted.inspect(noCancel)).toEqual({ state: 'running', containerId: before.Id, pid: before.State.Pid });
    await adopted.start(noCancel);

    const after = await bed.inspect(task);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    expect(after.State.Pid).toBe(before.State.Pid);
  });

  it('finds a renamed container by its task label, and removes that one', async () => {
    const task = bed.task(sleepForever);
    await startTask(bed.executor(), task);
    const { Id: id } = await bed.inspect(task);
    await bed.docker.getContainer(id).rename({ name: `renamed-${task.id}` });

    const adopted = bed.executor().controller(task, noDependencies);
    expect(await adopted.inspect(noCancel)).toMatchObject({ state: 'running', containerId: id });
    await adopted.remove(noCancel);
    await expect(bed.docker.getContainer(id).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it("lists only this node's tasks as resident, and removes one knowing only its ID", async () => {
    const [hereId, elsewhereId] = [`${bed.nodeId}-here`, `${bed.nodeId}-elsewhere`];
    const [here, elsewhere] = [bed.executor({ nodeId: hereId }), bed.executor({ nodeId: elsewhereId })];
    const hereTasks = [bed.task({ args: ['true'] }, { nodeId: hereId }), bed.task(sleepForever, { nodeId: hereId })];
    const elsewhereTask = bed.task({ args: ['true'] }, { nodeId: elsewhereId });
    await here.controller(hereTasks[0]!, noDependencies).prepare(noCancel);
    await startTask(here, hereTasks[1]!);
    await elsewhere.controller(elsewhereTask, noDependencies).prepare(noCancel);

    expect((await here.residentTasks(noCancel)).sort()).toEqual(hereTasks.map((task) => task.id).sort());
    await here.removeResidentTask(hereTasks[1]!.id, noCancel);
    expect(await here.residentTasks(noCancel)).toEqual([hereTasks[0]!.id]);
    expect(await elsewhere.residentTasks(noCancel)).toEqual([elsewhereTask.id]);
  });
});

describe("the node's description", () => {
  it("reports the engine's platform, CPUs, memory, version and plugins, with the agent's hostname and labels", async () => {
    const info = (await bed.docker.info()) as { Name: string; NCPU: number; MemTotal: number; OSType: string; Architecture: string; ServerVersion: string };
    const described = await bed.executor({ hostname: 'shoal-node-7', engineLabels: { 'com.example.zone': 'a' } }).describe(noCancel);
    expect(described).toMatchObject({
      hostname: 'shoal-node-7',
      platform: { architecture: info.Architecture, os: info.OSType },
      resources: { nanoCpus: BigInt(info.NCPU) * 1_000_000_000n, memoryBytes: BigInt(info.MemTotal) },
      engine: { engineVersion: info.ServerVersion, labels: expect.objectContaining({ 'com.example.zone': 'a' }) },
    });
    expect(described.engine?.plugins).toContainEqual({ type: 'Network', name: 'bridge' });
    expect(described.engine?.plugins).toContainEqual({ type: 'Volume', name: 'local' });
    expect((await bed.executor().describe(noCancel)).hostname).toBe(info.Name);
  });
});
