import { readFileSync } from 'node:fs';
import { cpus, hostname, release, totalmem } from 'node:os';
import { type Cluster, type Node, NodeRole } from '@shoal/proto';
import { LOCKED_MESSAGE } from '@shoal/raft-storage';
import { API_VERSION, MIN_API_VERSION } from '../http/server.js';
import { type DockerClusterInfo, clusterToDocker } from './swarm.js';
import { dockerTime } from './wire.js';

/*
 * The bodies of `/_ping`, `/version` and `/info` (moby api/types `Version`, `Info`, swarm `Info`),
 * with every field dockerd 20.10 sends, so both CLIs decode them. Shoal is a swarm manager, not a
 * container engine: engine-only facts (containers, images, storage, cgroups) are zero, and `/info`
 * says so in a warning.
 */

/** The OS Shoal presents as, in the `Ostype` header and the bodies: agents drive Linux engines. */
const OS_TYPE = 'linux';
/** What `/version` reports as the Go version: Shoal has none, so it names its runtime instead. */
const RUNTIME_VERSION = `n/a (Node.js ${process.version})`;
/**
 * Printed by `docker info` in place of dockerd's kernel-feature warnings, which the CLI derives from
 * the `MemoryLimit`… flags whenever the server sends no warnings.
 */
export const NOT_AN_ENGINE_WARNING =
  'WARNING: this is Shoal, a swarm manager: the engine fields of docker info (containers, images, storage, kernel features) describe no engine';
/** dockerd's warning for a swarm with two managers, where losing either loses the quorum. */
export const TWO_MANAGERS_WARNING = `WARNING: Running Swarm in a two-manager configuration. This configuration provides
         no fault tolerance, and poses a high risk to lose control over the cluster.
         Refer to https://docs.docker.com/engine/swarm/admin_guide/ to configure the
         Swarm for fault-tolerance.`;

/** Node's `process.arch` → Go's `GOARCH`, which `/version` reports. */
const GO_ARCHITECTURES: Readonly<Record<string, string>> = {
  x64: 'amd64',
  ia32: '386',
  arm: 'arm',
  arm64: 'arm64',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
};
/** Go's `GOARCH` → `uname -m`, which `/info` reports as `Architecture`. */
const MACHINE_NAMES: Readonly<Record<string, string>> = { amd64: 'x86_64', '386': 'i686', arm: 'armv7l', arm64: 'aarch64' };

/** What `/version` and `/info` say about this host and this Shoal. */
export interface SystemFacts {
  /** Shoal's version, reported where dockerd reports its own. */
  readonly shoalVersion: string;
  readonly hostname: string;
  readonly cpus: number;
  readonly memoryBytes: number;
  /** As `uname -r` prints it. */
  readonly kernelVersion: string;
  /** The distribution's name (`PRETTY_NAME` of /etc/os-release). */
  readonly operatingSystem: string;
  /** Go's name for the CPU architecture (`amd64`), see {@link goArchitecture}. */
  readonly architecture: string;
  /** The distribution's version (`VERSION_ID`); empty when unknown. */
  readonly osVersion?: string;
  readonly gitCommit?: string;
  /** RFC 3339; empty when unknown. */
  readonly buildTime?: string;
}

/** A manager another node can reach, as `Info.Swarm.RemoteManagers` lists it. */
export interface SwarmPeer {
  readonly nodeId: string;
  /** `host:port` of its raft transport. */
  readonly addr: string;
}

/** This host's standing in the swarm: what `Info.Swarm` and the `Swarm` ping header report. */
export type LocalSwarmState =
  | { readonly state: 'inactive' }
  | {
      readonly state: 'pending' | 'locked' | 'error';
      /** The address the node advertises, when it has one. */
      readonly nodeAddr?: string;
      /** Why; a locked node says it must be unlocked unless told otherwise. */
      readonly error?: string;
    }
  | {
      readonly state: 'active';
      readonly role: 'worker';
      readonly nodeId: string;
      readonly nodeAddr: string;
      readonly remoteManagers: readonly SwarmPeer[];
    }
  | {
      readonly state: 'active';
      readonly role: 'manager';
      readonly nodeId: string;
      readonly nodeAddr: string;
      readonly remoteManagers: readonly SwarmPeer[];
      readonly cluster: Cluster;
      readonly nodeCount: number;
      readonly managerCount: number;
    };

/** `GET /version`. */
export interface DockerVersion {
  Platform: { Name: string };
  Components: { Name: string; Version: string; Details: Record<string, string> }[];
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  GitCommit: string;
  GoVersion: string;
  Os: string;
  Arch: string;
  KernelVersion: string;
  BuildTime?: string;
}

/** `Info.Swarm`. */
export interface DockerSwarmInfo {
  NodeID: string;
  NodeAddr: string;
  LocalNodeState: string;
  ControlAvailable: boolean;
  Error: string;
  RemoteManagers: { NodeID: string; Addr: string }[] | null;
  Nodes?: number;
  Managers?: number;
  Cluster?: DockerClusterInfo;
}

interface CommitInfo {
  ID: string;
  Expected: string;
}

/** `GET /info`, every field dockerd 20.10 sends. */
export interface DockerInfo {
  ID: string;
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  Images: number;
  Driver: string;
  DriverStatus: [string, string][];
  Plugins: { Volume: string[]; Network: string[]; Authorization: string[] | null; Log: string[] };
  MemoryLimit: boolean;
  SwapLimit: boolean;
  KernelMemory: boolean;
  KernelMemoryTCP: boolean;
  CpuCfsPeriod: boolean;
  CpuCfsQuota: boolean;
  CPUShares: boolean;
  CPUSet: boolean;
  PidsLimit: boolean;
  IPv4Forwarding: boolean;
  BridgeNfIptables: boolean;
  BridgeNfIp6tables: boolean;
  Debug: boolean;
  NFd: number;
  OomKillDisable: boolean;
  NGoroutines: number;
  SystemTime: string;
  LoggingDriver: string;
  CgroupDriver: string;
  CgroupVersion: string;
  NEventsListener: number;
  KernelVersion: string;
  OperatingSystem: string;
  OSVersion: string;
  OSType: string;
  Architecture: string;
  IndexServerAddress: string;
  RegistryConfig: {
    AllowNondistributableArtifactsCIDRs: string[];
    AllowNondistributableArtifactsHostnames: string[];
    InsecureRegistryCIDRs: string[];
    IndexConfigs: Record<string, never>;
    Mirrors: string[];
  };
  NCPU: number;
  MemTotal: number;
  GenericResources: null;
  DockerRootDir: string;
  HttpProxy: string;
  HttpsProxy: string;
  NoProxy: string;
  Name: string;
  Labels: string[];
  ExperimentalBuild: boolean;
  ServerVersion: string;
  Runtimes: Record<string, never>;
  DefaultRuntime: string;
  Swarm: DockerSwarmInfo;
  LiveRestoreEnabled: boolean;
  Isolation: string;
  InitBinary: string;
  ContainerdCommit: CommitInfo;
  RuncCommit: CommitInfo;
  InitCommit: CommitInfo;
  SecurityOptions: string[];
  Warnings: string[];
}

/** Go's `GOARCH` for a Node.js `process.arch` (`x64` → `amd64`); unknown ones pass through. */
export function goArchitecture(nodeArchitecture: string = process.arch): string {
  return GO_ARCHITECTURES[nodeArchitecture] ?? nodeArchitecture;
}

/** The facts of the host this process runs on. Reads /etc/os-release once; call it at startup. */
export function hostSystemFacts(shoalVersion: string): SystemFacts {
  const osRelease = readOsRelease();
  return {
    shoalVersion,
    hostname: hostname(),
    cpus: cpus().length,
    memoryBytes: totalmem(),
    kernelVersion: release(),
    operatingSystem: osRelease.get('PRETTY_NAME') ?? 'Linux',
    osVersion: osRelease.get('VERSION_ID') ?? '',
    architecture: goArchitecture(),
  };
}

/**
 * The headers `/_ping` adds to those every response carries, as dockerd's ping handler sets them: no
 * caching, a plain-text content type (also on `HEAD`, which has no body to say so), and this host's
 * swarm standing (`Swarm: inactive | pending | error | locked | active/worker | active/manager`),
 * which CLI 28 reads to hide manager-only commands from its help.
 */
export function pingHeaders(swarm: LocalSwarmState): Record<string, string> {
  return {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Pragma: 'no-cache',
    Swarm: swarm.state === 'active' ? `active/${swarm.role}` : swarm.state,
  };
}

/**
 * `GET /version`: Shoal's version where dockerd puts its own, API 1.41 down to 1.24, this host's
 * kernel and architecture, and the runtime in place of a Go version.
 */
export function versionBody(facts: SystemFacts): DockerVersion {
  const gitCommit = facts.gitCommit ?? '';
  const buildTime = facts.buildTime ?? '';
  return {
    Platform: { Name: 'Shoal' },
    Components: [
      {
        Name: 'Engine',
        Version: facts.shoalVersion,
        Details: {
          ApiVersion: API_VERSION,
          Arch: facts.architecture,
          BuildTime: buildTime,
          Experimental: 'false',
          GitCommit: gitCommit,
          GoVersion: RUNTIME_VERSION,
          KernelVersion: facts.kernelVersion,
          MinAPIVersion: MIN_API_VERSION,
          Os: OS_TYPE,
        },
      },
    ],
    Version: facts.shoalVersion,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: gitCommit,
    GoVersion: RUNTIME_VERSION,
    Os: OS_TYPE,
    Arch: facts.architecture,
    KernelVersion: facts.kernelVersion,
    BuildTime: buildTime || undefined,
  };
}

/**
 * `GET /info`: the host's CPUs, memory, name, kernel and OS, Shoal's version, and the swarm block
 * (with the cluster only on a manager). `ID` is this host's node ID while it is in a swarm.
 */
export function infoBody(facts: SystemFacts, swarm: LocalSwarmState, now: Date = new Date()): DockerInfo {
  const noCommit = { ID: '', Expected: '' };
  const warnings = [NOT_AN_ENGINE_WARNING];
  if (swarm.state === 'active' && swarm.role === 'manager' && swarm.managerCount === 2) warnings.push(TWO_MANAGERS_WARNING);
  return {
    ID: swarm.state === 'active' ? swarm.nodeId : '',
    Containers: 0,
    ContainersRunning: 0,
    ContainersPaused: 0,
    ContainersStopped: 0,
    Images: 0,
    Driver: '',
    DriverStatus: [],
    Plugins: { Volume: [], Network: ['overlay'], Authorization: null, Log: [] },
    MemoryLimit: false,
    SwapLimit: false,
    KernelMemory: false,
    KernelMemoryTCP: false,
    CpuCfsPeriod: false,
    CpuCfsQuota: false,
    CPUShares: false,
    CPUSet: false,
    PidsLimit: false,
    IPv4Forwarding: false,
    BridgeNfIptables: false,
    BridgeNfIp6tables: false,
    Debug: false,
    NFd: 0,
    OomKillDisable: false,
    NGoroutines: 0,
    SystemTime: dockerTime(now),
    LoggingDriver: '',
    CgroupDriver: '',
    CgroupVersion: '',
    NEventsListener: 0,
    KernelVersion: facts.kernelVersion,
    OperatingSystem: facts.operatingSystem,
    OSVersion: facts.osVersion ?? '',
    OSType: OS_TYPE,
    Architecture: MACHINE_NAMES[facts.architecture] ?? facts.architecture,
    // The CLI's default registry for `--with-registry-auth`; without it the CLI warns.
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: {
      AllowNondistributableArtifactsCIDRs: [],
      AllowNondistributableArtifactsHostnames: [],
      InsecureRegistryCIDRs: [],
      IndexConfigs: {},
      Mirrors: [],
    },
    NCPU: facts.cpus,
    MemTotal: facts.memoryBytes,
    GenericResources: null,
    DockerRootDir: '',
    HttpProxy: '',
    HttpsProxy: '',
    NoProxy: '',
    Name: facts.hostname,
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: facts.shoalVersion,
    Runtimes: {},
    DefaultRuntime: '',
    Swarm: swarmInfo(swarm),
    LiveRestoreEnabled: false,
    Isolation: '',
    InitBinary: '',
    ContainerdCommit: noCommit,
    RuncCommit: noCommit,
    InitCommit: noCommit,
    SecurityOptions: [],
    Warnings: warnings,
  };
}

/**
 * The standing of a host whose node is `self` in a swarm of `nodes`: a manager while its node is a
 * raft member (it has a manager status), else a worker. Managers are listed by node ID.
 */
export function activeSwarmState(cluster: Cluster, self: Node, nodes: readonly Node[]): LocalSwarmState {
  const managers = nodes.filter((node) => node.managerStatus !== undefined).sort((a, b) => a.id.localeCompare(b.id));
  const common = {
    state: 'active' as const,
    nodeId: self.id,
    nodeAddr: self.status?.addr ?? '',
    remoteManagers: managers.map((node) => ({ nodeId: node.id, addr: node.managerStatus?.addr ?? '' })),
  };
  if (self.role !== NodeRole.MANAGER || self.managerStatus === undefined) return { ...common, role: 'worker' };
  return { ...common, role: 'manager', cluster, nodeCount: nodes.length, managerCount: managers.length };
}

/** dockerd's `Cluster.Info`: counts and the cluster only for an active manager, as the CLI expects. */
function swarmInfo(swarm: LocalSwarmState): DockerSwarmInfo {
  switch (swarm.state) {
    case 'inactive':
      return { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null };
    case 'pending':
    case 'locked':
    case 'error':
      return {
        NodeID: '',
        NodeAddr: swarm.nodeAddr ?? '',
        LocalNodeState: swarm.state,
        ControlAvailable: false,
        Error: swarm.error ?? (swarm.state === 'locked' ? LOCKED_MESSAGE : ''),
        RemoteManagers: null,
      };
    case 'active': {
      const active: DockerSwarmInfo = {
        NodeID: swarm.nodeId,
        NodeAddr: swarm.nodeAddr,
        LocalNodeState: 'active',
        ControlAvailable: swarm.role === 'manager',
        Error: '',
        RemoteManagers: swarm.remoteManagers.map((peer) => ({ NodeID: peer.nodeId, Addr: peer.addr })),
      };
      if (swarm.role === 'worker') return active;
      return {
        ...active,
        Nodes: swarm.nodeCount || undefined,
        Managers: swarm.managerCount || undefined,
        Cluster: clusterToDocker(swarm.cluster, { includeJoinTokens: false }),
      };
    }
  }
}

/** /etc/os-release as a map; empty when the file is missing (not every host has one). */
function readOsRelease(): Map<string, string> {
  let text: string;
  try {
    text = readFileSync('/etc/os-release', 'utf8');
  } catch {
    return new Map();
  }
  const entries = text.split('\n').flatMap((line) => {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    return match === null ? [] : [[match[1]!, match[2]!.replace(/^(["'])(.*)\1$/, '$2')] as const];
  });
  return new Map(entries);
}
