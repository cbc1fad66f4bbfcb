import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServiceProcess, serviceEnvironment } from '@shoal/testkit';
import { RUNNING_TASKS_MESSAGE, type RunningTasksReport } from './running-tasks-report.js';
import { shareOut } from './share-out.js';

const AGENT_HOST_MAIN = fileURLToPath(new URL('./agent-host.js', import.meta.url));

/** How the simulated nodes are spread over processes and where they join. */
export interface AgentHostsOptions {
  readonly nodes: number;
  readonly processes: number;
  readonly managerAddr: string;
  readonly joinToken: string;
  /** Where each process's log goes. */
  readonly logDir: string;
}

/** One process of simulated nodes. */
export class AgentHost {
  #runningTasks = 0;

  constructor(readonly process: ServiceProcess) {
    this.process.child.on('message', (message: Partial<RunningTasksReport>) => {
      if (message.type === RUNNING_TASKS_MESSAGE && typeof message.running === 'number') this.#runningTasks = message.running;
    });
  }

  /** How many tasks its nodes' executors ran at its last report (one a second). */
  get runningTasks(): number {
    return this.#runningTasks;
  }
}

/**
 * Processes of simulated nodes (`agent-host.js`), the nodes shared out evenly, all started at once;
 * resolves when every process is up and joining (the nodes' progress shows in the store). On a
 * failure the processes already started are stopped.
 */
export async function startAgentHosts(options: AgentHostsOptions): Promise<AgentHost[]> {
  const started = await Promise.allSettled(
    shareOut(options.nodes, options.processes).map(async (nodes, index): Promise<AgentHost> => {
      const name = `agents-${index + 1}`;
      const env = {
        ...serviceEnvironment(),
        SHOAL_LOG_LEVEL: 'warn',
        SHOAL_BENCH_MANAGER: options.managerAddr,
        SHOAL_BENCH_JOIN_TOKEN: options.joinToken,
        SHOAL_BENCH_AGENTS: String(nodes),
        SHOAL_BENCH_HOSTNAME_PREFIX: `bench-${name}`,
      };
      return new AgentHost(await ServiceProcess.start(name, AGENT_HOST_MAIN, env, join(options.logDir, `${name}.log`)));
    }),
  );
  const hosts = started.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  const failure = started.find((outcome) => outcome.status === 'rejected');
  if (failure !== undefined) {
    await stopAgentHosts(hosts);
    throw failure.reason;
  }
  return hosts;
}

/** Stops every process (SIGTERM: each agent ends its session). */
export async function stopAgentHosts(hosts: readonly AgentHost[]): Promise<void> {
  await Promise.all(hosts.map((host) => host.process.stop()));
}
