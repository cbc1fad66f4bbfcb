import { describe, expect, it } from 'vitest';
import { VXLAN_ID_LIST_OPTION } from '@shoal/ipam';
import { ErrorCode } from '@shoal/errors';
import { Network } from '@shoal/proto';
import { networkCreateFromDocker, networkToDocker, networkToSwarmDocker, validateDnsComponentName } from '../src/convert/network.js';
import { expectPrintedAsRecorded, metaBehind, recordedExchanges, recordedRequestBodies, recordedResponseObjects } from './support/recorded-json.js';

const failsWith = (code: ErrorCode, message: string) => expect.objectContaining({ code, message });

// Recorded JSON is read field by field: `any` stands for the shape dockerd sent.
/**
 * The store's network behind a NetworkResource dockerd printed: the spec the user gave, and the
 * allocator's driver state (the VXLAN ID only) and IPAM.
 */
function networkBehindResource(recorded: any): Network {
  const { [VXLAN_ID_LIST_OPTION]: vxlanId, ...specOptions } = recorded.Options as Record<string, string>;
  const configs = (recorded.IPAM.Config as any[]).map((config) => ({ subnet: config.Subnet, gateway: config.Gateway ?? '', range: config.IPRange ?? '' }));
  return Network.fromPartial({
    id: recorded.Id,
    meta: { createdAt: new Date(recorded.Created) },
    spec: {
      annotations: { name: recorded.Name, labels: recorded.Labels ?? {} },
      driverConfig: { name: 'overlay', options: specOptions },
      ipv6Enabled: recorded.EnableIPv6,
      internal: recorded.Internal,
      attachable: recorded.Attachable,
      ingress: recorded.Ingress,
    },
    driverState: { name: recorded.Driver, options: vxlanId === undefined ? {} : { [VXLAN_ID_LIST_OPTION]: vxlanId } },
    ipam: { driver: { name: recorded.IPAM.Driver, options: recorded.IPAM.Options ?? {} }, configs },
  });
}

function ipamBehind(recorded: any) {
  return recorded && {
    driver: { name: recorded.Driver.Name ?? '', options: recorded.Driver.Options ?? {} },
    configs: (recorded.Configs ?? []).map((config: any) => ({ subnet: config.Subnet ?? '', range: config.Range ?? '', gateway: config.Gateway ?? '' })),
  };
}

/** The store's network behind a swarm Network object dockerd embedded in a task. */
function networkBehindSwarmObject(recorded: any): Network {
  const spec = recorded.Spec;
  return Network.fromPartial({
    id: recorded.ID,
    meta: metaBehind(recorded),
    spec: {
      annotations: { name: spec.Name, labels: spec.Labels },
      driverConfig: spec.DriverConfiguration && { name: spec.DriverConfiguration.Name ?? '', options: spec.DriverConfiguration.Options ?? {} },
      attachable: spec.Attachable ?? false,
      ingress: spec.Ingress ?? false,
      ipam: ipamBehind(spec.IPAMOptions),
    },
    driverState: { name: recorded.DriverState.Name, options: recorded.DriverState.Options },
    ipam: ipamBehind(recorded.IPAMOptions),
  });
}

describe('network create bodies', () => {
  const creates = recordedRequestBodies('POST', /^\/networks\/create$/);

  it('reads every body both CLIs sent, from network create and stack deploy', () => {
    expect(creates.length).toBeGreaterThanOrEqual(10);
    for (const { transcript, body } of creates) {
      const sent = body as { Name: string; Labels: Record<string, string>; Options: Record<string, string> | null; Attachable: boolean; IPAM: { Config: { Subnet: string }[] } | null };
      const { spec, subnets } = networkCreateFromDocker(sent);
      expect(spec.annotations, transcript).toMatchObject({ name: sent.Name, labels: sent.Labels });
      expect(spec.driverConfig, transcript).toEqual({ name: 'overlay', options: sent.Options ?? {} });
      expect(spec.attachable, transcript).toBe(sent.Attachable);
      expect(spec.ipam === undefined, transcript).toBe(sent.IPAM === null);
      expect(subnets.map((requested) => requested.subnet), transcript).toEqual((sent.IPAM?.Config ?? []).map((config) => config.Subnet));
    }
  });

  it('passes on the subnet, range and gateway asked for', () => {
    const { spec, subnets } = networkCreateFromDocker({
      Name: 'front',
      IPAM: { Config: [{ Subnet: '10.9.0.0/16', IPRange: '10.9.8.0/24', Gateway: '10.9.8.1', AuxiliaryAddresses: { router: '10.9.0.2' } }] },
    });
    expect(subnets).toEqual([{ subnet: '10.9.0.0/16', gateway: '10.9.8.1', ipRange: '10.9.8.0/24' }]);
    expect(spec.ipam).toEqual({
      driver: { name: 'default', options: {} },
      configs: [{ family: 4, subnet: '10.9.0.0/16', range: '10.9.8.0/24', gateway: '10.9.8.1', reserved: { router: '10.9.0.2' } }],
    });
  });

  it('makes an overlay when no driver is named', () => {
    expect(networkCreateFromDocker({ Name: 'plain' }).spec.driverConfig).toEqual({ name: 'overlay', options: {} });
  });

  it.each(['probe_st28_front', 'a', 'web-1', 'a_b-c', 'x'.repeat(63)])('accepts the name %s', (name) => {
    expect(() => validateDnsComponentName(name)).not.toThrow();
    expect(networkCreateFromDocker({ Name: name }).spec.annotations?.name).toBe(name);
  });

  it.each([
    [{ Name: '' }, 'meta: name must be provided'],
    [{}, 'meta: name must be provided'],
    [{ Name: 'my.net' }, 'name must be valid as a DNS name component'],
    [{ Name: '-front' }, 'name must be valid as a DNS name component'],
    [{ Name: 'front_' }, 'name must be valid as a DNS name component'],
    [{ Name: 'x'.repeat(64) }, 'name must be 63 characters or fewer'],
    [{ Name: 'n', Driver: 'bridge' }, 'network driver "bridge" is not supported: swarm networks use the "overlay" driver'],
    [{ Name: 'n', Scope: 'local' }, 'network scope "local" is not supported: overlay networks are swarm-scoped'],
    [{ Name: 'n', Ingress: true, Attachable: true }, 'ingress network cannot be attachable'],
    [{ Name: 'n', ConfigOnly: true }, 'config-only networks are not supported: they configure local networks, which swarm does not manage'],
    [{ Name: 'n', ConfigFrom: { Network: 'base' } }, 'ConfigFrom is not supported: swarm networks cannot take their configuration from a config-only network'],
    [{ Name: 'n', IPAM: { Driver: 'dhcp' } }, 'IPAM driver "dhcp" is not supported: only "default" is'],
    [{ Name: 'n', IPAM: { Config: [{ Gateway: '10.0.0.1' }] } }, 'ipam configuration: invalid subnet '],
    [{ Name: 'n', IPAM: { Config: [{ Subnet: '10.0.0.0/33' }] } }, 'ipam configuration: invalid subnet 10.0.0.0/33'],
    [{ Name: 'n', IPAM: { Config: [{ Subnet: '10.1.0.0/16', IPRange: '10.2.0.0/24' }] } }, 'ipam configuration: subnet 10.1.0.0/16 does not contain range 10.2.0.0/24'],
    [{ Name: 'n', IPAM: { Config: [{ Subnet: '10.1.0.0/16', IPRange: '10.1.0.0/8' }] } }, 'ipam configuration: subnet 10.1.0.0/16 does not contain range 10.1.0.0/8'],
    [{ Name: 'n', IPAM: { Config: [{ Subnet: '10.1.0.0/16', IPRange: 'wide' }] } }, 'ipam configuration: invalid range wide'],
    [{ Name: 'n', IPAM: { Config: [{ Subnet: '10.1.0.0/16', Gateway: '10.2.0.1' }] } }, 'ipam configuration: subnet 10.1.0.0/16 does not contain gateway 10.2.0.1'],
    [{ Name: 'n', IPAM: { Config: [{ Subnet: '10.1.0.0/16', Gateway: 'gw' }] } }, 'ipam configuration: invalid gateway gw'],
    [{ Name: 'n', IPAM: { Config: [{ Subnet: '10.1.0.0/16', AuxiliaryAddresses: { a: '10.3.0.1' } }] } }, 'ipam configuration: subnet 10.1.0.0/16 does not contain auxiliary address 10.3.0.1'],
    [{ Name: 'n', IPAM: { Config: [{ Subnet: 'fd00::/64' }] } }, 'IPv6 is not supported yet: fd00::/64'],
    [{ Name: 'n', Attachable: 'yes' }, 'json: cannot unmarshal string into Go struct field NetworkCreateRequest.Attachable of type bool'],
    [{ Name: 'n', IPAM: { Config: {} } }, 'json: cannot unmarshal object into Go struct field NetworkCreateRequest.IPAM.Config of type []network.IPAMConfig'],
  ])('refuses %j as an invalid argument: %s', (body, message) => {
    expect(() => networkCreateFromDocker(body)).toThrow(failsWith(ErrorCode.InvalidArgument, message));
  });

  it.each([
    [{ Name: 'bridge' }, 'bridge is a pre-defined network and cannot be created'],
    [{ Name: 'host' }, 'host is a pre-defined network and cannot be created'],
    [{ Name: 'n', Labels: { 'com.docker.swarm.predefined': 'true' } }, 'label com.docker.swarm.predefined is for internally created predefined networks and cannot be applied by users'],
  ])('refuses %j as not allowed (dockerd answers 403): %s', (body, message) => {
    expect(() => networkCreateFromDocker(body)).toThrow(failsWith(ErrorCode.PermissionDenied, message));
  });
});

describe('networks to Docker', () => {
  const recordedNetworks = recordedResponseObjects(/^\/networks(\/[^/]+)?$/).filter(
    ({ body }) => body['Scope'] === 'swarm' && body['Containers'] === null,
  );

  it('finds recorded swarm networks with and without labels and options to compare with', () => {
    expect(recordedNetworks.some(({ body }) => body['Labels'] === null)).toBe(true);
    expect(recordedNetworks.some(({ body }) => (body['Options'] as Record<string, string>)['encrypted'] === '')).toBe(true);
  });

  it('prints every swarm network dockerd printed, field for field', () => {
    for (const { transcript, body } of recordedNetworks) {
      expectPrintedAsRecorded(networkToDocker(networkBehindResource(body)), body, transcript);
    }
  });

  it("shows the spec's driver options (encrypted) beside the allocator's VXLAN ID", () => {
    const network = Network.fromPartial({
      spec: { annotations: { name: 'secure' }, driverConfig: { name: 'overlay', options: { encrypted: '' } } },
      driverState: { name: 'overlay', options: { [VXLAN_ID_LIST_OPTION]: '4097' } },
    });
    expect(networkToDocker(network).Options).toEqual({ [VXLAN_ID_LIST_OPTION]: '4097', encrypted: '' });
  });

  it('shows the requested driver and IPAM until the allocator has recorded its own', () => {
    const { spec } = networkCreateFromDocker({ Name: 'fresh', IPAM: { Config: [{ Subnet: '10.5.0.0/24' }] } });
    const printed = networkToDocker(Network.fromPartial({ id: 'n1', spec }));
    expect(printed).toMatchObject({ Driver: 'overlay', IPAM: { Driver: 'default', Options: null, Config: [{ Subnet: '10.5.0.0/24' }] }, Options: null });
  });

  it('prints a network whose IPAM is unknown with null configs, as Go prints a nil slice', () => {
    expect(networkToDocker(Network.fromPartial({ id: 'n1', spec: { annotations: { name: 'x' } } })).IPAM).toEqual({ Driver: '', Options: null, Config: null });
  });

  it('prints the swarm Network object of every task attachment dockerd printed, field for field', () => {
    const attachments = recordedExchanges('GET', /^\/tasks(\/[^/]+)?$/)
      .filter((exchange) => exchange.status === 200 && !exchange.responseBodyTruncated)
      .flatMap((exchange) => {
        const tasks = exchange.responseBody as { NetworksAttachments?: { Network: Record<string, unknown> }[] }[];
        return (Array.isArray(tasks) ? tasks : [tasks]).flatMap((task) => task.NetworksAttachments ?? []).map((attachment) => attachment.Network);
      });
    const distinct = [...new Map(attachments.map((network) => [JSON.stringify(network), network])).values()];
    expect(distinct.length).toBeGreaterThanOrEqual(3);
    for (const recorded of distinct) {
      expectPrintedAsRecorded(networkToSwarmDocker(networkBehindSwarmObject(recorded)), recorded, String((recorded['Spec'] as { Name: string }).Name));
    }
  });
});

describe('network name checks', () => {
  it('refuses a long name that almost matches in linear time (no catastrophic backtracking)', async () => {
    const { validateDnsComponentName } = await import('../src/convert/network.js');
    // With nested quantifiers this took seconds at 28 characters and doubled with each one more.
    expect(() => validateDnsComponentName(`${'a'.repeat(60)}!`)).toThrow('name must be valid as a DNS name component');
  });
});
