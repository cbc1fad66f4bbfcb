import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../src/docker/container-logs.js';
import type { TaskLogLine } from '../src/executor.js';
import { DockerTestBed, firstLines, logsSoFar, noCancel, noDependencies, sleepForever, startTask, watchedDockerClient } from './docker-fixtures.js';

/** One frame of the engine's multiplexed log stream. */
function frame(stream: 'stdout' | 'stderr', text: string | Buffer): Buffer {
  const payload = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream === 'stdout' ? 1 : 2;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

async function collect(lines: AsyncIterable<TaskLogLine>): Promise<TaskLogLine[]> {
  const collected: TaskLogLine[] = [];
  for await (const line of lines) collected.push(line);
  return collected;
}

const T1 = '2025-01-01T00:00:00.000000001Z';
const T2 = '2025-01-01T00:00:00.000000002Z';
const T3 = '2025-01-01T00:00:00.000000003Z';

describe('splitting the engine log stream into lines', () => {
  it('joins the parts of a long line, across chunk boundaries, under the time of its first part', async () => {
    const stream = Buffer.concat([frame('stdout', `${T1} first half, `), frame('stdout', `${T2} second half\n`), frame('stdout', `${T3} next\n`)]);
    const chunks = [stream.subarray(0, 5), stream.subarray(5, 30), stream.subarray(30)];
    expect(await collect(logLines(chunks, { tty: false }))).toEqual([
      { stream: 'stdout', time: T1, line: 'first half, second half' },
      { stream: 'stdout', time: T3, line: 'next' },
    ]);
  });

  it('keeps the partial lines of stdout and stderr apart, and decodes a character split between parts', async () => {
    const euro = Buffer.from('€');
    const chunks = [
      frame('stdout', Buffer.concat([Buffer.from(`${T1} price: `), euro.subarray(0, 1)])),
      frame('stderr', `${T2} warn`),
      frame('stdout', Buffer.concat([Buffer.from(`${T2} `), euro.subarray(1), Buffer.from('5\n')])),
      frame('stderr', `${T3} ing\n`),
    ];
    expect(await collect(logLines(chunks, { tty: false }))).toEqual([
      { stream: 'stdout', time: T1, line: 'price: €5' },
      { stream: 'stderr', time: T2, line: 'warning' },
    ]);
  });

  it('ends with the line a process left without a newline, and keeps empty lines', async () => {
    const chunks = [frame('stdout', `${T1} \n`), frame('stdout', `${T2} unterminated`)];
    expect(await collect(logLines(chunks, { tty: false }))).toEqual([
      { stream: 'stdout', time: T1, line: '' },
      { stream: 'stdout', time: T2, line: 'unterminated' },
    ]);
  });

  it("reads a TTY's unframed output as stdout, without the carriage returns", async () => {
    const chunks = [Buffer.from(`${T1} one\r\n${T2} tw`), Buffer.from('o\r\n')];
    expect(await collect(logLines(chunks, { tty: true }))).toEqual([
      { stream: 'stdout', time: T1, line: 'one' },
      { stream: 'stdout', time: T2, line: 'two' },
    ]);
  });
});

describe("a task's logs", () => {
  let bed: DockerTestBed;

  beforeAll(async () => {
    bed = await DockerTestBed.create();
  });

  afterAll(async () => {
    await bed?.cleanUp();
  });

  it('keep stdout and stderr apart, stamped with the time the engine gave each line, an unterminated last line included', async () => {
    const controller = await startTask(bed.executor(), bed.task({ command: ['sh', '-c', "echo out1; echo err1 >&2; printf out2"] }));
    await controller.wait(noCancel);
    const lines = await logsSoFar(controller);
    expect(lines.filter(({ stream }) => stream === 'stdout').map(({ line }) => line)).toEqual(['out1', 'out2']);
    expect(lines.filter(({ stream }) => stream === 'stderr').map(({ line }) => line)).toEqual(['err1']);
    expect(lines.map(({ time }) => time)).toEqual(lines.map(() => expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/)));
    expect((await logsSoFar(controller, { stderr: false })).map(({ line }) => line)).toEqual(['out1', 'out2']);
    expect((await logsSoFar(controller, { stdout: false })).map(({ line }) => line)).toEqual(['err1']);
  });

  it('give only the last lines with tail, and only the lines since a time with since', async () => {
    const controller = await startTask(bed.executor(), bed.task({ command: ['sh', '-c', 'echo early; sleep 0.3; for i in 1 2 3 4; do echo late$i; done'] }));
    await controller.wait(noCancel);
    expect((await logsSoFar(controller, { tail: 2 })).map(({ line }) => line)).toEqual(['late3', 'late4']);
    const [, firstLate] = await logsSoFar(controller);
    expect((await logsSoFar(controller, { sinceMs: Date.parse(firstLate!.time) })).map(({ line }) => line)).toEqual(['late1', 'late2', 'late3', 'late4']);
  });

  it('follow a running task until its output ends', async () => {
    const controller = await startTask(bed.executor(), bed.task({ command: ['sh', '-c', 'echo one; sleep 0.3; echo two'] }));
    expect((await firstLines(controller, 10)).map(({ line }) => line)).toEqual(['one', 'two']);
  });

  it('follow until the reader aborts', async () => {
    const controller = await startTask(bed.executor(), bed.task({ ...sleepForever, command: ['sh', '-c', 'echo first; exec sleep 300'] }));
    const reading = new AbortController();
    const lines: string[] = [];
    for await (const { line } of controller.logs({ follow: true, stdout: true, stderr: true }, reading.signal)) {
      lines.push(line);
      reading.abort();
    }
    expect(lines).toEqual(['first']);
  });

  it('follow a prepared task from its start', async () => {
    const { docker, inspected } = watchedDockerClient();
    const task = bed.task({ ...sleepForever, command: ['sh', '-c', 'echo started; exec sleep 300'] });
    const controller = bed.executor({ docker }).controller(task, noDependencies);
    await controller.prepare(noCancel);
    const followerSawItCreated = inspected();
    const following = firstLines(controller, 1);
    await followerSawItCreated;
    await controller.start(noCancel);
    expect(await following).toMatchObject([{ stream: 'stdout', line: 'started' }]);
  });

  it('of a TTY task are stdout lines without carriage returns', async () => {
    const controller = await startTask(bed.executor(), bed.task({ command: ['sh', '-c', 'echo hello; echo world >&2'], tty: true }));
    await controller.wait(noCancel);
    expect((await logsSoFar(controller)).map(({ stream, line }) => ({ stream, line }))).toEqual([
      { stream: 'stdout', line: 'hello' },
      { stream: 'stdout', line: 'world' },
    ]);
  });
});
