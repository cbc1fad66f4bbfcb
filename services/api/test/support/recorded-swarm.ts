import { Cluster } from '@shoal/proto';
import { clusterSpecFromDocker } from '../../src/convert/swarm.js';
import { metaBehind, recordedResponseObjects } from './recorded-json.js';

/** `GET /swarm` as dockerd 20.10 answered it. */
export interface RecordedSwarm {
  ID: string;
  Version: { Index: number };
  CreatedAt: string;
  UpdatedAt: string;
  Spec: unknown;
  TLSInfo: { TrustRoot: string; CertIssuerSubject: string; CertIssuerPublicKey: string };
  DefaultAddrPool: string[];
  SubnetSize: number;
  DataPathPort: number;
  JoinTokens: { Worker: string; Manager: string };
}

/** Every distinct `GET /swarm` body recorded (the transcripts were made in one swarm). */
export function recordedSwarms(): { transcript: string; body: RecordedSwarm }[] {
  return recordedResponseObjects(/^\/swarm$/) as unknown as { transcript: string; body: RecordedSwarm }[];
}

/** The store's cluster behind a swarm dockerd printed: its spec, root CA, join tokens and address pool. */
export function clusterBehind(recorded: RecordedSwarm): Cluster {
  return Cluster.fromPartial({
    id: recorded.ID,
    meta: metaBehind(recorded),
    spec: clusterSpecFromDocker(recorded.Spec),
    rootCa: {
      caCert: Buffer.from(recorded.TLSInfo.TrustRoot),
      joinTokens: { worker: recorded.JoinTokens.Worker, manager: recorded.JoinTokens.Manager },
    },
    defaultAddressPool: recorded.DefaultAddrPool,
    subnetSize: recorded.SubnetSize,
    vxlanUdpPort: recorded.DataPathPort,
  });
}
