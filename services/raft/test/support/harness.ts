import { Supervisor } from '@shoal/runtime';
import { captureLogs } from '@shoal/runtime/testing';
import { StoreClient } from '@shoal/proto';
import { createChannelCredentials, createClient, type ClientTls } from '@shoal/rpc';
import { createTestPki, type TestCertificate } from '@shoal/testkit';
import type { Transaction } from '@shoal/store';
import { createStoreClient, type StoreApiClient } from '@shoal/store-client';
import {
  LocalConsensus,
  storeApiComponent,
  type Consensus,
  type NudgePublisher,
  type StoreApiLimits,
} from '../../src/store-api/index.js';

/** As in swarmkit, clients verify a manager by its role name, not by the address they dial. */
const SERVER_NAME = 'swarm-manager';

const pki = createTestPki();
const serverIdentity = pki.ca.issue({ cn: 'manager-1', ou: 'swarm-manager', o: 'cluster-1', serverNames: [SERVER_NAME] });
/** Identities a test can call the Store API as. */
export const identities = {
  manager: pki.ca.issue({ cn: 'manager-2', ou: 'swarm-manager', o: 'cluster-1' }),
  worker: pki.ca.issue({ cn: 'worker-1', ou: 'swarm-worker', o: 'cluster-1' }),
  foreignManager: pki.foreignCa.issue({ cn: 'intruder', ou: 'swarm-manager', o: 'cluster-1' }),
};

const tlsAs = (identity: TestCertificate): ClientTls => ({ ca: pki.ca.caCertPem, cert: identity.certPem, key: identity.keyPem });

/** A Store API served over mutual TLS on 127.0.0.1 by the real component, under a supervisor. */
export interface StoreApiHarness extends AsyncDisposable {
  readonly consensus: Consensus;
  readonly logs: ReturnType<typeof captureLogs>;
  /** A typed client, as `manager` unless told otherwise; closed with the harness. */
  client(identity?: TestCertificate): StoreApiClient;
  /** The generated grpc-js client, for requests the typed client cannot even express; closed with the harness. */
  rawClient(): StoreClient;
  /** Stops the component (gracefully), then closes every client; resolves with what the supervisor reported. */
  stop(): ReturnType<Supervisor['stop']>;
}

export interface HarnessOptions {
  consensus?: Consensus;
  bus?: NudgePublisher;
  limits?: Partial<StoreApiLimits>;
}

export async function startStoreApi(options: HarnessOptions = {}): Promise<StoreApiHarness> {
  const consensus = options.consensus ?? new LocalConsensus();
  const logs = captureLogs({ level: 'warn' });
  const component = storeApiComponent({
    consensus,
    bus: options.bus,
    limits: options.limits,
    tls: { ca: pki.ca.caCertPem, cert: serverIdentity.certPem, key: serverIdentity.keyPem },
    address: '127.0.0.1:0',
    stopGraceMs: 500,
  });
  const supervisor = new Supervisor({ log: logs.log, components: [component], shutdownGraceMs: 5_000 });
  await supervisor.start();
  const address = `127.0.0.1:${component.port}`;
  const closers: (() => void)[] = [];
  const stop = async () => {
    const result = await supervisor.stop();
    for (const close of closers.splice(0)) close();
    return result;
  };
  return {
    consensus,
    logs,
    client(identity = identities.manager) {
      const client = createStoreClient({ address, tls: tlsAs(identity), serverName: SERVER_NAME });
      closers.push(() => client.close());
      return client;
    },
    rawClient() {
      const credentials = createChannelCredentials(tlsAs(identities.manager));
      const client = createClient({ address, credentials, serverName: SERVER_NAME }, StoreClient);
      closers.push(() => client.close());
      return client;
    },
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

/** A gate a test opens when it chooses; until then everything that passes through it waits. */
export class Gate {
  #open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.#open = resolve));

  open(): void {
    this.#open();
  }
}

/**
 * A single-replica consensus whose read barrier and proposals wait at gates the test controls, as a
 * slow Raft round trip would, and which records what reached them.
 */
export class GatedConsensus extends LocalConsensus {
  readonly barrierSignals: (AbortSignal | undefined)[] = [];
  readonly proposals: Transaction[] = [];
  readGate: Gate | undefined;
  proposalGate: Gate | undefined;

  /** Waits for the read gate, and gives up when `signal` aborts, as a real barrier does. */
  override async readBarrier(signal?: AbortSignal): Promise<void> {
    this.barrierSignals.push(signal);
    const gate = this.readGate;
    if (gate === undefined) return;
    await new Promise<void>((resolve, reject) => {
      void gate.opened.then(resolve);
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }

  override async propose(transaction: Transaction): Promise<bigint> {
    this.proposals.push(transaction);
    await this.proposalGate?.opened;
    return super.propose(transaction);
  }
}
