import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TaskState } from '@shoal/proto';
import { createLogger } from '@shoal/runtime';
import { dockerClient, removeTestContainers, requireTestImage, serviceEnvironment, ServiceProcess, TEST_LABEL, testRunId } from '@shoal/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AgentControlClient } from '../src/control-client.js';
import { TestCluster, TestManager } from './support/test-cluster.js';
import { assignedTask } from './support/tasks.js';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const log = createLogger({ service: 'agent-test', level: 'silent' });

let root: string;
let cluster: TestCluster;
let manager: TestManager;
let processes: ServiceProcess[];

beforeAll(async () => {
  if (!existsSync(main)) throw new Error(`${main} is missing: build the agent (npx tsc -b) first`);
  await requireTestImage();
});

afterAll(async () => {
  await removeTestContainers();
});

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'shoal-agent-process-'));
  cluster = new TestCluster();
  manager = await TestManager.start(cluster, log);
  processes = [];
});

afterEach(async () => {
  for (const process of processes) await process.stop();
  await manager.stop();
  await removeTestContainers();
  await rm(root, { recursive: true, force: true });
});

/** The agent process of a test host, its tasks' containers labelled with this test run. */
async function startAgent(extra: NodeJS.ProcessEnv = {}): Promise<{ process: ServiceProcess; client: AgentControlClient }> {
  const env = {
    ...serviceEnvironment(),
    SHOAL_DATA_DIR: join(root, 'agent'),
    SHOAL_SECRETS_DIR: join(root, 'secrets'),
    SHOAL_HOSTNAME: 'process-test-node',
    SHOAL_CONTAINER_LABELS: `${TEST_LABEL}=${testRunId()}`,
    SHOAL_LOG_LEVEL: 'debug',
    ...extra,
  };
  const process = await ServiceProcess.start('agent', main, env, join(root, 'agent.log'));
  processes.push(process);
  return { process, client: new AgentControlClient(process.endpoints['control']!) };
}

async function stopAgent(process: ServiceProcess): Promise<void> {
  await process.stop();
  processes.splice(processes.indexOf(process), 1);
}

describe('the agent process', () => {
  it('joins at start with SHOAL_JOIN_TOKEN, runs its tasks as containers, and adopts them after a restart', async () => {
    const first = await startAgent({ SHOAL_JOIN_TOKEN: cluster.workerToken, SHOAL_JOIN_ADDR: manager.address });
    const state = await first.client.state();
    expect(state).toMatchObject({ state: 'active', role: 'worker', clusterId: cluster.clusterId, connected: true });
    const nodeId = state.state === 'active' ? state.nodeId : '';
    expect(cluster.nodes.get(nodeId)?.description?.hostname).toBe('process-test-node');

    const task = assignedTask(nodeId);
    task.spec!.container!.args = ['sleep', '600'];
    cluster.putTask(task);
    await expect.poll(() => cluster.latestStatus(task.id)?.state, { timeout: 30_000 }).toBe(TaskState.RUNNING);
    const containerId = cluster.latestStatus(task.id)?.container?.containerId ?? '';
    const container = (await dockerClient()).getContainer(containerId);
    const started = (await container.inspect()).State.StartedAt;
    expect((await container.inspect()).Config.Labels[TEST_LABEL]).toBe(testRunId());

    await stopAgent(first.process);
    const second = await startAgent();
    await expect.poll(() => second.client.state(), { timeout: 15_000 }).toMatchObject({ state: 'active', nodeId, connected: true });
    expect((await container.inspect()).State).toMatchObject({ Running: true, StartedAt: started });

    await container.remove({ force: true });
    await expect.poll(() => cluster.latestStatus(task.id), { timeout: 15_000 }).toMatchObject({ state: TaskState.FAILED, err: 'task: non-zero exit (137)' });
  });
});
