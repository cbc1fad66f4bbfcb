import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { ErrorCode, ShoalError, errors, toShoalError } from '@shoal/errors';

/** Label every test container carries; its value is the run id, so one run's leftovers can be found. */
export const TEST_LABEL = 'shoal.test';
/** The small image `scripts/bootstrap.sh` builds locally (busybox, no registry needed). */
export const TEST_IMAGE = 'shoal/busybox:1';
/** Environment variable that sets {@link testRunId}, so several processes can share one run id. */
export const TEST_RUN_ID_ENV = 'SHOAL_TEST_RUN_ID';
/** Tests talk to the host's dockerd directly, even when DOCKER_HOST points the CLI at a Shoal API. */
const DOCKER_SOCKET = '/var/run/docker.sock';

let runId: string | undefined;
let sharedDocker: Promise<Docker> | undefined;

/**
 * This process's test run id: `SHOAL_TEST_RUN_ID` when set, otherwise generated once per process.
 * Containers started by the helpers here are labelled `shoal.test=<run id>`.
 */
export function testRunId(): string {
  runId ??= process.env[TEST_RUN_ID_ENV] || `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  return runId;
}

/**
 * A dockerode client for the host's dockerd, shared by the helpers here. dockerode is loaded on first
 * use, so tests that only need the clock or the simulated network never pay for importing it.
 */
export function dockerClient(): Promise<Docker> {
  sharedDocker ??= import('dockerode').then(({ default: Dockerode }) => new Dockerode({ socketPath: DOCKER_SOCKET }));
  return sharedDocker;
}

/** What a command wrote, decoded as UTF-8. */
export interface CommandOutput {
  stdout: string;
  stderr: string;
}

/** The outcome of a command run with {@link TestContainer.exec}. */
export interface CommandResult extends CommandOutput {
  exitCode: number;
}

/** Options for {@link runTestContainer}. */
export interface TestContainerOptions {
  /** The command to run. Required: images imported without a registry may carry no default command. */
  cmd: string[];
  /** @default TEST_IMAGE */
  image?: string;
  /**
   * Anything else for the create call. Labels are merged with the test label (which always wins), and
   * HostConfig with the default `NetworkMode: "none"`.
   */
  createOptions?: Docker.ContainerCreateOptions;
  /** @default testRunId() */
  runId?: string;
  /** @default dockerClient() */
  docker?: Docker;
}

/**
 * Creates and starts a container labelled `shoal.test=<run id>`, with no network unless asked for.
 * Pair it with `stop()` (or `await using`) and, as a safety net for failed tests, with
 * `afterAll(() => removeTestContainers())`.
 *
 * Fails with FAILED_PRECONDITION when the image is missing (run `scripts/bootstrap.sh`) and with
 * UNAVAILABLE when dockerd cannot be reached. If the container is created but cannot start, it is
 * removed before the error is thrown.
 */
export async function runTestContainer(options: TestContainerOptions): Promise<TestContainer> {
  const docker = options.docker ?? (await dockerClient());
  const image = options.image ?? TEST_IMAGE;
  const createOptions = options.createOptions ?? {};
  const labelValue = options.runId ?? testRunId();
  let container: Docker.Container;
  try {
    container = await docker.createContainer({
      ...createOptions,
      Image: image,
      Cmd: options.cmd,
      Labels: { ...createOptions.Labels, [TEST_LABEL]: labelValue },
      HostConfig: { NetworkMode: 'none', ...createOptions.HostConfig },
    });
  } catch (err) {
    throw fromDockerError(err, image);
  }
  const handle = new TestContainer(container, labelValue, createOptions.Tty === true);
  try {
    await container.start();
  } catch (err) {
    await handle.stop();
    throw fromDockerError(err, undefined);
  }
  return handle;
}

/**
 * A running (or finished) test container. `stop()` kills and removes it; everything else reads it.
 */
export class TestContainer implements AsyncDisposable {
  private removal: Promise<void> | undefined;

  /** @internal Use {@link runTestContainer}. */
  constructor(
    private readonly container: Docker.Container,
    /** The value of this container's `shoal.test` label. */
    readonly runId: string,
    /** A TTY merges stdout and stderr into one unframed stream. */
    private readonly tty: boolean,
  ) {}

  get id(): string {
    return this.container.id;
  }

  /** Waits for the container's main process to exit and returns its exit code. */
  async wait(): Promise<number> {
    const result = (await this.container.wait()) as { StatusCode: number };
    return result.StatusCode;
  }

  /** Everything the main process has written so far. */
  async logs(): Promise<CommandOutput> {
    const raw = await this.container.logs({ stdout: true, stderr: true, follow: false });
    return this.tty ? { stdout: raw.toString('utf8'), stderr: '' } : demultiplex(raw);
  }

  /** Runs `cmd` inside the running container and waits for it to finish. */
  async exec(cmd: string[]): Promise<CommandResult> {
    const exec = await this.container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const output = demultiplex(await readAll(stream));
    const { ExitCode } = await exec.inspect();
    if (ExitCode === null) throw errors.internal(`exec in container ${this.id} ended without an exit code`, { cmd: cmd.join(' ') });
    return { exitCode: ExitCode, ...output };
  }

  /** Kills and removes the container (and its anonymous volumes). Safe to call more than once. */
  stop(): Promise<void> {
    this.removal ??= forceRemove(this.container);
    return this.removal;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Ids of every container, running or not, labelled `shoal.test=<runId>`. */
export async function listTestContainers(runId: string = testRunId(), docker?: Docker): Promise<string[]> {
  if (runId === '') throw errors.invalidArgument('a test run id cannot be empty');
  const client = docker ?? (await dockerClient());
  try {
    const listed = await client.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${runId}`] } });
    return listed.map((container) => container.Id);
  } catch (err) {
    throw fromDockerError(err, undefined);
  }
}

/**
 * Force-removes every container labelled `shoal.test=<runId>` and returns their ids. Containers with
 * any other label value, or none, are never touched.
 */
export async function removeTestContainers(runId: string = testRunId(), docker?: Docker): Promise<string[]> {
  const client = docker ?? (await dockerClient());
  const ids = await listTestContainers(runId, client);
  await Promise.all(ids.map((id) => forceRemove(client.getContainer(id))));
  return ids;
}

/**
 * Fails with a message that says how to fix it when `image` is not in the local image store. Call it
 * in `beforeAll` to turn a missing image into one clear failure instead of one per test.
 */
export async function requireTestImage(image: string = TEST_IMAGE, docker?: Docker): Promise<void> {
  const client = docker ?? (await dockerClient());
  try {
    await client.getImage(image).inspect();
  } catch (err) {
    throw fromDockerError(err, image);
  }
}

async function forceRemove(container: Docker.Container): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
  } catch (err) {
    // 404: already gone. 409 (with force): someone else, e.g. an agent, is removing it right now.
    const status = statusCodeOf(err);
    if (status !== 404 && status !== 409) throw fromDockerError(err, undefined);
  }
}

function fromDockerError(err: unknown, image: string | undefined): ShoalError {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EACCES') {
    return new ShoalError(ErrorCode.Unavailable, `cannot reach dockerd at ${DOCKER_SOCKET} (${String(code)}); scripts/bootstrap.sh starts it`, {
      cause: err,
    });
  }
  if (image !== undefined && statusCodeOf(err) === 404) {
    return new ShoalError(
      ErrorCode.FailedPrecondition,
      `Docker image ${image} is missing; run scripts/bootstrap.sh, which builds it locally without a registry`,
      { details: { image }, cause: err },
    );
  }
  return toShoalError(err);
}

function statusCodeOf(err: unknown): unknown {
  return (err as { statusCode?: unknown } | null)?.statusCode;
}

/**
 * Splits Docker's multiplexed stream (used whenever there is no TTY): frames of an 8-byte header
 * (stream type, 3 zero bytes, big-endian payload length) followed by the payload; type 2 is stderr.
 */
function demultiplex(raw: Buffer): CommandOutput {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const length = raw.readUInt32BE(offset + 4);
    const payload = raw.subarray(offset + 8, offset + 8 + length);
    (raw[offset] === 2 ? stderr : stdout).push(payload);
    offset += 8 + length;
  }
  return { stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
