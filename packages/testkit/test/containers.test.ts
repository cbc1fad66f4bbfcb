import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import {
  TEST_LABEL,
  dockerClient,
  listTestContainers,
  removeTestContainers,
  requireTestImage,
  runTestContainer,
  testRunId,
} from '../src/containers.js';

/** Runs of their own, so removing them can be checked without touching another file's containers. */
const runId = `${testRunId()}-containers`;
const otherRunId = `${testRunId()}-containers-other`;
const missingImage = expect.objectContaining({
  code: ErrorCode.FailedPrecondition,
  message: expect.stringContaining('run scripts/bootstrap.sh'),
});

beforeAll(() => requireTestImage());
afterAll(async () => {
  for (const run of [runId, otherRunId, testRunId()]) await removeTestContainers(run);
});

describe('test containers', () => {
  it('labels the container with the run id, with no network, and removes it on stop', async () => {
    const container = await runTestContainer({ cmd: ['sleep', '30'], runId });
    const docker = await dockerClient();
    const inspected = await docker.getContainer(container.id).inspect();
    expect(inspected.Config.Labels[TEST_LABEL]).toBe(runId);
    expect(inspected.HostConfig.NetworkMode).toBe('none');
    expect(inspected.State.Running).toBe(true);

    await container.stop();
    await expect(docker.getContainer(container.id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    await expect(container.stop()).resolves.toBeUndefined();
  });

  it('reports the exit code and the output of the main command', async () => {
    await using container = await runTestContainer({ cmd: ['sh', '-c', 'echo hello; echo oops >&2; exit 7'], runId });
    expect(await container.wait()).toBe(7);
    expect(await container.logs()).toEqual({ stdout: 'hello\n', stderr: 'oops\n' });
  });

  it('execs a command in a running container and returns its exit code and separate outputs', async () => {
    await using container = await runTestContainer({ cmd: ['sleep', '30'], runId });
    const result = await container.exec(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(result).toEqual({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it('labels with this process run id unless told otherwise', async () => {
    await using container = await runTestContainer({ cmd: ['true'] });
    expect(container.runId).toBe(testRunId());
    expect(await listTestContainers()).toContain(container.id);
  });

  it('removeTestContainers removes every container of its run and none of another run', async () => {
    const mine = [await runTestContainer({ cmd: ['sleep', '30'], runId }), await runTestContainer({ cmd: ['true'], runId })];
    const theirs = await runTestContainer({ cmd: ['sleep', '30'], runId: otherRunId });

    expect((await removeTestContainers(runId)).sort()).toEqual(mine.map((container) => container.id).sort());
    expect(await listTestContainers(runId)).toEqual([]);
    expect(await listTestContainers(otherRunId)).toEqual([theirs.id]);
    await theirs.stop();
  });

  it('removes a container that was created but could not start', async () => {
    await expect(runTestContainer({ cmd: ['/no/such/program'], runId })).rejects.toMatchObject({ code: ErrorCode.Internal });
    expect(await listTestContainers(runId)).toEqual([]);
  });

  it('explains that a missing image comes from scripts/bootstrap.sh', async () => {
    await expect(requireTestImage('shoal/no-such-image:0')).rejects.toEqual(missingImage);
    await expect(runTestContainer({ image: 'shoal/no-such-image:0', cmd: ['true'], runId })).rejects.toEqual(missingImage);
  });
});
