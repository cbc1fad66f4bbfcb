import { ErrorCode, errors, isShoalError } from '@shoal/errors';
import type { RaftMembershipServer, RaftServer, RaftUnlockServer, StreamRaftMessageRequest } from '@shoal/proto';
import { requirePeerRole, toGrpcError, wrapUnary, type CallWithPeer, type PeerIdentity } from '@shoal/rpc';
import type { Logger } from '@shoal/runtime';
import { MANAGER_ROLE } from '@shoal/pki';
import type { RaftReplica } from './replica.js';

/** Raft traffic, membership and unlocking are for managers only: workers never reach the raft store. */
const MANAGER_ROLES: readonly string[] = [MANAGER_ROLE];

/** A unary handler for callers with a manager certificate (PERMISSION_DENIED for anyone else). */
function managerUnary<Req, Res>(log: Logger, handler: (request: Req, caller: PeerIdentity) => Promise<Res> | Res) {
  return wrapUnary<Req, Res>(log, (request, call) => handler(request, requirePeerRole(call, MANAGER_ROLES)));
}

/** The Raft service: peer messages, streamed snapshots, address lookups and followers' forwarded writes. */
export function createRaftService(replica: RaftReplica, log: Logger): RaftServer {
  return {
    processRaftMessage: managerUnary(log, (request, caller) => {
      if (request.messages.length === 0) throw errors.invalidArgument('a raft message request carries no message');
      for (const message of request.messages) replica.step(message, caller.cn);
      return {};
    }),
    streamRaftMessage: (call, callback) => {
      receiveSnapshotStream(replica, call).then(
        () => callback(null, {}),
        (err: unknown) => {
          const internal = !isShoalError(err) || err.code === ErrorCode.Internal;
          if (internal) log.error({ method: call.getPath(), err }, 'snapshot stream failed');
          else log.debug({ method: call.getPath(), err }, 'snapshot stream refused');
          callback(toGrpcError(err));
        },
      );
    },
    resolveAddress: managerUnary(log, (request) => ({ addr: replica.addressOf(request.raftId) })),
    forwardProposal: managerUnary(log, async (request) => {
      if (request.transaction === undefined) throw errors.invalidArgument('a forwarded proposal carries no transaction');
      return { version: { index: await replica.forwardedProposal(request.transaction) } };
    }),
  };
}

/** The RaftMembership service; every call ends up on the leader (other replicas forward it there). */
export function createRaftMembershipService(replica: RaftReplica, log: Logger): RaftMembershipServer {
  return {
    join: managerUnary(log, (request, caller) => replica.join(request, caller.cn)),
    leave: managerUnary(log, async (request) => {
      await replica.leave(request.raftId);
      return {};
    }),
    listMembers: managerUnary(log, () => replica.listMembers()),
  };
}

/** The RaftUnlock service: `docker swarm unlock`, relayed by a manager's API. */
export function createRaftUnlockService(replica: RaftReplica, log: Logger): RaftUnlockServer {
  return {
    unlock: managerUnary(log, async (request) => {
      await replica.unlock(request.unlockKey);
      return {};
    }),
  };
}

type SnapshotStreamCall = CallWithPeer & AsyncIterable<StreamRaftMessageRequest>;

/**
 * Reads a StreamRaftMessage call: every chunk carries the same MsgSnap with the next piece of the
 * snapshot's data. The data is handed to the replica as it arrives, which writes it to disk, so a
 * snapshot of hundreds of MB never sits in memory or in one gRPC message.
 */
async function receiveSnapshotStream(replica: RaftReplica, call: SnapshotStreamCall): Promise<void> {
  const caller = requirePeerRole(call, MANAGER_ROLES);
  const requests = call[Symbol.asyncIterator]();
  const first = await requests.next();
  const message = first.done === true ? undefined : first.value.message;
  if (message === undefined) throw errors.invalidArgument('a snapshot stream must start with a message');
  await replica.receiveSnapshot(message, caller.cn, snapshotData(first.value as StreamRaftMessageRequest, requests));
}

async function* snapshotData(first: StreamRaftMessageRequest, rest: AsyncIterator<StreamRaftMessageRequest>): AsyncGenerator<Buffer> {
  const index = first.message?.snapshot?.metadata?.index;
  yield Buffer.from(first.message?.snapshot?.data ?? []);
  for (let next = await rest.next(); next.done !== true; next = await rest.next()) {
    const snapshot = next.value.message?.snapshot;
    if (snapshot === undefined || snapshot.metadata?.index !== index) {
      throw errors.invalidArgument('every chunk of a snapshot stream must carry the same snapshot');
    }
    yield Buffer.from(snapshot.data);
  }
}
