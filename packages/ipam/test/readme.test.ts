// The usage example in README.md is this test, so that it compiles and runs.
import { expect, it } from 'vitest';
import { AddressPool, formatCidr, IdPool, parseCidr, PortPool, SubnetPool } from '../src/index.js';

it('runs the README example: rebuild from the store, then create a network, a service and its ports', () => {
  const cluster = { defaultAddressPool: [] as string[], subnetSize: 0 }; // as stored: empty means the defaults

  // After a restart: reserve everything the store records (here, the ingress network).
  const subnets = new SubnetPool({ pools: cluster.defaultAddressPool.map(parseCidr), subnetSize: cluster.subnetSize });
  const vxlanIds = new IdPool();
  const ingress = new AddressPool({ subnet: parseCidr('10.0.0.0/24'), gateway: '10.0.0.1' });
  subnets.reserve(ingress.subnet);
  vxlanIds.reserve(4096);
  ingress.reserve('10.0.0.2');

  // docker network create -d overlay backend
  const backend = new AddressPool({ subnet: subnets.allocate() });
  const vxlanId = vxlanIds.allocate();
  expect([formatCidr(backend.subnet), backend.gateway, vxlanId]).toEqual(['10.0.1.0/24', '10.0.1.1', 4097]);

  // docker network create -d overlay --subnet 192.168.7.0/24 --ip-range 192.168.7.128/25 frontend
  // (build the AddressPool first: it validates the configuration before the subnet is taken)
  const frontend = new AddressPool({ subnet: parseCidr('192.168.7.0/24'), range: parseCidr('192.168.7.128/25') });
  subnets.reserve(frontend.subnet);
  expect(frontend.gateway).toBe('192.168.7.1');

  // A service on backend publishing 8080 and one dynamic port: a VIP, then one address per task.
  const web = { id: 'k2ea0fk1psr0uwl7ejt3k1r0c', name: 'web' };
  const ports = new PortPool();
  ports.reserve(8080, 'tcp', web);
  const dynamicPort = ports.allocateDynamic('tcp', web);
  const vip = backend.allocate();
  const taskAddress = backend.allocate();
  expect([dynamicPort, vip, taskAddress, frontend.allocate()]).toEqual([30000, '10.0.1.2', '10.0.1.3', '192.168.7.128']);

  // docker service rm web
  ports.releaseOwner(web.id);
  backend.release(vip);
  backend.release(taskAddress);
  expect(backend.allocate()).toBe('10.0.1.4'); // serial: a just-released address comes back last
});
