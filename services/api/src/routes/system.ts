import { activeSwarmState, infoBody, pingHeaders, versionBody, type LocalSwarmState } from '../convert/system.js';
import { localSwarm, type ApiContext } from '../cluster/context.js';
import type { Router } from '../http/router.js';

/** This host's standing as `/info` and `/_ping` report it. */
async function swarmState(context: ApiContext): Promise<LocalSwarmState> {
  const local = await localSwarm(context);
  if (local.state === 'joined') {
    const remoteManagers = local.managers.map((addr) => ({ nodeId: '', addr }));
    return { state: 'active', role: 'worker', nodeId: local.nodeId, nodeAddr: context.host.advertiseAddr, remoteManagers };
  }
  if (local.state === 'error') return { state: 'error', nodeAddr: context.host.advertiseAddr, error: local.error };
  if (local.state !== 'active') return { state: local.state };
  const nodes = await local.cache.read((tx) => tx.list('node'));
  return activeSwarmState(local.cluster, local.node, nodes);
}

/** `/_ping`, `/version` and `/info`: what every CLI command starts with. */
export function systemRoutes(router: Router, context: ApiContext): void {
  router.on('GET', '/_ping', async () => ({ status: 200, text: 'OK', headers: pingHeaders(await swarmState(context)) }));
  router.on('GET', '/version', async () => ({ status: 200, json: versionBody(context.host) }));
  router.on('GET', '/info', async () => ({ status: 200, json: infoBody(context.host, await swarmState(context)) }));
}
