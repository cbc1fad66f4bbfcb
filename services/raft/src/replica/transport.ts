import { once } from 'node:events';
import { errors, toShoalError, type ShoalError } from '@shoal/errors';
import { MessageType, RaftService, type Message, type SnapshotMetadata, type StreamRaftMessageRequest } from '@shoal/proto';
import type { SnapshotOutcome } from '@shoal/raft-core';
import type { SnapshotReader } from '@shoal/raft-storage';
import { createChannelCredentials, createClient, fromGrpcError, GRPC_MAX_MESSAGE_BYTES, unaryCall, type CallOptions, type ClientTls } from '@shoal/rpc';
import type { Logger } from '@shoal/runtime';

/** A grpc-js client, as `@shoal/rpc` creates them. */
type GrpcClient = Parameters<typeof unaryCall>[0];
/** A unary method definition of a generated service. */
type UnaryMethod<Req, Res> = Parameters<typeof unaryCall<Req, Res>>[1];

/** Room left in a gRPC message for the raft message that frames each snapshot chunk. */
const CHUNK_FRAMING_BYTES = 64 * 1024;
/** The largest snapshot chunk that still fits in one gRPC message with its framing. */
export const MAX_TRANSPORT_CHUNK_BYTES = GRPC_MAX_MESSAGE_BYTES - CHUNK_FRAMING_BYTES;

/** What the transport tells the replica about its sends. Called outside any Ready handling. */
export interface TransportEvents {
  /** A message to `to` could not be delivered: raft-core should stop pipelining to it. */
  unreachable(to: bigint): void;
  /** A snapshot stream to `to` ended (raft-core's reportSnapshot). */
  snapshotSent(to: bigint, outcome: SnapshotOutcome): void;
  /** A peer refused a message with this error (a removed member learns its fate this way). */
  refused(err: ShoalError): void;
}

export interface PeerTransportOptions {
  /** This manager's certificate and key, and the cluster CA. */
  tls: ClientTls;
  /** The name every manager's certificate carries, checked whatever address is dialled (swarmkit: `swarm-manager`). */
  serverName: string;
  log: Logger;
  /** How long one message may take to deliver before the peer counts as unreachable (swarmkit's SendTimeout: 2 s). */
  sendTimeoutMs: number;
  /** Snapshot data per StreamRaftMessage chunk; at most {@link MAX_TRANSPORT_CHUNK_BYTES}. */
  snapshotChunkBytes: number;
  /** Messages waiting for one peer beyond which new ones are dropped (raft resends what matters). */
  maxQueuedMessages: number;
  /**
   * After a failed delivery, the channel to that peer is replaced, at most this often. grpc-js backs off
   * reconnecting for up to two minutes and fails calls at once meanwhile, which would keep a restarted
   * member cut off from the leader long after it is back; a fresh channel connects at once.
   */
  redialIntervalMs: number;
  /** Opens a stored snapshot for streaming to a follower. */
  openSnapshot(metadata: SnapshotMetadata): Promise<SnapshotReader>;
  events: TransportEvents;
}

interface Peer {
  readonly address: string;
  client: GrpcClient;
  dialedAt: number;
  readonly queue: Message[];
  sending: boolean;
}

/**
 * The Raft service's client side: one gRPC channel (mutual TLS) per member, a FIFO of messages per
 * member sent one unary ProcessRaftMessage at a time (each call carrying everything queued while the
 * previous one was in flight, so a follower persists a burst of appends with one fsync), and
 * snapshots streamed in chunks over
 * StreamRaftMessage. Sending never blocks the caller: messages are queued and delivered in the
 * background; a failed delivery drops that member's queue and is reported as unreachable, which is all
 * raft needs (it resends whatever is still wanted).
 *
 * Why unary calls rather than one long-lived stream per peer: a stream that breaks loses every message
 * in flight without saying which, and must be re-established and re-authenticated; a unary call fails
 * alone, with a status, and grpc-js multiplexes them over the one HTTP/2 connection anyway. Sending one
 * at a time per peer keeps them in order, which raft tolerates losing but works best with.
 */
export class PeerTransport {
  readonly #options: PeerTransportOptions;
  readonly #credentials: ReturnType<typeof createChannelCredentials>;
  readonly #peers = new Map<bigint, Peer>();
  #closed = false;

  constructor(options: PeerTransportOptions) {
    const { snapshotChunkBytes } = options;
    if (!Number.isSafeInteger(snapshotChunkBytes) || snapshotChunkBytes < 1 || snapshotChunkBytes > MAX_TRANSPORT_CHUNK_BYTES) {
      throw errors.invalidArgument(`the snapshot chunk size must be from 1 to ${MAX_TRANSPORT_CHUNK_BYTES} bytes`, {
        snapshotChunkBytes,
      });
    }
    this.#options = options;
    this.#credentials = createChannelCredentials(options.tls);
  }

  /** Where member `raftId` listens. A new address replaces the channel (and drops what was queued for the old one). */
  setAddress(raftId: bigint, address: string): void {
    const current = this.#peers.get(raftId);
    if (current?.address === address || this.#closed) return;
    current?.client.close();
    this.#peers.set(raftId, { address, client: this.dial(address), dialedAt: Date.now(), queue: [], sending: false });
  }

  /** Forgets a member (it was removed): its channel is closed and its queue dropped. */
  removePeer(raftId: bigint): void {
    this.#peers.get(raftId)?.client.close();
    this.#peers.delete(raftId);
  }

  /** Queues messages for delivery; a MsgSnap is streamed on its own. Returns at once. */
  send(messages: readonly Message[]): void {
    for (const message of messages) {
      const peer = this.#peers.get(message.to);
      if (peer === undefined || this.#closed) {
        this.#options.events.unreachable(message.to);
        if (message.type === MessageType.MSG_SNAP) this.#options.events.snapshotSent(message.to, 'failed');
        continue;
      }
      if (message.type === MessageType.MSG_SNAP) {
        void this.streamSnapshot(peer, message);
        continue;
      }
      if (peer.queue.length >= this.#options.maxQueuedMessages) {
        this.#options.events.unreachable(message.to);
        continue;
      }
      peer.queue.push(message);
      if (!peer.sending) void this.drain(message.to, peer);
    }
  }

  /** Calls a unary method on member `raftId` (forwarding to the leader). UNAVAILABLE if its address is unknown. */
  callMember<Req, Res>(raftId: bigint, method: UnaryMethod<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    const peer = this.#peers.get(raftId);
    if (peer === undefined) return Promise.reject(errors.unavailable(`the address of raft member ${raftId.toString(16)} is not known yet`));
    return unaryCall(peer.client, method, request, options);
  }

  /** Calls a unary method on the manager at `address`, over a channel opened for this call only. */
  async callAddress<Req, Res>(address: string, method: UnaryMethod<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    const client = this.dial(address);
    try {
      return await unaryCall(client, method, request, options);
    } finally {
      client.close();
    }
  }

  /**
   * Resolves once a mutual-TLS connection to `address` is up (the leader's health check of a joiner's
   * advertised address, as swarmkit's); rejects with INVALID_ARGUMENT after `timeoutMs`.
   */
  async checkReachable(address: string, timeoutMs: number): Promise<void> {
    const client = this.dial(address);
    try {
      await new Promise<void>((resolve, reject) =>
        client.waitForReady(Date.now() + timeoutMs, (err) => {
          if (err === undefined || err === null) return resolve();
          const message = `raft: could not connect to prospective new cluster member using its advertised address ${address}`;
          reject(errors.invalidArgument(message, { address }));
        }),
      );
    } finally {
      client.close();
    }
  }

  /** Closes every channel; queued messages are dropped. */
  close(): void {
    this.#closed = true;
    for (const peer of this.#peers.values()) peer.client.close();
    this.#peers.clear();
  }

  private dial(address: string): GrpcClient {
    return createClient({ address, credentials: this.#credentials, serverName: this.#options.serverName });
  }

  private async drain(to: bigint, peer: Peer): Promise<void> {
    peer.sending = true;
    try {
      while (peer.queue.length > 0 && !this.#closed) {
        const messages = takeBatch(peer.queue);
        try {
          await unaryCall(peer.client, RaftService.processRaftMessage, { messages }, { deadlineMs: this.#options.sendTimeoutMs });
        } catch (err) {
          // What is still queued was built for a member that is not answering: raft resends what matters.
          peer.queue.length = 0;
          this.reportFailure(to, err);
          this.redial(peer);
        }
      }
    } finally {
      peer.sending = false;
    }
  }

  private redial(peer: Peer): void {
    if (this.#closed || Date.now() - peer.dialedAt < this.#options.redialIntervalMs) return;
    peer.client.close();
    peer.client = this.dial(peer.address);
    peer.dialedAt = Date.now();
  }

  private reportFailure(to: bigint, err: unknown): void {
    const failure = toShoalError(err);
    this.#options.log.debug({ to, err: failure }, 'raft message not delivered');
    this.#options.events.unreachable(to);
    this.#options.events.refused(failure);
  }

  /**
   * Streams a MsgSnap with the snapshot's data read from storage, chunk by chunk, so that neither side
   * holds more than a chunk or two and no gRPC message exceeds its limit, then reports the outcome.
   */
  private async streamSnapshot(peer: Peer, message: Message): Promise<void> {
    const { log, events, snapshotChunkBytes } = this.#options;
    const metadata = message.snapshot?.metadata;
    let chunks = 0;
    let bytes = 0;
    try {
      if (metadata === undefined) throw errors.internal('raft-core sent a snapshot message without snapshot metadata');
      const reader = await this.#options.openSnapshot(metadata);
      try {
        const { call, answer } = openSnapshotStream(peer.client);
        const frame = (data: Buffer): StreamRaftMessageRequest => ({ message: { ...message, snapshot: { metadata, data } } });
        for await (const piece of chunked(reader, snapshotChunkBytes)) {
          chunks++;
          bytes += piece.length;
          // The answer settles early only if the receiver failed the stream; then no drain is coming.
          if (!call.write(frame(piece))) await Promise.race([once(call, 'drain'), answer]);
        }
        call.end();
        await answer;
      } finally {
        await reader.close();
      }
      log.info({ to: message.to, index: metadata.index, chunks, bytes }, 'snapshot sent');
      events.snapshotSent(message.to, 'finished');
    } catch (err) {
      log.warn({ to: message.to, index: metadata?.index, chunks, err: toShoalError(err) }, 'snapshot not delivered; raft will try again');
      events.snapshotSent(message.to, 'failed');
      this.reportFailure(message.to, err);
    }
  }
}

/**
 * Opens a StreamRaftMessage call. `answer` settles when the receiver answers; it is marked handled at
 * once because a receiver that fails the stream early rejects it before anyone awaits it.
 */
function openSnapshotStream(client: GrpcClient) {
  const method = RaftService.streamRaftMessage;
  let settle!: { resolve(): void; reject(err: unknown): void };
  const answer = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  answer.catch(() => undefined);
  const call = client.makeClientStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, (err) =>
    err === null ? settle.resolve() : settle.reject(fromGrpcError(err)),
  );
  return { call, answer };
}

/** Re-cuts a stream of buffers into pieces of at most `size` bytes (without copying), always yielding at least one. */
async function* chunked(source: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let yielded = false;
  for await (const buffer of source) {
    for (let offset = 0; offset < buffer.length; offset += size) {
      yielded = true;
      yield buffer.subarray(offset, offset + size);
    }
  }
  // An empty snapshot still needs one message to carry the MsgSnap.
  if (!yielded) yield Buffer.alloc(0);
}

/**
 * Bytes of raft messages sent in one call at most: half of gRPC's 4 MiB message limit, leaving room
 * for framing. A message larger than this on its own still goes, alone.
 */
const MAX_BATCH_BYTES = 2 * 1024 * 1024;

/** Removes and returns the longest prefix of `queue` that fits {@link MAX_BATCH_BYTES} (at least one message). */
function takeBatch(queue: Message[]): Message[] {
  let bytes = 0;
  let count = 0;
  for (const message of queue) {
    bytes += approximateSize(message);
    if (count > 0 && bytes > MAX_BATCH_BYTES) break;
    count++;
  }
  return queue.splice(0, count);
}

/** A message's size, counting what can be large (entry payloads) and a fixed allowance for the rest. */
function approximateSize(message: Message): number {
  return 64 + message.entries.reduce((sum, entry) => sum + entry.data.length + 24, 0);
}
