/**
 * A process of simulated nodes: joins `SHOAL_BENCH_AGENTS` nodes to the swarm through the manager at
 * `SHOAL_BENCH_MANAGER` with the worker token (each a fresh key, a CSR and a certificate from the node
 * CA, exactly as `docker swarm join` does), then runs each node's real agent (session, heartbeats,
 * assignments, status reports, over its own mTLS connection) with a `FakeExecutor`, so every task
 * "runs" at once without a container. Reports ready, as a Shoal service does, as soon as it starts
 * joining (the bench follows the nodes in the store), then every second how many tasks its nodes run.
 * Exits with a failure if a join fails or the swarm drops a node. On SIGTERM the agents stop (their
 * fake tasks are left as they are).
 */
import { Agent, FakeExecutor, joinCluster, type NodeIdentity } from '@shoal/agent/control';
import { errors } from '@shoal/errors';
import { commonSettings, createLogger, defineConfig, loadConfigOrExit, runProcess, setting, untilAborted, type Component } from '@shoal/runtime';
import { RUNNING_REPORT_INTERVAL_MS, RUNNING_TASKS_MESSAGE, type RunningTasksReport } from './running-tasks-report.js';

const config = loadConfigOrExit(
  defineConfig({
    ...commonSettings,
    managerAddr: setting.hostPort('SHOAL_BENCH_MANAGER', '127.0.0.1:2377', 'The manager the nodes join through and hold their sessions with.'),
    joinToken: setting.string('SHOAL_BENCH_JOIN_TOKEN', '', 'The swarm\'s worker join token.'),
    agents: setting.int('SHOAL_BENCH_AGENTS', 250, 'How many nodes this process simulates.', { min: 1 }),
    hostnamePrefix: setting.string('SHOAL_BENCH_HOSTNAME_PREFIX', 'bench-node', 'Each node reports `<prefix>-<n>` as its hostname.'),
    joinConcurrency: setting.int('SHOAL_BENCH_JOIN_CONCURRENCY', 8, 'Joins in flight at once in this process.', { min: 1 }),
  }),
  'bench-agent-host',
);
const log = createLogger({ service: 'bench-agent-host', level: config.logLevel });

/**
 * Tells the bench how many tasks this process's nodes run now, as their executors see it: set against
 * what the store shows, it says whether a task is late reaching its node or late being reported.
 */
async function reportRunningTasks(executors: readonly FakeExecutor[]): Promise<void> {
  const resident = await Promise.all(executors.map(async (executor) => (await executor.residentTasks()).filter((id) => executor.runtimeState(id) === 'running').length));
  const report: RunningTasksReport = { type: RUNNING_TASKS_MESSAGE, running: resident.reduce((sum, count) => sum + count, 0) };
  process.send?.(report);
}

const agents: Component = {
  name: 'agents',
  async run({ signal, ready, log: componentLog }) {
    const running: Agent[] = [];
    const executors: FakeExecutor[] = [];
    // An agent stops by itself only when the swarm drops its node: that fails the whole process.
    let agentFailed: (reason: unknown) => void = () => undefined;
    const failure = new Promise<never>((_, reject) => (agentFailed = reject));
    failure.catch(() => undefined);
    const startAgent = (identity: NodeIdentity) => {
      const executor = new FakeExecutor({ hostname: `${config.hostnamePrefix}-${running.length}` });
      const agent = new Agent({ identity, executor, log: componentLog });
      executors.push(executor);
      running.push(agent);
      agent.start().then(() => {
        if (!signal.aborted) agentFailed(errors.internal(`the agent of node ${identity.nodeId} stopped by itself`));
      }, agentFailed);
    };
    // Each node's agent starts as soon as the node has joined, as on a real host; `joinConcurrency` joins at a time.
    let joined = 0;
    const joiner = async () => {
      while (joined < config.agents && !signal.aborted) {
        joined++;
        const identity = await joinCluster({ token: config.joinToken, remoteAddrs: [config.managerAddr] }, { signal });
        if (!signal.aborted) startAgent(identity);
      }
    };
    for (let index = 0; index < Math.min(config.joinConcurrency, config.agents); index++) {
      joiner().catch((err: unknown) => {
        if (!signal.aborted) agentFailed(err);
      });
    }
    // Ready at once: a thousand joins take longer than a service may take to start, and the bench follows them in the store.
    ready();
    const reporting = setInterval(() => void reportRunningTasks(executors), RUNNING_REPORT_INTERVAL_MS);
    try {
      await Promise.race([failure, untilAborted(signal)]);
    } finally {
      clearInterval(reporting);
      await Promise.all(running.map((agent) => agent.stop()));
    }
  },
};

await runProcess({ service: 'bench-agent-host', log, shutdownGraceMs: config.shutdownGraceMs, components: [agents] });
