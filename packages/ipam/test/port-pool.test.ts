import { describe, expect, it } from 'vitest';
import { PortPool, type PortProtocol } from '../src/index.js';
import { thrown } from './support.js';

const web = { id: 'k2ea0fk1psr0uwl7ejt3k1r0c', name: 'web' };
const api = { id: 'u3y8ynvnx3pd1o1x6ebt6b2yo', name: 'api' };

describe('PortPool reservation', () => {
  it('rejects a port another service holds with the message dockerd answers', () => {
    const ports = new PortPool();
    ports.reserve(18080, 'tcp', { id: 'r3ue4dzqmnk5ejvh6k71m7b4p', name: 'probe_full_28' });
    expect(thrown(() => ports.reserve(18080, 'tcp', web))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: "port '18080' is already in use by service 'probe_full_28' (r3ue4dzqmnk5ejvh6k71m7b4p) as an ingress port",
      details: { port: 18080, protocol: 'tcp', serviceId: 'r3ue4dzqmnk5ejvh6k71m7b4p' },
    });
  });

  it('lets the holder reserve its own port again', () => {
    const ports = new PortPool();
    ports.reserve(8080, 'tcp', web);
    ports.reserve(8080, 'tcp', web);
    expect(ports.ownerOf(8080, 'tcp')).toEqual(web);
  });

  it('keeps a separate port space per protocol', () => {
    const ports = new PortPool();
    for (const protocol of ['tcp', 'udp', 'sctp'] as const) ports.reserve(53, protocol, protocol === 'tcp' ? web : api);
    expect(ports.ownerOf(53, 'tcp')).toEqual(web);
    expect(ports.ownerOf(53, 'udp')).toEqual(api);
    expect([ports.allocateDynamic('tcp', web), ports.allocateDynamic('udp', web)]).toEqual([30000, 30000]);
  });

  it.each([0, 65536, 80.5])('rejects the port %s as out of range', (port) => {
    expect(thrown(() => new PortPool().reserve(port, 'udp', web))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: `invalid udp port ${port}: it must be an integer between 1 and 65535`,
    });
  });

  it('rejects a protocol it does not know', () => {
    expect(thrown(() => new PortPool().reserve(80, 'icmp' as PortProtocol, web))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: "unsupported protocol 'icmp'",
    });
  });
});

describe('PortPool dynamic ports', () => {
  it('hands out ports from 30000 serially', () => {
    const ports = new PortPool();
    expect([ports.allocateDynamic('tcp', web), ports.allocateDynamic('tcp', api)]).toEqual([30000, 30001]);
    expect(ports.ownerOf(30001, 'tcp')).toEqual(api);
  });

  it('skips a port a service asked for inside the dynamic range, and protects dynamic ports from other services', () => {
    const ports = new PortPool();
    ports.reserve(30000, 'tcp', web);
    const dynamic = ports.allocateDynamic('tcp', api);
    expect(dynamic).toBe(30001);
    expect(thrown(() => ports.reserve(dynamic, 'tcp', web))).toMatchObject({
      message: `port '30001' is already in use by service 'api' (${api.id}) as an ingress port`,
    });
  });

  it('reports exhaustion after all 2768 ports of 30000-32767 are taken', () => {
    const ports = new PortPool();
    const taken = Array.from({ length: 2768 }, () => ports.allocateDynamic('sctp', web));
    expect(taken.at(-1)).toBe(32767);
    expect(thrown(() => ports.allocateDynamic('sctp', api))).toMatchObject({
      code: 'RESOURCE_EXHAUSTED',
      message: 'no sctp port available: all of 30000-32767 are in use',
    });
    ports.reserve(8080, 'sctp', api);
  });
});

describe('PortPool release', () => {
  it('frees a port for another service, once', () => {
    const ports = new PortPool();
    ports.reserve(8080, 'tcp', web);
    expect(ports.release(8080, 'tcp')).toBe(true);
    expect(ports.release(8080, 'tcp')).toBe(false);
    expect(ports.ownerOf(8080, 'tcp')).toBeUndefined();
    ports.reserve(8080, 'tcp', api);
    expect(ports.ownerOf(8080, 'tcp')).toEqual(api);
  });

  it('frees every port of one owner and returns them, leaving other owners alone', () => {
    const ports = new PortPool();
    ports.reserve(8080, 'tcp', web);
    ports.reserve(8080, 'udp', web);
    const dynamic = ports.allocateDynamic('tcp', web);
    ports.reserve(9090, 'tcp', api);

    expect(ports.releaseOwner(web.id)).toEqual([
      { port: 8080, protocol: 'tcp' },
      { port: 8080, protocol: 'udp' },
      { port: dynamic, protocol: 'tcp' },
    ]);
    expect([ports.ownerOf(8080, 'tcp'), ports.ownerOf(8080, 'udp'), ports.ownerOf(dynamic, 'tcp')]).toEqual([undefined, undefined, undefined]);
    expect(ports.ownerOf(9090, 'tcp')).toEqual(api);
    expect(ports.releaseOwner(web.id)).toEqual([]);
  });

  it('forgets a port released one by one when its owner is released later', () => {
    const ports = new PortPool();
    ports.reserve(8080, 'tcp', web);
    ports.release(8080, 'tcp');
    ports.reserve(8080, 'tcp', api);
    expect(ports.releaseOwner(web.id)).toEqual([]);
    expect(ports.ownerOf(8080, 'tcp')).toEqual(api);
  });
});
