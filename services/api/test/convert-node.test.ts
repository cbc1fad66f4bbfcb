import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import {
  Node,
  NodeRole,
  NodeSpec_Availability,
  NodeSpec_Membership,
  NodeStatus_State,
  RaftMemberStatus_Reachability,
} from '@shoal/proto';
import { nodeSpecFromDocker, nodeToDocker } from '../src/convert/node.js';
import { expectPrintedAsRecorded, metaBehind, recordedRequestBodies, recordedResponseObjects, wireJson } from './support/recorded-json.js';

const invalidArgument = (message: string) => expect.objectContaining({ code: ErrorCode.InvalidArgument, message });

/** Docker's lower-case enum names → the proto enums, for rebuilding recorded nodes. */
const roles: Record<string, NodeRole> = { worker: NodeRole.WORKER, manager: NodeRole.MANAGER };
const availabilities: Record<string, NodeSpec_Availability> = {
  active: NodeSpec_Availability.ACTIVE,
  pause: NodeSpec_Availability.PAUSE,
  drain: NodeSpec_Availability.DRAIN,
};
const states: Record<string, NodeStatus_State> = { unknown: 0, down: 1, ready: 2, disconnected: 3 };
const reachabilities: Record<string, RaftMemberStatus_Reachability> = { unknown: 0, unreachable: 1, reachable: 2 };

// Recorded JSON is read field by field: `any` stands for the shape dockerd sent.
/** The store's node behind a node dockerd printed. */
function nodeBehind(recorded: any): Node {
  const description = recorded.Description;
  return Node.fromPartial({
    id: recorded.ID,
    meta: metaBehind(recorded),
    spec: {
      annotations: { name: recorded.Spec.Name ?? '', labels: recorded.Spec.Labels },
      desiredRole: roles[recorded.Spec.Role],
      membership: NodeSpec_Membership.ACCEPTED,
      availability: availabilities[recorded.Spec.Availability],
    },
    description: {
      hostname: description.Hostname,
      platform: { architecture: description.Platform.Architecture, os: description.Platform.OS },
      resources: { nanoCpus: BigInt(description.Resources.NanoCPUs), memoryBytes: BigInt(description.Resources.MemoryBytes) },
      engine: {
        engineVersion: description.Engine.EngineVersion,
        plugins: description.Engine.Plugins.map((plugin: any) => ({ type: plugin.Type, name: plugin.Name })),
      },
      tlsInfo: {
        trustRoot: Buffer.from(description.TLSInfo.TrustRoot),
        certIssuerSubject: Buffer.from(description.TLSInfo.CertIssuerSubject, 'base64'),
        certIssuerPublicKey: Buffer.from(description.TLSInfo.CertIssuerPublicKey, 'base64'),
      },
    },
    status: { state: states[recorded.Status.State], addr: recorded.Status.Addr },
    managerStatus: recorded.ManagerStatus && {
      raftId: 1n,
      leader: recorded.ManagerStatus.Leader ?? false,
      reachability: reachabilities[recorded.ManagerStatus.Reachability],
      addr: recorded.ManagerStatus.Addr,
    },
  });
}

describe('nodes to Docker', () => {
  const recordedNodes = recordedResponseObjects(/^\/nodes(\/[^/]+)?$/);

  it('finds recorded nodes of both roles to compare with', () => {
    expect(recordedNodes.some(({ body }) => body['ManagerStatus'] !== undefined)).toBe(true);
    expect(recordedNodes.some(({ body }) => body['ManagerStatus'] === undefined)).toBe(true);
  });

  it('prints every node dockerd printed, field for field, from the store object behind it', () => {
    for (const { transcript, body } of recordedNodes) {
      expectPrintedAsRecorded(nodeToDocker(nodeBehind(body)), body, transcript);
    }
  });

  it('leaves out what dockerd leaves out when empty, and keeps the structs Go always prints', () => {
    const printed = wireJson(nodeToDocker(Node.fromPartial({ id: 'n1', spec: {}, status: {} })));
    expect(printed).toEqual({
      ID: 'n1',
      Version: { Index: 0 },
      CreatedAt: '0001-01-01T00:00:00Z',
      UpdatedAt: '0001-01-01T00:00:00Z',
      Spec: { Labels: {}, Role: 'worker', Availability: 'active' },
      Description: { Platform: {}, Resources: {}, Engine: {}, TLSInfo: {} },
      Status: { State: 'unknown' },
    });
  });

  it('shows a node name, a status message, engine labels and generic resources when the node has them', () => {
    const printed = nodeToDocker(
      Node.fromPartial({
        id: 'n1',
        spec: { annotations: { name: 'edge-1' }, availability: NodeSpec_Availability.DRAIN, desiredRole: NodeRole.MANAGER },
        description: {
          engine: { labels: { zone: 'a' } },
          resources: { generic: [{ namedResourceSpec: { kind: 'gpu', value: 'UUID1' } }, { discreteResourceSpec: { kind: 'ssd', value: 3n } }] },
        },
        status: { state: NodeStatus_State.DOWN, message: 'heartbeat failure' },
        managerStatus: { leader: false, reachability: RaftMemberStatus_Reachability.UNREACHABLE, addr: '10.0.0.2:2377' },
      }),
    );
    expect(wireJson(printed)).toMatchObject({
      Spec: { Name: 'edge-1', Role: 'manager', Availability: 'drain' },
      Description: {
        Engine: { Labels: { zone: 'a' } },
        Resources: {
          GenericResources: [{ NamedResourceSpec: { Kind: 'gpu', Value: 'UUID1' } }, { DiscreteResourceSpec: { Kind: 'ssd', Value: 3 } }],
        },
      },
      Status: { State: 'down', Message: 'heartbeat failure' },
      // Leader is omitted when false, as Go's omitempty does.
      ManagerStatus: { Reachability: 'unreachable', Addr: '10.0.0.2:2377' },
    });
    expect(wireJson(printed)).not.toHaveProperty('ManagerStatus.Leader');
  });
});

describe('node specs from Docker', () => {
  const updates = recordedRequestBodies('POST', /^\/nodes\/[^/]+\/update$/);

  it('reads every node update the CLIs sent (availability, labels, promote, demote)', () => {
    expect(updates.length).toBeGreaterThanOrEqual(4);
    for (const { transcript, body } of updates) {
      const sent = body as { Labels: Record<string, string>; Role: string; Availability: string };
      const spec = nodeSpecFromDocker(sent);
      expect(spec.annotations?.labels, transcript).toEqual(sent.Labels);
      expect(spec.desiredRole, transcript).toBe(roles[sent.Role]);
      expect(spec.availability, transcript).toBe(availabilities[sent.Availability]);
    }
  });

  it('round-trips: the spec it reads prints back as the body the CLI sent', () => {
    for (const { transcript, body } of updates) {
      expect(wireJson(nodeToDocker(Node.fromPartial({ spec: nodeSpecFromDocker(body) })).Spec), transcript).toEqual(body);
    }
  });

  it('reads roles and availabilities in any case, as dockerd does', () => {
    expect(nodeSpecFromDocker({ Role: 'MANAGER', Availability: 'Pause' })).toMatchObject({
      desiredRole: NodeRole.MANAGER,
      availability: NodeSpec_Availability.PAUSE,
    });
  });

  it("keeps the stored node's membership, which Docker's spec does not carry", () => {
    const current = { annotations: undefined, desiredRole: NodeRole.WORKER, membership: NodeSpec_Membership.PENDING, availability: 0 };
    expect(nodeSpecFromDocker({ Role: 'worker', Availability: 'active' }, current).membership).toBe(NodeSpec_Membership.PENDING);
    expect(nodeSpecFromDocker({ Role: 'worker', Availability: 'active' }).membership).toBe(NodeSpec_Membership.ACCEPTED);
  });

  it.each([
    [{ Role: 'boss', Availability: 'active' }, 'invalid Role: "boss"'],
    [{ Availability: 'active' }, 'invalid Role: ""'],
    [{ Role: 'unrecognized', Availability: 'active' }, 'invalid Role: "unrecognized"'],
    [{ Role: 'worker', Availability: 'asleep' }, 'invalid Availability: "asleep"'],
    [{ Role: 'worker' }, 'invalid Availability: ""'],
    [{ Role: 'worker', Availability: 'active', Labels: ['a'] }, 'json: cannot unmarshal array into Go struct field NodeSpec.Labels of type map[string]string'],
    [{ Role: 1, Availability: 'active' }, 'json: cannot unmarshal number into Go struct field NodeSpec.Role of type string'],
  ])('refuses %j: %s', (body, message) => {
    expect(() => nodeSpecFromDocker(body)).toThrow(invalidArgument(message));
  });
});
