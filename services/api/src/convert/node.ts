import { errors } from '@shoal/errors';
import {
  type GenericResource,
  type Node,
  type NodeDescription,
  NodeRole,
  type NodeSpec,
  NodeSpec_Availability,
  NodeSpec_Membership,
  NodeStatus_State,
  type NodeTLSInfo,
  RaftMemberStatus_Reachability,
} from '@shoal/proto';
import { Decoder } from './decode.js';
import { type DockerAnnotations, annotationsFromDocker, annotationsToDocker } from './network.js';
import { type DockerMeta, dockerMeta } from './wire.js';

/*
 * Nodes as dockerd 20.10 shows them (daemon/cluster/convert/node.go `NodeFromGRPC` and
 * `NodeSpecToGRPC`). Fields tagged `omitempty` in Docker's Go types are left undefined when empty,
 * so JSON.stringify drops them as encoding/json does; structs are always present.
 */

/** `GET /nodes/{id}`: a node as the docker CLI reads it. */
export interface DockerNode extends DockerMeta {
  Spec: DockerNodeSpec;
  Description: DockerNodeDescription;
  Status: DockerNodeStatus;
  /** Present while the node is a manager (a raft member). */
  ManagerStatus?: DockerManagerStatus;
}

export interface DockerNodeSpec extends DockerAnnotations {
  /** The desired role: `worker` or `manager`. */
  Role: string;
  /** `active`, `pause` or `drain`. */
  Availability: string;
}

export interface DockerNodeDescription {
  Hostname?: string;
  Platform: { Architecture?: string; OS?: string };
  Resources: DockerResources;
  Engine: { EngineVersion?: string; Labels?: Record<string, string>; Plugins?: { Type: string; Name: string }[] };
  TLSInfo: DockerTLSInfo;
}

export interface DockerResources {
  NanoCPUs?: number;
  MemoryBytes?: number;
  GenericResources?: DockerGenericResource[];
}

export interface DockerGenericResource {
  NamedResourceSpec?: { Kind?: string; Value?: string };
  DiscreteResourceSpec?: { Kind?: string; Value?: number };
}

/** The trust a node or the cluster reports: root CA in PEM, issuer subject and key as base64 DER. */
export interface DockerTLSInfo {
  TrustRoot?: string;
  CertIssuerSubject?: string;
  CertIssuerPublicKey?: string;
}

export interface DockerNodeStatus {
  /** `unknown`, `down`, `ready` or `disconnected`. */
  State: string;
  Message?: string;
  Addr?: string;
}

export interface DockerManagerStatus {
  Leader?: boolean;
  /** `unknown`, `unreachable` or `reachable`. */
  Reachability: string;
  Addr?: string;
}

/** `node` in Docker's JSON. */
export function nodeToDocker(node: Node): DockerNode {
  const spec = node.spec;
  const managerStatus = node.managerStatus;
  return {
    ...dockerMeta(node.id, node.meta),
    Spec: {
      ...annotationsToDocker(spec?.annotations),
      Role: dockerEnumName(NodeRole, spec?.desiredRole ?? NodeRole.WORKER),
      Availability: dockerEnumName(NodeSpec_Availability, spec?.availability ?? NodeSpec_Availability.ACTIVE),
    },
    Description: descriptionToDocker(node.description),
    Status: {
      State: dockerEnumName(NodeStatus_State, node.status?.state ?? NodeStatus_State.UNKNOWN),
      Message: node.status?.message || undefined,
      Addr: node.status?.addr || undefined,
    },
    ManagerStatus:
      managerStatus === undefined
        ? undefined
        : {
            Leader: managerStatus.leader || undefined,
            Reachability: dockerEnumName(RaftMemberStatus_Reachability, managerStatus.reachability),
            Addr: managerStatus.addr || undefined,
          },
  };
}

/**
 * The NodeSpec of `POST /nodes/{id}/update`: `Name`, `Labels`, `Role` and `Availability`, the last
 * two case-insensitively and required (`invalid Role: ""`, as dockerd answers a body without one).
 * Docker's spec has no membership: the result keeps `current`'s, or ACCEPTED (every node the API can
 * see has been accepted by its join token).
 */
export function nodeSpecFromDocker(body: unknown, current?: NodeSpec): NodeSpec {
  const decoder = Decoder.root(body, 'NodeSpec');
  return {
    annotations: annotationsFromDocker(decoder),
    desiredRole: roleFromDocker(decoder.string('Role') ?? ''),
    membership: current?.membership ?? NodeSpec_Membership.ACCEPTED,
    availability: availabilityFromDocker(decoder.string('Availability') ?? ''),
  };
}

/** A node role as Docker writes it (`worker`, `manager`, any case); anything else is INVALID_ARGUMENT. */
function roleFromDocker(role: string): NodeRole {
  return enumFromDocker(NodeRole, role, 'Role');
}

/**
 * A node availability as Docker writes it (`active`, `pause`, `drain`, any case); anything else is
 * INVALID_ARGUMENT `invalid Availability: "…"`, dockerd's message.
 */
export function availabilityFromDocker(availability: string): NodeSpec_Availability {
  return enumFromDocker(NodeSpec_Availability, availability, 'Availability');
}

/** The raw DER of the node's issuer subject and public key, as Docker's `[]byte` fields: base64. */
export function tlsInfoToDocker(tlsInfo: NodeTLSInfo | undefined): DockerTLSInfo {
  return {
    TrustRoot: tlsInfo?.trustRoot.length ? tlsInfo.trustRoot.toString('utf8') : undefined,
    CertIssuerSubject: tlsInfo?.certIssuerSubject.length ? tlsInfo.certIssuerSubject.toString('base64') : undefined,
    CertIssuerPublicKey: tlsInfo?.certIssuerPublicKey.length ? tlsInfo.certIssuerPublicKey.toString('base64') : undefined,
  };
}

function descriptionToDocker(description: NodeDescription | undefined): DockerNodeDescription {
  const engine = description?.engine;
  const resources = description?.resources;
  const engineLabels = engine?.labels ?? {};
  const plugins = engine?.plugins ?? [];
  const generic = resources?.generic ?? [];
  return {
    Hostname: description?.hostname || undefined,
    Platform: {
      Architecture: description?.platform?.architecture || undefined,
      OS: description?.platform?.os || undefined,
    },
    Resources: {
      NanoCPUs: Number(resources?.nanoCpus ?? 0n) || undefined,
      MemoryBytes: Number(resources?.memoryBytes ?? 0n) || undefined,
      GenericResources: generic.length > 0 ? generic.map(genericResourceToDocker) : undefined,
    },
    Engine: {
      EngineVersion: engine?.engineVersion || undefined,
      Labels: Object.keys(engineLabels).length > 0 ? { ...engineLabels } : undefined,
      Plugins: plugins.length > 0 ? plugins.map((plugin) => ({ Type: plugin.type, Name: plugin.name })) : undefined,
    },
    TLSInfo: tlsInfoToDocker(description?.tlsInfo),
  };
}

function genericResourceToDocker(resource: GenericResource): DockerGenericResource {
  const named = resource.namedResourceSpec;
  const discrete = resource.discreteResourceSpec;
  return {
    NamedResourceSpec: named && { Kind: named.kind || undefined, Value: named.value || undefined },
    DiscreteResourceSpec: discrete && { Kind: discrete.kind || undefined, Value: Number(discrete.value) || undefined },
  };
}

/** A protobuf enum with the numeric value→name reverse mapping TypeScript generates. */
type NumericEnum = Record<string, string | number>;

/** Docker prints swarmkit's enum names in lower case (`strings.ToLower(x.String())`). */
function dockerEnumName(enumObject: NumericEnum, value: number): string {
  return String(enumObject[value] ?? value).toLowerCase();
}

/** dockerd looks names up upper-cased in swarmkit's `_value` maps and reports `invalid <Field>: "<text>"`. */
function enumFromDocker<E extends number>(enumObject: Record<string, string | E>, text: string, field: string): E {
  const value = enumObject[text.toUpperCase()];
  if (typeof value !== 'number' || value < 0) throw errors.invalidArgument(`invalid ${field}: ${JSON.stringify(text)}`);
  return value;
}
