import { ErrorCode, errors, hasCode, ShoalError } from '@shoal/errors';
import {
  Cluster,
  IssuanceStatus_State,
  newId,
  Node,
  NodeRole,
  objectKindNames,
  NodeSpec_Availability,
  NodeSpec_Membership,
  NodeStatus_State,
  RaftMemberStatus_Reachability,
} from '@shoal/proto';
import { caCertificateDigest, createCertificateAuthority, generateJoinToken, MANAGER_ROLE, nodeCertificateSubject } from '@shoal/pki';
import { generateUnlockKey, managerUnlockKeys } from '@shoal/raft-storage';
import type { Change } from '@shoal/store';
import { ingressNetwork } from '../cluster/network-allocation.js';
import {
  ALREADY_IN_SWARM_MESSAGE,
  commit,
  localSwarm,
  NOT_IN_SWARM_MESSAGE,
  requireManager,
  storeOf,
  type ApiContext,
  type LocalSwarm,
} from '../cluster/context.js';
import { clusterSpecFromDocker, clusterToDocker, swarmInitRequestFromDocker, swarmJoinRequestFromDocker, unlockKeyOf } from '../convert/swarm.js';
import type { Router } from '../http/router.js';
import { queryFlag, requireCurrent, requiredBody, requiredVersion } from './request-rules.js';

const NO_MANAGER_SERVICES_MESSAGE =
  'This host runs no manager services (it was started with `shoal up --worker`): it can join a swarm, but not start one. Run `shoal up` without --worker to make a host that can.';
const NO_AGENT_MESSAGE = 'This host runs no Shoal agent, so it cannot join a swarm: start it with `shoal up`.';
const MANAGER_JOIN_MESSAGE =
  'Shoal cannot add a manager to a swarm yet (each swarm has the one manager that initialised it): this host has left the swarm again. Join with the worker token (`docker swarm join-token worker` on the manager).';

const availabilityNames = {
  [NodeSpec_Availability.ACTIVE]: 'active',
  [NodeSpec_Availability.PAUSE]: 'pause',
  [NodeSpec_Availability.DRAIN]: 'drain',
} as const;

const LAST_MANAGER_LEAVE_MESSAGE =
  'You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. ';

/** `host[:port]` of an advertise address; the manager port defaults to this host's raft port. */
function managerAddress(advertise: string, fallbackHost: string, port: number): { host: string; addr: string } {
  const text = advertise.trim() === '' ? fallbackHost : advertise.trim();
  const withPort = /^(.*):(\d+)$/.exec(text);
  const host = withPort?.[1] ?? text;
  return { host, addr: `${host}:${withPort?.[2] ?? port}` };
}

/** Refuses to start or join a swarm unless this host is in none (and says why it cannot tell, when it cannot). */
function requireInactive(local: LocalSwarm): void {
  if (local.state === 'error') throw errors.unavailable(local.error);
  if (local.state !== 'inactive') throw errors.unavailable(ALREADY_IN_SWARM_MESSAGE);
}

/** Deletes every object in the store: `swarm leave --force` on the last manager erases the swarm. */
async function eraseSwarm(context: ApiContext): Promise<void> {
  const deletes = await storeOf(context).read((tx) =>
    objectKindNames.flatMap((kind) => tx.list(kind).map((object): Change => ({ action: 'delete', kind, id: object.id }))),
  );
  // Several transactions: the store bounds each, and an erased swarm needs no atomicity.
  for (let start = 0; start < deletes.length; start += 200) await commit(context, deletes.slice(start, start + 200));
}

/** `/swarm` and its lifecycle: init, join, leave, update (tokens, autolock), unlock key and unlock. */
export function swarmRoutes(router: Router, context: ApiContext): void {
  router.on('POST', '/swarm/init', async ({ body }) => {
    requireInactive(await localSwarm(context));
    if (context.cache === undefined) throw errors.unavailable(NO_MANAGER_SERVICES_MESSAGE);
    const request = swarmInitRequestFromDocker(requiredBody(body));
    const { host, addr } = managerAddress(request.advertiseAddr, context.host.advertiseAddr, context.host.managerPort);
    const ca = createCertificateAuthority('swarm-ca');
    const clusterId = newId();
    const nodeId = newId();
    // The API signs this host's node certificate itself: it holds the new CA now, before any dispatcher serves it.
    const identity = ca.issue(nodeCertificateSubject(nodeId, MANAGER_ROLE, clusterId));
    const cluster = Cluster.fromPartial({
      id: clusterId,
      spec: request.spec,
      rootCa: {
        caCert: Buffer.from(ca.caCertPem),
        caKey: Buffer.from(ca.caKeyPem),
        caCertHash: caCertificateDigest(ca.caCertPem),
        joinTokens: { worker: generateJoinToken(ca.caCertPem), manager: generateJoinToken(ca.caCertPem) },
      },
      unlockKeys: request.spec.encryptionConfig?.autoLockManagers === true ? managerUnlockKeys(generateUnlockKey()) : [],
      defaultAddressPool: request.defaultAddrPool,
      subnetSize: request.subnetSize,
      vxlanUdpPort: request.dataPathPort,
    });
    const node = Node.fromPartial({
      id: nodeId,
      spec: { desiredRole: NodeRole.MANAGER, membership: NodeSpec_Membership.ACCEPTED, availability: request.availability },
      role: NodeRole.MANAGER,
      description: {
        hostname: context.host.hostname,
        platform: { architecture: process.arch === 'x64' ? 'x86_64' : process.arch, os: 'linux' },
        resources: { nanoCpus: BigInt(context.host.cpus) * 1_000_000_000n, memoryBytes: BigInt(context.host.memoryBytes) },
        engine: { engineVersion: context.host.shoalVersion },
      },
      // READY is the dispatcher's to write once this host's agent holds a session.
      status: { state: NodeStatus_State.UNKNOWN, addr: host },
      managerStatus: { raftId: 1n, addr, leader: true, reachability: RaftMemberStatus_Reachability.REACHABLE },
      certificate: { role: NodeRole.MANAGER, status: { state: IssuanceStatus_State.ISSUED }, certificate: Buffer.from(identity.certPem), cn: nodeId },
    });
    const ingress = ingressNetwork(cluster);
    await commit(context, [
      { action: 'create', kind: 'cluster', object: cluster },
      { action: 'create', kind: 'node', object: node },
      { action: 'create', kind: 'network', object: ingress },
    ]).catch((err: unknown) => {
      // Another API initialised the swarm first (the cluster's name "default" is unique).
      if (hasCode(err, ErrorCode.NameConflict)) throw errors.unavailable(ALREADY_IN_SWARM_MESSAGE);
      throw err;
    });
    if (context.agent !== undefined) {
      // Without its agent this host's node would never become ready: a swarm it cannot run is undone.
      await context.agent.identity({ certPem: identity.certPem, keyPem: identity.keyPem, caCertPem: ca.caCertPem, managers: [addr] }).catch(async (err: unknown) => {
        await eraseSwarm(context);
        throw err;
      });
    }
    await context.local.set(node.id);
    return { status: 200, json: node.id };
  });

  router.on('POST', '/swarm/join', async ({ body }) => {
    requireInactive(await localSwarm(context));
    const request = swarmJoinRequestFromDocker(requiredBody(body));
    const { agent } = context;
    if (agent === undefined) throw errors.unavailable(NO_AGENT_MESSAGE);
    const availability = availabilityNames[request.availability as keyof typeof availabilityNames] ?? 'active';
    const joined = await agent.join({ token: request.joinToken, remoteAddrs: request.remoteAddrs, availability });
    if (joined.role === 'manager') {
      await agent.leave();
      throw new ShoalError(ErrorCode.Unimplemented, MANAGER_JOIN_MESSAGE);
    }
    return { status: 200 };
  });

  router.on('POST', '/swarm/leave', async ({ query }) => {
    const local = await localSwarm(context);
    if (local.state === 'inactive') throw errors.unavailable(NOT_IN_SWARM_MESSAGE);
    if (local.state === 'error') throw errors.unavailable(local.error);
    if (local.state === 'active' && local.manager && !queryFlag(query, 'force')) throw errors.unavailable(LAST_MANAGER_LEAVE_MESSAGE);
    if (local.state === 'active') await eraseSwarm(context);
    if (context.agent !== undefined && (await context.agent.state()).state === 'active') await context.agent.leave();
    await context.local.clear();
    return { status: 200 };
  });

  router.on('GET', '/swarm', async () => {
    const { cluster } = await requireManager(context);
    return { status: 200, json: clusterToDocker(cluster, { includeJoinTokens: true }) };
  });

  router.on('POST', '/swarm/update', async ({ body, query }) => {
    const { cluster } = await requireManager(context);
    const version = requiredVersion(query, 'swarm');
    requireCurrent('swarm', cluster.id, cluster.meta?.version?.index, version);
    const spec = clusterSpecFromDocker(requiredBody(body));
    const rootCa = cluster.rootCa;
    const caCertPem = Buffer.from(rootCa?.caCert ?? []).toString();
    const joinTokens = {
      worker: queryFlag(query, 'rotateWorkerToken') ? generateJoinToken(caCertPem) : (rootCa?.joinTokens?.worker ?? ''),
      manager: queryFlag(query, 'rotateManagerToken') ? generateJoinToken(caCertPem) : (rootCa?.joinTokens?.manager ?? ''),
    };
    const autolock = spec.encryptionConfig?.autoLockManagers === true;
    const held = unlockKeyOf(cluster);
    const rotate = queryFlag(query, 'rotateManagerUnlockKey');
    const unlockKeys = !autolock ? [] : held === '' || rotate ? managerUnlockKeys(generateUnlockKey()) : cluster.unlockKeys;
    const updated = Cluster.fromPartial({ ...cluster, spec, rootCa: { ...rootCa, joinTokens }, unlockKeys });
    await commit(context, [{ action: 'update', kind: 'cluster', object: updated }]);
    return { status: 200 };
  });

  router.on('GET', '/swarm/unlockkey', async () => {
    const { cluster } = await requireManager(context);
    return { status: 200, json: { UnlockKey: unlockKeyOf(cluster) } };
  });

  router.on('POST', '/swarm/unlock', async ({ body }) => {
    const local = await localSwarm(context);
    if (local.state === 'inactive') throw errors.unavailable(NOT_IN_SWARM_MESSAGE);
    if (local.state !== 'locked') throw errors.conflict('swarm is not locked');
    const unlockKey = (body as { UnlockKey?: unknown } | undefined)?.UnlockKey;
    if (typeof unlockKey !== 'string') throw errors.invalidArgument('the body must carry the unlock key as {"UnlockKey": "SWMKEY-1-..."}');
    await context.unlock(unlockKey);
    return { status: 200 };
  });
}
