import { describe, expect, it } from 'vitest';
import { ManagerSet } from '../src/managers.js';

const peer = (addr: string, weight = 10n) => ({ peer: { nodeId: addr, addr }, weight });

describe('the set of managers an agent may connect to', () => {
  it('connects to the preferred manager first', () => {
    expect(new ManagerSet(['m1:2377', 'm2:2377'], () => 0.99).select()).toBe('m1:2377');
  });

  it('picks another manager after a failure, in proportion to the weights dispatchers gave them', () => {
    const pickAfterFailure = (draw: number) => {
      const managers = new ManagerSet(['m1:2377'], () => draw);
      managers.replace([peer('m1:2377'), peer('m2:2377', 1n), peer('m3:2377', 3n)], 'm1:2377');
      return managers.select('m1:2377');
    };

    // m2 carries a quarter of the weight left once m1 has failed, m3 three quarters.
    expect([0, 0.2, 0.3, 0.99].map(pickAfterFailure)).toEqual(['m2:2377', 'm2:2377', 'm3:2377', 'm3:2377']);
  });

  it('tries the failed manager again when it is the only one known', () => {
    expect(new ManagerSet(['m1:2377']).select('m1:2377')).toBe('m1:2377');
  });

  it("takes a dispatcher's list, keeping the manager it reached first even under another name", () => {
    const managers = new ManagerSet(['127.0.0.1:2377']);

    expect(managers.replace([peer('10.0.0.1:2377'), peer('10.0.0.2:2377')], '127.0.0.1:2377')).toBe(true);
    expect(managers.addresses).toEqual(['127.0.0.1:2377', '10.0.0.1:2377', '10.0.0.2:2377']);
    expect(managers.replace([peer('10.0.0.1:2377'), peer('10.0.0.2:2377')], '127.0.0.1:2377')).toBe(false);
  });

  it('keeps its list when a dispatcher sends none', () => {
    const managers = new ManagerSet(['m1:2377', 'm2:2377']);

    expect(managers.replace([], 'm1:2377')).toBe(false);
    expect(managers.addresses).toEqual(['m1:2377', 'm2:2377']);
  });

  it('moves the manager it connected to to the front', () => {
    const managers = new ManagerSet(['m1:2377', 'm2:2377']);
    managers.prefer('m2:2377');

    expect(managers.addresses).toEqual(['m2:2377', 'm1:2377']);
    expect(managers.select()).toBe('m2:2377');
  });
});
