import { mkdir } from 'node:fs/promises';
import Dockerode from 'dockerode';
import { createLogger, loadConfigOrExit, runProcess, untilAborted, type Component } from '@shoal/runtime';
import { AgentHost } from './agent-host.js';
import { agentConfig } from './config.js';
import { ControlSocket } from './control-socket.js';
import { createDockerExecutor } from './docker/index.js';
import { IdentityFile } from './identity.js';

const config = loadConfigOrExit(agentConfig, 'agent');
const log = createLogger({ service: 'agent', level: config.logLevel });
await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
const docker = new Dockerode({ socketPath: config.dockerSocket });
const host = new AgentHost({
  identityFile: new IdentityFile(config.dataDir),
  createExecutor: (nodeId) =>
    createDockerExecutor({
      docker,
      nodeId,
      secretsDir: config.secretsDir,
      containerLabels: config.containerLabels,
      hostname: config.hostname,
      engineLabels: config.nodeLabels,
      log,
    }),
  log,
});

const agent: Component = {
  name: 'agent',
  async run({ signal, ready, log: componentLog }) {
    // With an identity on disk this reconnects, and the agent adopts the containers still running.
    await host.start();
    if (config.join !== undefined && host.state().state === 'inactive') {
      try {
        await host.join({ token: config.join.token, remoteAddrs: [config.join.address] });
      } catch (err) {
        // A join whose first session is late still made this host a node; only a refused join is fatal.
        if (host.state().state === 'inactive') throw err;
        componentLog.warn({ err }, 'joined the swarm, but its first session is not up yet');
      }
    }
    ready();
    await untilAborted(signal);
    await host.stop();
  },
};

const controlSocket: Component = {
  name: 'control-socket',
  async run({ signal, ready, log: componentLog }) {
    const socket = new ControlSocket({ path: config.socket, control: host, log: componentLog });
    await socket.listen();
    ready();
    await untilAborted(signal);
    await socket.close();
  },
};

await runProcess({
  service: 'agent',
  log,
  shutdownGraceMs: config.shutdownGraceMs,
  components: [agent, controlSocket],
  endpoints: () => ({ control: config.socket }),
});
