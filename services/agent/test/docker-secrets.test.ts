import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { Config, Secret, newId, taskName, type Task } from '@shoal/proto';
import type { TaskDependencies } from '../src/executor.js';
import { DockerTestBed, firstLines, noCancel, noDependencies, sleepForever, startTask } from './docker-fixtures.js';

let bed: DockerTestBed;

beforeAll(async () => {
  bed = await DockerTestBed.create();
});

afterAll(async () => {
  await bed?.cleanUp();
});

/** A secret whose value is unique to this run, so finding it anywhere is proof of a leak. */
function secretNamed(name: string): { secret: Secret; value: string } {
  const value = `shoal-secret-${randomBytes(16).toString('hex')}`;
  return { secret: Secret.fromPartial({ id: newId(), spec: { annotations: { name }, data: Buffer.from(value) } }), value };
}

function dependencies(secrets: Secret[], configs: Config[] = []): TaskDependencies {
  return { secrets: new Map(secrets.map((secret) => [secret.id, secret])), configs: new Map(configs.map((config) => [config.id, config])) };
}

/** The tmpfs mounted at `mountPoint`, as /proc/self/mountinfo lists it, if any. */
async function mountAt(mountPoint: string): Promise<{ fsType: string; superOptions: string } | undefined> {
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const [mountFields, fsFields] = line.split(' - ');
    if (mountFields?.split(' ')[4] !== mountPoint || fsFields === undefined) continue;
    const [fsType = '', , superOptions = ''] = fsFields.split(' ');
    return { fsType, superOptions };
  }
  return undefined;
}

/** The files under `directory` (recursively) whose content contains `text`. */
async function filesContaining(directory: string, text: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(directory, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(text)) found.push(path);
  }
  return found;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

describe("a task's secrets and configs", () => {
  it('are files of the requested name, owner and mode on a tmpfs of the task, mounted read-only into its container only', async () => {
    const { secret, value } = secretNamed('db_password');
    const config = Config.fromPartial({ id: newId(), spec: { annotations: { name: 'app_conf' }, data: Buffer.from('listen 8080\n') } });
    // The container prints a digest of the secret, never the secret itself: its output lands in the engine's log file on disk.
    const script = [
      'stat -c %a:%u:%g /run/secrets/db_password',
      "sha256sum /run/secrets/db_password | cut -d ' ' -f 1",
      'cat /etc/app/app.conf',
      'stat -c %a:%u:%g /relative.conf',
      '(echo leaked > /run/secrets/db_password) 2>/dev/null && echo writable || echo read-only',
      'ls /run/secrets',
      'exec sleep 300',
    ].join('; ');
    const task = bed.task({
      ...sleepForever,
      command: ['sh', '-c', script],
      secrets: [{ secretId: secret.id, secretName: 'db_password', file: { name: 'db_password', uid: '1000', gid: '1001', mode: 0o400 } }],
      configs: [
        { configId: config.id, configName: 'app_conf', file: { name: '/etc/app/app.conf', uid: '0', gid: '0', mode: 0o444 } },
        // Relative names land under /, and a zero mode is Docker's default 0444.
        { configId: config.id, configName: 'app_conf', file: { name: 'relative.conf', uid: '', gid: '', mode: 0 } },
      ],
    });
    const other = secretNamed('api_key');
    const otherTask = bed.task({
      ...sleepForever,
      command: ['sh', '-c', 'ls /run/secrets; exec sleep 300'],
      secrets: [{ secretId: other.secret.id, secretName: 'api_key', file: { name: 'api_key', uid: '0', gid: '0', mode: 0o444 } }],
    });
    const executor = bed.executor();
    const controller = await startTask(executor, task, dependencies([secret], [config]));
    const otherController = await startTask(executor, otherTask, dependencies([other.secret]));

    expect((await firstLines(controller, 6)).map(({ line }) => line)).toEqual(['400:1000:1001', sha256(value), 'listen 8080', '444:0:0', 'read-only', 'db_password']);
    expect((await firstLines(otherController, 1)).map(({ line }) => line)).toEqual(['api_key']);

    const taskDir = join(bed.secretsDir, task.id);
    expect(await mountAt(taskDir)).toMatchObject({ fsType: 'tmpfs', superOptions: expect.stringContaining('mode=700') });
    expect((await stat(taskDir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(taskDir, 'run/secrets/db_password'))).dev).toBe((await stat(taskDir)).dev);
    const { Id: containerId } = await bed.inspect(task);
    expect(await filesContaining(`/var/lib/docker/containers/${containerId}`, value)).toEqual([]);
    expect(bed.logs.raw.filter((line) => line.includes(value))).toEqual([]);

    await controller.remove(noCancel);
    expect(await mountAt(taskDir)).toBeUndefined();
    await expect(stat(taskDir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await filesContaining(bed.secretsDir, value)).toEqual([]);
    await otherController.remove(noCancel);
  });

  it("stay mounted when a restarted agent adopts the task's running container", async () => {
    const { secret, value } = secretNamed('token');
    const task = bed.task({ ...sleepForever, secrets: [{ secretId: secret.id, secretName: 'token', file: { name: 'token', uid: '0', gid: '0', mode: 0o444 } }] });
    await startTask(bed.executor(), task, dependencies([secret]));

    const adopted = bed.executor().controller(task, dependencies([secret]));
    expect(await adopted.inspect(noCancel)).toMatchObject({ state: 'running' });
    await adopted.start(noCancel);

    expect(await mountAt(join(bed.secretsDir, task.id))).toMatchObject({ fsType: 'tmpfs' });
    expect(await readFile(join(bed.secretsDir, task.id, 'run/secrets/token'), 'utf8')).toBe(value);
  });

  it('are resident until removed by task ID when their container is already gone', async () => {
    const { secret } = secretNamed('leftover');
    const task = bed.task({ ...sleepForever, secrets: [{ secretId: secret.id, secretName: 'leftover', file: { name: 'leftover', uid: '0', gid: '0', mode: 0o444 } }] });
    const executor = bed.executor();
    await executor.controller(task, dependencies([secret])).prepare(noCancel);
    await bed.docker.getContainer(taskName(task)).remove({ force: true });

    expect(await executor.residentTasks(noCancel)).toContain(task.id);
    await executor.removeResidentTask(task.id, noCancel);
    expect(await mountAt(join(bed.secretsDir, task.id))).toBeUndefined();
    expect(await executor.residentTasks(noCancel)).not.toContain(task.id);
  });

  it('fail the prepare, mounting nothing, when a referenced secret was not delivered', async () => {
    const { secret } = secretNamed('missing');
    const task: Task = bed.task({ ...sleepForever, secrets: [{ secretId: secret.id, secretName: 'missing', file: { name: 'missing', uid: '0', gid: '0', mode: 0o444 } }] });
    const controller = bed.executor().controller(task, noDependencies);
    await expect(controller.prepare(noCancel)).rejects.toMatchObject({ code: ErrorCode.FailedPrecondition, message: `secret ${secret.id} was not delivered with the task` });
    expect(await controller.inspect(noCancel)).toEqual({ state: 'absent' });
    expect(await mountAt(join(bed.secretsDir, task.id))).toBeUndefined();
  });

  it('refuse the task when a file target is not a path or its owner is not numeric', () => {
    const executor = bed.executor();
    const withSecretFile = (file: { name: string; uid: string; gid: string; mode: number }) =>
      bed.task({ ...sleepForever, secrets: [{ secretId: newId(), secretName: 'bad', file }] });
    expect(() => executor.controller(withSecretFile({ name: '', uid: '0', gid: '0', mode: 0o444 }), noDependencies)).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidArgument, message: 'invalid secret reference bad: "" is not a file path' }),
    );
    expect(() => executor.controller(withSecretFile({ name: 'bad', uid: 'nobody', gid: '0', mode: 0o444 }), noDependencies)).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidArgument, message: 'invalid secret reference bad: uid "nobody" is not a number' }),
    );
  });
});
