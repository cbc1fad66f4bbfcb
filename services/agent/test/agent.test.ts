import { ErrorCode } from '@shoal/errors';
import { MANAGER_ROLE, readCertificate } from '@shoal/pki';
import { LogStream, TaskState } from '@shoal/proto';
import { createLogger } from '@shoal/runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent, type AgentTiming } from '../src/agent.js';
import { FakeExecutor } from '../src/fake-executor.js';
import type { NodeIdentity } from '../src/identity.js';
import { STATUS_BATCH_SIZE } from '../src/status-reporter.js';
import { TestCluster, TestManager } from './support/test-cluster.js';
import { assignedTask } from './support/tasks.js';

const log = createLogger({ service: 'agent-test', level: 'silent' });
/** Short enough that reconnects take well under a second. */
const timing: Partial<AgentTiming> = { maxBackoffMs: 200, registrationTimeoutMs: 2_000, callDeadlineMs: 2_000, taskRetryDelayMs: 50 };

let cluster: TestCluster;
let managers: TestManager[];
let agents: Agent[];

beforeEach(async () => {
  cluster = new TestCluster();
  managers = [await TestManager.start(cluster, log)];
  agents = [];
});

afterEach(async () => {
  await Promise.all(agents.map((agent) => agent.stop()));
  await Promise.all(managers.map((manager) => manager.stop()));
});

/** Starts an agent for `identity`; identities it saves go to `saved`. */
function startAgent(identity: NodeIdentity, options: { executor?: FakeExecutor; saved?: NodeIdentity[]; timing?: Partial<AgentTiming> } = {}): Agent {
  const saved = options.saved ?? [];
  const executor = options.executor ?? new FakeExecutor();
  const agent = new Agent({ identity, executor, log, timing: { ...timing, ...options.timing }, saveIdentity: async (changed) => void saved.push(changed) });
  agents.push(agent);
  void agent.start().catch(() => undefined);
  return agent;
}

const stateOf = (taskId: string) => cluster.latestStatus(taskId)?.state;

describe('an agent in session with a dispatcher', () => {
  it('registers with its description, runs the tasks assigned to its node and reports them', async () => {
    const identity = cluster.enrol('worker', managers);
    const task = assignedTask(identity.nodeId);
    cluster.putTask(task);
    const agent = startAgent(identity, { executor: new FakeExecutor({ hostname: 'worker-7' }) });

    await agent.registered;
    await expect.poll(() => stateOf(task.id)).toBe(TaskState.RUNNING);
    expect(agent.connected).toBe(true);
    expect(cluster.nodes.get(identity.nodeId)?.description?.hostname).toBe('worker-7');

    const later = assignedTask(identity.nodeId);
    cluster.putTask(later);
    await expect.poll(() => stateOf(later.id)).toBe(TaskState.RUNNING);
  });

  it(`reports statuses in batches of at most ${STATUS_BATCH_SIZE}`, async () => {
    const identity = cluster.enrol('worker', managers);
    const tasks = Array.from({ length: 150 }, () => assignedTask(identity.nodeId));
    for (const task of tasks) cluster.tasks.set(task.id, task);
    startAgent(identity);

    await expect.poll(() => tasks.every((task) => stateOf(task.id) === TaskState.RUNNING)).toBe(true);
    const sizes = cluster.statusCalls.map((call) => call.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(STATUS_BATCH_SIZE);
    expect(Math.max(...sizes)).toBeGreaterThan(1);
  });

  it('reconnects to another manager when its dispatcher goes away', async () => {
    managers.push(await TestManager.start(cluster, log));
    const [first, second] = managers as [TestManager, TestManager];
    const identity = cluster.enrol('worker', managers);
    const agent = startAgent(identity);
    await agent.registered;
    expect(cluster.sessionOf(identity.nodeId)?.manager).toBe(first);

    await first.stop();
    await expect.poll(() => cluster.sessionOf(identity.nodeId)?.manager).toBe(second);
    const task = assignedTask(identity.nodeId);
    cluster.putTask(task);
    await expect.poll(() => stateOf(task.id)).toBe(TaskState.RUNNING);
  });

  it('stops with a clear NOT_FOUND error once the swarm no longer knows the node, leaving its containers', async () => {
    const identity = cluster.enrol('worker', managers);
    const task = assignedTask(identity.nodeId);
    cluster.putTask(task);
    const executor = new FakeExecutor();
    const agent = startAgent(identity, { executor });
    await expect.poll(() => stateOf(task.id)).toBe(TaskState.RUNNING);

    cluster.removeNode(identity.nodeId);
    await expect(agent.done).rejects.toMatchObject({ code: ErrorCode.NotFound, message: 'this node is no longer part of the swarm: node not registered' });
    expect(agent.connected).toBe(false);
    expect(executor.runtimeState(task.id)).toBe('running');
  });

  it('keeps its session streams open past the deadline of single calls', async () => {
    const identity = cluster.enrol('worker', managers);
    const agent = startAgent(identity, { timing: { callDeadlineMs: 200 } });
    await agent.registered;
    const session = cluster.sessionOf(identity.nodeId)?.id;

    await new Promise((resolve) => setTimeout(resolve, 600));
    const task = assignedTask(identity.nodeId);
    cluster.putTask(task);
    await expect.poll(() => stateOf(task.id)).toBe(TaskState.RUNNING);
    expect(cluster.sessionOf(identity.nodeId)?.id).toBe(session);
    expect(cluster.assignmentStreams).toBe(1);
  });

  it('reopens the assignments stream when a message does not chain onto the last one', async () => {
    const identity = cluster.enrol('worker', managers);
    const agent = startAgent(identity);
    await agent.registered;
    await expect.poll(() => cluster.assignmentStreams).toBe(1);

    cluster.sendOutOfSequence(identity.nodeId);
    await expect.poll(() => cluster.assignmentStreams).toBe(2);
    const task = assignedTask(identity.nodeId);
    cluster.putTask(task);
    await expect.poll(() => stateOf(task.id)).toBe(TaskState.RUNNING);
  });

  it('renews its certificate when the swarm promotes the node, keeps it, and reconnects with it', async () => {
    const identity = cluster.enrol('worker', managers);
    const saved: NodeIdentity[] = [];
    const agent = startAgent(identity, { saved });
    await agent.registered;
    const firstSession = cluster.sessionOf(identity.nodeId)?.id;

    cluster.setRole(identity.nodeId, 'manager');
    await expect.poll(() => agent.identity.role).toBe('manager');
    expect(readCertificate(agent.identity.certPem)).toMatchObject({ cn: identity.nodeId, ou: MANAGER_ROLE });
    expect(saved.at(-1)?.certPem).toBe(agent.identity.certPem);
    await expect.poll(() => cluster.sessionOf(identity.nodeId)?.id).not.toBe(firstSession);
    await expect.poll(() => agent.connected).toBe(true);
  });
});

describe('an agent restarted while its tasks run', () => {
  it('adopts the running task instead of restarting it, and still follows it', async () => {
    const identity = cluster.enrol('worker', managers);
    const task = assignedTask(identity.nodeId);
    cluster.putTask(task);
    const executor = new FakeExecutor();
    const first = startAgent(identity, { executor });
    await expect.poll(() => stateOf(task.id)).toBe(TaskState.RUNNING);
    await first.stop();
    expect(executor.runtimeState(task.id)).toBe('running');

    const callsBefore = cluster.statusCalls.length;
    const second = startAgent(identity, { executor });
    await second.registered;
    await expect.poll(() => cluster.statusCalls.slice(callsBefore).flat().some((update) => update.taskId === task.id && update.status.state === TaskState.RUNNING)).toBe(true);
    expect(executor.startCount(task.id)).toBe(1);

    executor.exit(task.id, 0);
    await expect.poll(() => stateOf(task.id)).toBe(TaskState.COMPLETE);
  });

  it('removes the container of a task that was deleted while it was away', async () => {
    const identity = cluster.enrol('worker', managers);
    const [kept, deleted] = [assignedTask(identity.nodeId), assignedTask(identity.nodeId)];
    cluster.putTask(kept);
    cluster.putTask(deleted);
    const executor = new FakeExecutor();
    const first = startAgent(identity, { executor });
    await expect.poll(() => [stateOf(kept.id), stateOf(deleted.id)]).toEqual([TaskState.RUNNING, TaskState.RUNNING]);
    await first.stop();

    cluster.tasks.delete(deleted.id);
    startAgent(identity, { executor });
    await expect.poll(() => executor.runtimeState(deleted.id)).toBe('absent');
    expect(executor.runtimeState(kept.id)).toBe('running');
    expect(executor.startCount(kept.id)).toBe(1);
  });
});

describe('log subscriptions', () => {
  it("publishes the matching tasks' lines tagged with service, node and task, and closes a subscription that does not follow", async () => {
    const identity = cluster.enrol('worker', managers);
    const [wanted, other] = [assignedTask(identity.nodeId, { serviceId: 'wanted' }), assignedTask(identity.nodeId, { serviceId: 'other' })];
    cluster.putTask(wanted);
    cluster.putTask(other);
    const executor = new FakeExecutor();
    startAgent(identity, { executor });
    await expect.poll(() => [stateOf(wanted.id), stateOf(other.id)]).toEqual([TaskState.RUNNING, TaskState.RUNNING]);
    executor.emitLog(wanted.id, 'stdout', 'hello');
    executor.emitLog(wanted.id, 'stderr', 'oops');
    executor.emitLog(other.id, 'stdout', 'not this one');

    cluster.subscribe({ id: 'once', selector: { serviceIds: ['wanted'], nodeIds: [], taskIds: [] }, options: { streams: [], follow: false, tail: -1n, since: undefined }, close: false });
    await expect.poll(() => cluster.published.get('once')?.closed).toBe(true);
    const messages = cluster.published.get('once')!.messages;
    expect(messages.map((message) => [message.stream, message.data.toString()])).toEqual([
      [LogStream.STDOUT, 'hello'],
      [LogStream.STDERR, 'oops'],
    ]);
    expect(messages[0]?.context).toEqual({ serviceId: 'wanted', nodeId: identity.nodeId, taskId: wanted.id });
  });

  it('follows new lines until the dispatcher closes the subscription', async () => {
    const identity = cluster.enrol('worker', managers);
    const task = assignedTask(identity.nodeId);
    cluster.putTask(task);
    const executor = new FakeExecutor();
    startAgent(identity, { executor });
    await expect.poll(() => stateOf(task.id)).toBe(TaskState.RUNNING);

    const selector = { serviceIds: [], nodeIds: [], taskIds: [task.id] };
    cluster.subscribe({ id: 'follow', selector, options: { streams: [LogStream.STDOUT], follow: true, tail: -1n, since: undefined }, close: false });
    executor.emitLog(task.id, 'stdout', 'first');
    await expect.poll(() => cluster.published.get('follow')?.messages.map((message) => message.data.toString())).toEqual(['first']);
    executor.emitLog(task.id, 'stderr', 'not wanted');
    executor.emitLog(task.id, 'stdout', 'second');
    await expect.poll(() => cluster.published.get('follow')?.messages.map((message) => message.data.toString())).toEqual(['first', 'second']);

    cluster.subscribe({ id: 'follow', selector, options: undefined, close: true });
    await expect.poll(() => cluster.published.get('follow')?.ended).toBe(true);
    expect(cluster.published.get('follow')?.closed).toBe(false);
  });
});

describe('certificate renewal', () => {
  it('renews a certificate past its renewal point at once, keeping the node ID', async () => {
    // Certificates are backdated an hour, so one valid for another second is past 50-80 % of its life.
    const identity = cluster.enrol('worker', managers, { validityMs: 1_000 });
    const saved: NodeIdentity[] = [];
    const agent = startAgent(identity, { saved });

    await expect.poll(() => saved.length).toBeGreaterThan(0);
    const renewed = readCertificate(saved.at(-1)!.certPem);
    expect(renewed).toMatchObject({ cn: identity.nodeId, o: cluster.clusterId });
    expect(renewed.notAfter.getTime()).toBeGreaterThan(readCertificate(identity.certPem).notAfter.getTime());
    await expect.poll(() => agent.identity.certPem).toBe(saved.at(-1)!.certPem);
  });
});
