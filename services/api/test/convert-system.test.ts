import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, hostname, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Node, NodeRole } from '@shoal/proto';
import { LOCKED_MESSAGE } from '@shoal/raft-storage';
import {
  type LocalSwarmState,
  NOT_AN_ENGINE_WARNING,
  type SystemFacts,
  TWO_MANAGERS_WARNING,
  activeSwarmState,
  goArchitecture,
  hostSystemFacts,
  infoBody,
  pingHeaders,
  versionBody,
} from '../src/convert/system.js';
import { DOCKER_CLIS, runDocker } from '@shoal/testkit';
import { atMillisecondPrecision, jsonShapeMismatches, recordedExchanges, recordedResponseObjects, wireJson } from './support/recorded-json.js';
import { clusterBehind, recordedSwarms } from './support/recorded-swarm.js';

const facts: SystemFacts = {
  shoalVersion: '0.1.0',
  hostname: 'vm',
  cpus: 2,
  memoryBytes: 25_276_502_016,
  kernelVersion: '6.18.44-fc-v669',
  operatingSystem: 'Debian GNU/Linux 12 (bookworm)',
  osVersion: '12',
  architecture: 'amd64',
};

/** The swarm the transcripts were recorded in: its cluster, and its one node, a leader. */
const recordedSwarm = recordedSwarms()[0]!.body;
const recordedCluster = clusterBehind(recordedSwarm);
const leader = Node.fromPartial({
  id: 'plm4mybsj4rzwpzo2a7oe05kw',
  role: NodeRole.MANAGER,
  status: { addr: '127.0.0.1' },
  managerStatus: { addr: '127.0.0.1:2377', leader: true },
});
const worker = Node.fromPartial({ id: 'w0rkerw0rkerw0rkerw0rker1', role: NodeRole.WORKER, status: { addr: '10.0.0.7' } });
const managerState = activeSwarmState(recordedCluster, leader, [leader]);

function recordedInfo(state: string): Record<string, unknown> {
  const exchange = recordedExchanges('GET', /^\/info$/).find(
    (candidate) => !candidate.responseBodyTruncated && (candidate.responseBody as { Swarm?: { LocalNodeState?: string } }).Swarm?.LocalNodeState === state,
  );
  return exchange!.responseBody as Record<string, unknown>;
}

describe('/version', () => {
  const recorded = recordedResponseObjects(/^\/version$/);

  it('has the keys and types of the body dockerd sent, for both CLIs', () => {
    expect(recorded.length).toBeGreaterThanOrEqual(1);
    const built = versionBody({ ...facts, buildTime: '2026-11-21T19:00:00Z' });
    for (const { transcript, body } of recorded) expect(jsonShapeMismatches(built, body), transcript).toEqual([]);
  });

  it("reports Shoal's version, API 1.41 down to 1.24, and this host's kernel and architecture", () => {
    const body = versionBody({ ...facts, gitCommit: 'abc1234', buildTime: '2026-11-21T19:00:00Z' });
    expect(body).toMatchObject({
      Platform: { Name: 'Shoal' },
      Version: '0.1.0',
      ApiVersion: '1.41',
      MinAPIVersion: '1.24',
      GitCommit: 'abc1234',
      GoVersion: `n/a (Node.js ${process.version})`,
      Os: 'linux',
      Arch: 'amd64',
      KernelVersion: '6.18.44-fc-v669',
      BuildTime: '2026-11-21T19:00:00Z',
    });
    const engine = (recorded[0]!.body['Components'] as { Name: string; Details: object }[]).find((component) => component.Name === 'Engine')!;
    expect(body.Components).toEqual([{ Name: 'Engine', Version: '0.1.0', Details: expect.any(Object) }]);
    expect(Object.keys(body.Components[0]!.Details).sort()).toEqual(Object.keys(engine.Details).sort());
  });

  it('leaves the build time out when unknown, as Go omits an empty one', () => {
    expect(wireJson(versionBody(facts))).not.toHaveProperty('BuildTime');
  });
});

describe('/info', () => {
  it('has every key dockerd sent, with the same types', () => {
    const recorded = recordedInfo('inactive');
    expect(jsonShapeMismatches(infoBody(facts, { state: 'inactive' }), recorded)).toEqual([]);
  });

  it('reports this host: CPUs, memory, name, kernel, OS and architecture', () => {
    expect(infoBody(facts, { state: 'inactive' })).toMatchObject({
      NCPU: 2,
      MemTotal: 25_276_502_016,
      Name: 'vm',
      KernelVersion: '6.18.44-fc-v669',
      OperatingSystem: 'Debian GNU/Linux 12 (bookworm)',
      OSVersion: '12',
      OSType: 'linux',
      Architecture: 'x86_64',
      ServerVersion: '0.1.0',
    });
  });

  it('prints the swarm block of an inactive host exactly as dockerd did', () => {
    expect(infoBody(facts, { state: 'inactive' }).Swarm).toEqual(recordedInfo('inactive')['Swarm']);
  });

  it('prints the swarm block of an active manager as dockerd did, cluster included', () => {
    const swarm = wireJson(infoBody(facts, managerState).Swarm) as Record<string, unknown>;
    const { JoinTokens: _joinTokens, ...cluster } = recordedSwarm;
    expect(swarm).toEqual(
      atMillisecondPrecision({
        NodeID: 'plm4mybsj4rzwpzo2a7oe05kw',
        NodeAddr: '127.0.0.1',
        LocalNodeState: 'active',
        ControlAvailable: true,
        Error: '',
        RemoteManagers: [{ NodeID: 'plm4mybsj4rzwpzo2a7oe05kw', Addr: '127.0.0.1:2377' }],
        Nodes: 1,
        Managers: 1,
        Cluster: cluster,
      }),
    );
    // The recorded /info bodies of an active swarm are cut short inside Cluster: check what survived.
    const truncated = recordedExchanges('GET', /^\/info$/).find((exchange) => exchange.transcript === 'ro_info_28')!.responseBody as string;
    const recordedScalars = [...truncated.slice(truncated.indexOf('"Swarm"')).matchAll(/"(\w+)": ("[^"]*"|\d+|true|false)\s*,?\s*\n/g)];
    expect(recordedScalars.length).toBeGreaterThan(15);
    const printed = JSON.stringify(swarm);
    for (const [, key, value] of recordedScalars) {
      if (key !== 'CreatedAt' && key !== 'UpdatedAt') expect(printed).toContain(`"${key}":${value}`);
    }
  });

  it('prints a worker without the cluster, the counts or control', () => {
    const swarm = wireJson(infoBody(facts, activeSwarmState(recordedCluster, worker, [leader, worker])).Swarm);
    expect(swarm).toEqual({
      NodeID: 'w0rkerw0rkerw0rkerw0rker1',
      NodeAddr: '10.0.0.7',
      LocalNodeState: 'active',
      ControlAvailable: false,
      Error: '',
      RemoteManagers: [{ NodeID: 'plm4mybsj4rzwpzo2a7oe05kw', Addr: '127.0.0.1:2377' }],
    });
  });

  it('prints a locked host as locked, saying it must be unlocked', () => {
    const swarm = infoBody(facts, { state: 'locked', nodeAddr: '127.0.0.1' }).Swarm;
    expect(swarm).toEqual({ NodeID: '', NodeAddr: '127.0.0.1', LocalNodeState: 'locked', ControlAvailable: false, Error: LOCKED_MESSAGE, RemoteManagers: null });
    expect(jsonShapeMismatches(swarm, { ...recordedInfo('inactive')['Swarm'] as object, LocalNodeState: 'locked' })).toEqual([]);
  });

  it("warns that it is no engine, and adds dockerd's warning for exactly two managers", () => {
    const second = Node.fromPartial({ id: 'm2', role: NodeRole.MANAGER, managerStatus: { addr: '10.0.0.2:2377' } });
    const third = Node.fromPartial({ id: 'm3', role: NodeRole.MANAGER, managerStatus: { addr: '10.0.0.3:2377' } });
    expect(infoBody(facts, { state: 'inactive' }).Warnings).toEqual([NOT_AN_ENGINE_WARNING]);
    expect(infoBody(facts, activeSwarmState(recordedCluster, leader, [leader, second])).Warnings).toEqual([NOT_AN_ENGINE_WARNING, TWO_MANAGERS_WARNING]);
    expect(infoBody(facts, activeSwarmState(recordedCluster, leader, [leader, second, third])).Warnings).toEqual([NOT_AN_ENGINE_WARNING]);
  });

  it('counts nodes and managers, listing the managers by node ID', () => {
    const second = Node.fromPartial({ id: 'aaaa', role: NodeRole.MANAGER, managerStatus: { addr: '10.0.0.2:2377' } });
    const state = activeSwarmState(recordedCluster, leader, [leader, worker, second]);
    expect(state).toMatchObject({
      role: 'manager',
      nodeCount: 3,
      managerCount: 2,
      remoteManagers: [
        { nodeId: 'aaaa', addr: '10.0.0.2:2377' },
        { nodeId: 'plm4mybsj4rzwpzo2a7oe05kw', addr: '127.0.0.1:2377' },
      ],
    });
  });
});

describe('the host', () => {
  it.each([
    ['x64', 'amd64'],
    ['arm64', 'arm64'],
    ['ia32', '386'],
    ['ppc64', 'ppc64le'],
    ['mips', 'mips'],
  ])('names the Node.js architecture %s as Go does: %s', (nodeArchitecture, goName) => {
    expect(goArchitecture(nodeArchitecture)).toBe(goName);
  });

  it('reads the facts of the machine it runs on', () => {
    const host = hostSystemFacts('9.9.9');
    expect(host).toMatchObject({
      shoalVersion: '9.9.9',
      hostname: hostname(),
      cpus: cpus().length,
      memoryBytes: totalmem(),
      kernelVersion: release(),
      architecture: goArchitecture(process.arch),
    });
    if (existsSync('/etc/os-release')) {
      const prettyName = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
      expect(host.operatingSystem).toBe(prettyName);
    }
  });
});

describe('/_ping', () => {
  it.each<{ header: string; state: LocalSwarmState }>([
    { header: 'inactive', state: { state: 'inactive' } },
    { header: 'locked', state: { state: 'locked' } },
    { header: 'pending', state: { state: 'pending' } },
    { header: 'active/manager', state: managerState },
    { header: 'active/worker', state: activeSwarmState(recordedCluster, worker, [leader, worker]) },
  ])('reports the swarm standing as $header, uncached', ({ state, header }) => {
    expect(pingHeaders(state)).toEqual({
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': 'no-cache, no-store, must-revalidate',
      Pragma: 'no-cache',
      Swarm: header,
    });
  });
});

describe('the real docker CLIs', () => {
  let server: Server | undefined;
  let configDir: string | undefined;

  afterEach(async () => {
    if (server !== undefined) {
      server.close();
      await once(server, 'close');
    }
    if (configDir !== undefined) rmSync(configDir, { recursive: true, force: true });
    server = undefined;
    configDir = undefined;
  });

  /** Serves only `/_ping`, `/v1.41/version` and `/v1.41/info` with these bodies, as dockerd's headers go. */
  async function serve(state: LocalSwarmState): Promise<string> {
    const engineHeaders = { 'Api-Version': '1.41', Ostype: 'linux', 'Docker-Experimental': 'false' };
    server = createServer((request, response) => {
      const json = (body: unknown) => {
        response.writeHead(200, { ...engineHeaders, 'Content-Type': 'application/json' });
        response.end(JSON.stringify(body));
      };
      if (request.url === '/_ping') {
        response.writeHead(200, { ...engineHeaders, ...pingHeaders(state) });
        response.end(request.method === 'HEAD' ? undefined : 'OK');
      } else if (request.url === '/v1.41/version') {
        json(versionBody(facts));
      } else if (request.url === '/v1.41/info') {
        json(infoBody(facts, state));
      } else {
        response.writeHead(404, { ...engineHeaders, 'Content-Type': 'application/json' });
        response.end(JSON.stringify({ message: 'page not found' }));
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    configDir = mkdtempSync(join(tmpdir(), 'shoal-cli-'));
    return `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it.each(DOCKER_CLIS)('$name prints docker version from the body', async ({ path }) => {
    const dockerHost = await serve({ state: 'inactive' });
    const result = await runDocker(path, dockerHost, ['version', '--format', '{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}/{{.Server.Arch}}'], { configDir: configDir! });
    expect(result).toMatchObject({ code: 0, stdout: '0.1.0 1.41 linux/amd64\n' });
  });

  it.each(DOCKER_CLIS)('$name prints docker info of an active manager, cluster settings included', async ({ path }) => {
    const dockerHost = await serve(managerState);
    const result = await runDocker(path, dockerHost, ['info'], { configDir: configDir! });
    expect(result.code, result.stderr).toBe(0);
    for (const line of [
      'Swarm: active',
      'NodeID: plm4mybsj4rzwpzo2a7oe05kw',
      'Is Manager: true',
      `ClusterID: ${recordedCluster.id}`,
      'Default Address Pool: 10.0.0.0/8',
      'Task History Retention Limit: 5',
      'Heartbeat Period: 5 seconds',
      'Expiry Duration: 3 months',
      'Manager Addresses:',
      '127.0.0.1:2377',
      'Kernel Version: 6.18.44-fc-v669',
      'Operating System: Debian GNU/Linux 12 (bookworm)',
      'Total Memory: 23.54GiB',
      'Name: vm',
    ]) {
      expect(result.stdout).toContain(line);
    }
    expect(result.stderr).toBe(`${NOT_AN_ENGINE_WARNING}\n`);
  });

  it.each(DOCKER_CLIS)('$name reads the swarm standing of a worker', async ({ path }) => {
    const dockerHost = await serve(activeSwarmState(recordedCluster, worker, [leader, worker]));
    const result = await runDocker(path, dockerHost, ['info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}'], {
      configDir: configDir!,
    });
    expect(result).toMatchObject({ code: 0, stdout: 'active false w0rkerw0rkerw0rkerw0rker1\n' });
  });

  it.each(DOCKER_CLIS)('$name prints a locked host as locked, without a swarm block', async ({ path }) => {
    const dockerHost = await serve({ state: 'locked', nodeAddr: '127.0.0.1' });
    const result = await runDocker(path, dockerHost, ['info'], { configDir: configDir! });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('Swarm: locked');
    expect(result.stdout).not.toContain('Is Manager');
  });
});
