/**
 * Property tests: random sequences of allocate, reserve and release run against each pool and
 * against a reference model made of plain arrays and sets, which says what every call must return
 * or throw. Then the state is rebuilt the way a restarted allocator rebuilds it, by reserving
 * everything that is held, and the rebuilt pool must agree with the original.
 */
import { hasCode } from '@shoal/errors';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AddressPool,
  cidrEnd,
  cidrsOverlap,
  formatAddress,
  formatCidr,
  IdPool,
  parseAddress,
  parseCidr,
  PortPool,
  SubnetPool,
  type Cidr,
  type IdPoolOptions,
} from '../src/index.js';

/** One step of a random history. `pick` chooses among held values (modulo), `value` names any value. */
type Operation =
  | { readonly kind: 'allocate' }
  | { readonly kind: 'reserve'; readonly value: number; readonly prefixLength: number }
  | { readonly kind: 'release'; readonly pick: number; readonly held: boolean; readonly value: number; readonly prefixLength: number };

/** Histories over values 0..valueCount-1 (offsets into the pool's space) and prefix lengths in [minPrefix, maxPrefix]. */
function histories(valueCount: number, minPrefix = 32, maxPrefix = 32): fc.Arbitrary<Operation[]> {
  const value = fc.nat({ max: valueCount - 1 });
  const prefixLength = fc.integer({ min: minPrefix, max: maxPrefix });
  const operation: fc.Arbitrary<Operation> = fc.oneof(
    { weight: 4, arbitrary: fc.constant({ kind: 'allocate' as const }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('reserve' as const), value, prefixLength }) },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat(), held: fc.boolean(), value, prefixLength }),
    },
  );
  return fc.array(operation, { maxLength: 120 });
}

/** A deterministic shuffle: the order a store scan might return held values in. */
function shuffled<T>(values: Iterable<T>, seed: number, key: (value: T) => number): T[] {
  const rank = (value: T) => Math.imul(key(value) ^ seed, 0x9e3779b1) >>> 0;
  return [...values].sort((a, b) => rank(a) - rank(b) || key(a) - key(b));
}

/** Allocates until the pool is exhausted and returns everything it handed out, in order. */
function drain<T>(allocate: () => T): T[] {
  const handedOut: T[] = [];
  for (;;) {
    try {
      handedOut.push(allocate());
    } catch (error) {
      if (hasCode(error, 'RESOURCE_EXHAUSTED')) return handedOut;
      throw error;
    }
  }
}

const sorted = (values: readonly number[]) => [...values].sort((a, b) => a - b);

describe('SubnetPool properties', () => {
  // Two pools of 8 and 4 /29s, and requests anywhere in 10.0.0.0/22 so that some miss the pools.
  const base = parseAddress('10.0.0.0');
  const pools = [parseCidr('10.0.1.0/26'), parseCidr('10.0.0.0/27')];
  const subnetSize = 29;
  const blockSize = 2 ** (32 - subnetSize);
  const subnetOf = (offset: number, prefixLength: number): Cidr => {
    const size = 2 ** (32 - prefixLength);
    return { start: base + Math.floor(offset / size) * size, prefixLength };
  };

  /** The reference answer: the lowest /29 of the first pool that has one not overlapping anything held. */
  function lowestFree(held: readonly Cidr[]): Cidr | undefined {
    for (const pool of pools) {
      for (let start = pool.start; start + blockSize - 1 <= cidrEnd(pool); start += blockSize) {
        const candidate = { start, prefixLength: subnetSize };
        if (!held.some((subnet) => cidrsOverlap(subnet, candidate))) return candidate;
      }
    }
    return undefined;
  }

  /** Runs a history against a fresh pool and the model; returns both. */
  function run(history: readonly Operation[]): { pool: SubnetPool; held: Cidr[] } {
    const pool = new SubnetPool({ pools, subnetSize });
    const held: Cidr[] = [];
    for (const operation of history) {
      if (operation.kind === 'allocate') {
        const expected = lowestFree(held);
        if (expected === undefined) {
          expect(() => pool.allocate()).toThrow(/could not find an available/);
        } else {
          const subnet = pool.allocate();
          expect(subnet).toEqual(expected);
          expect(pools.some((candidate) => candidate.start <= subnet.start && cidrEnd(subnet) <= cidrEnd(candidate))).toBe(true);
          held.push(subnet);
        }
      } else if (operation.kind === 'reserve') {
        const subnet = subnetOf(operation.value, operation.prefixLength);
        if (held.some((other) => cidrsOverlap(other, subnet))) {
          expect(() => pool.reserve(subnet)).toThrow(/Pool overlaps/);
        } else {
          pool.reserve(subnet);
          held.push(subnet);
        }
      } else {
        const index = operation.held && held.length > 0 ? operation.pick % held.length : -1;
        const subnet = index >= 0 ? held[index]! : subnetOf(operation.value, operation.prefixLength);
        const isHeld = held.some((other) => formatCidr(other) === formatCidr(subnet));
        expect(pool.release(subnet)).toBe(isHeld);
        if (isHeld) held.splice(held.findIndex((other) => formatCidr(other) === formatCidr(subnet)), 1);
      }
    }
    return { pool, held };
  }

  it('(a) never hands out a subnet overlapping a held one or outside its pools, and carves the lowest free one', () => {
    fc.assert(
      fc.property(histories(1024, 26, 30), (history) => {
        const { held } = run(history);
        for (const [index, subnet] of held.entries()) {
          expect(held.slice(index + 1).some((other) => cidrsOverlap(subnet, other))).toBe(false);
        }
      }),
    );
  });

  it('(c) a pool rebuilt by reserving every held subnet, in any order, carves exactly what the original would', () => {
    fc.assert(
      fc.property(histories(1024, 26, 30), fc.integer(), (history, seed) => {
        const { pool, held } = run(history);
        const rebuilt = new SubnetPool({ pools, subnetSize });
        for (const subnet of shuffled(held, seed, (cidr) => cidr.start)) rebuilt.reserve(subnet);
        expect(drain(() => formatCidr(rebuilt.allocate()))).toEqual(drain(() => formatCidr(pool.allocate())));
      }),
    );
  });
});

/**
 * The reference model of a serial pool over the integers [min, max] handing out [dynamicMin, dynamicMax]:
 * a set of held values and the cursor rule the pools document.
 */
class SerialModel {
  readonly held = new Set<number>();
  private cursor: number;

  constructor(readonly range: IdPoolOptions) {
    this.cursor = range.dynamicMin;
  }

  /** What allocate must return: the first free dynamic value at or after the cursor, else the first free one. */
  next(): number | undefined {
    const { dynamicMin, dynamicMax } = this.range;
    const free = (value: number) => !this.held.has(value);
    for (let value = this.cursor; value <= dynamicMax; value += 1) if (free(value)) return value;
    for (let value = dynamicMin; value <= dynamicMax; value += 1) if (free(value)) return value;
    return undefined;
  }

  /** Marks a value as allocate and reserve do: the cursor moves past a dynamic value at or ahead of it. */
  mark(value: number): void {
    this.held.add(value);
    if (value >= this.cursor && value >= this.range.dynamicMin && value <= this.range.dynamicMax) this.cursor = value + 1;
  }

  dynamicFree(): number[] {
    const values: number[] = [];
    for (let value = this.range.dynamicMin; value <= this.range.dynamicMax; value += 1) if (!this.held.has(value)) values.push(value);
    return values;
  }
}

describe('AddressPool properties', () => {
  // A /26 spans two 32-bit words of the bitmap; the ranges and gateways put edges on both sides of the seam.
  const subnet = parseCidr('10.0.0.0/26');
  const configurations = fc.record({
    range: fc.constantFrom(undefined, '10.0.0.0/26', '10.0.0.24/29', '10.0.0.32/28', '10.0.0.60/30'),
    gateway: fc.constantFrom(undefined, '10.0.0.33', '10.0.0.62', '10.0.0.30'),
  });
  type Configuration = { readonly range: string | undefined; readonly gateway: string | undefined };

  function newPool({ range, gateway }: Configuration): AddressPool {
    return new AddressPool({ subnet, gateway, range: range === undefined ? undefined : parseCidr(range) });
  }

  /** The model of a pool: values are addresses; the gateway is held from the start but never by a caller. */
  function newModel(pool: AddressPool): SerialModel {
    const range = pool.range ?? subnet;
    const model = new SerialModel({
      kind: 'address',
      min: subnet.start + 1,
      max: cidrEnd(subnet) - 1,
      dynamicMin: Math.max(subnet.start + 1, range.start),
      dynamicMax: Math.min(cidrEnd(subnet) - 1, cidrEnd(range)),
    });
    model.mark(parseAddress(pool.gateway));
    return model;
  }

  function run(configuration: Configuration, history: readonly Operation[]): { pool: AddressPool; model: SerialModel; gateway: number } {
    const pool = newPool(configuration);
    const model = newModel(pool);
    const gateway = parseAddress(pool.gateway);
    const callerHeld = () => [...model.held].filter((address) => address !== gateway);
    for (const operation of history) {
      if (operation.kind === 'allocate') {
        const expected = model.next();
        if (expected === undefined) {
          expect(() => pool.allocate()).toThrow(/no available IP addresses/);
        } else {
          const address = parseAddress(pool.allocate());
          expect(address).toBe(expected);
          expect([subnet.start, cidrEnd(subnet), gateway]).not.toContain(address);
          model.mark(address);
        }
      } else if (operation.kind === 'reserve') {
        const address = subnet.start + operation.value;
        const usable = address !== subnet.start && address !== cidrEnd(subnet) && !model.held.has(address);
        if (usable) {
          pool.reserve(formatAddress(address));
          model.mark(address);
        } else {
          expect(() => pool.reserve(formatAddress(address))).toThrow(/network address|broadcast address|gateway|already in use/);
        }
      } else {
        const held = callerHeld();
        const address = operation.held && held.length > 0 ? held[operation.pick % held.length]! : subnet.start + operation.value;
        const isHeld = address !== gateway && model.held.has(address);
        expect(pool.release(formatAddress(address))).toBe(isHeld);
        if (isHeld) model.held.delete(address);
      }
      expect(pool.available).toBe(model.dynamicFree().length);
    }
    return { pool, model, gateway };
  }

  it('(b) hands out each address at most once while held, never network, broadcast or gateway, and all of them again once released', () => {
    fc.assert(
      fc.property(configurations, histories(64), (configuration, history) => {
        const { pool, model, gateway } = run(configuration, history);
        for (const address of model.held) if (address !== gateway) expect(pool.release(formatAddress(address))).toBe(true);
        const everything = newModel(newPool(configuration)).dynamicFree();
        expect(sorted(drain(() => parseAddress(pool.allocate())))).toEqual(everything);
      }),
    );
  });

  it('(c) pools rebuilt by reserving every held address agree with the original and, whatever the order, with each other', () => {
    fc.assert(
      fc.property(configurations, histories(64), fc.integer(), (configuration, history, seed) => {
        const { pool, model, gateway } = run(configuration, history);
        const held = [...model.held].filter((address) => address !== gateway);
        const inOrder = newPool(configuration);
        const inShuffledOrder = newPool(configuration);
        for (const address of sorted(held)) inOrder.reserve(formatAddress(address));
        for (const address of shuffled(held, seed, (value) => value)) inShuffledOrder.reserve(formatAddress(address));

        expect(inOrder.available).toBe(pool.available);
        for (let address = subnet.start; address <= cidrEnd(subnet); address += 1) {
          expect(inOrder.isAllocated(formatAddress(address))).toBe(pool.isAllocated(formatAddress(address)));
        }
        // Rebuilt pools resume after the highest held address, the original after its last allocation:
        // the same addresses remain, possibly in another order.
        const rebuiltSequence = drain(() => inOrder.allocate());
        expect(drain(() => inShuffledOrder.allocate())).toEqual(rebuiltSequence);
        expect(sorted(drain(() => parseAddress(pool.allocate())))).toEqual(sorted(rebuiltSequence.map(parseAddress)));
      }),
    );
  });
});

describe('IdPool properties', () => {
  // Reservable 0–99, handed out from 20–89: three bitmap words with the dynamic edges inside them.
  const range: IdPoolOptions = { kind: 'test ID', min: 0, max: 99, dynamicMin: 20, dynamicMax: 89 };

  function run(history: readonly Operation[]): { pool: IdPool; model: SerialModel } {
    const pool = new IdPool(range);
    const model = new SerialModel(range);
    for (const operation of history) {
      if (operation.kind === 'allocate') {
        const expected = model.next();
        if (expected === undefined) expect(() => pool.allocate()).toThrow(/no test ID available/);
        else {
          expect(pool.allocate()).toBe(expected);
          model.mark(expected);
        }
      } else if (operation.kind === 'reserve') {
        if (model.held.has(operation.value)) expect(() => pool.reserve(operation.value)).toThrow(/already in use/);
        else {
          pool.reserve(operation.value);
          model.mark(operation.value);
        }
      } else {
        const held = [...model.held];
        const id = operation.held && held.length > 0 ? held[operation.pick % held.length]! : operation.value;
        expect(pool.release(id)).toBe(model.held.delete(id));
      }
      expect(pool.available).toBe(model.dynamicFree().length);
    }
    return { pool, model };
  }

  it('hands out each ID at most once while held, serially, and all of them again once released', () => {
    fc.assert(
      fc.property(histories(100), (history) => {
        const { pool, model } = run(history);
        for (const id of model.held) pool.release(id);
        expect(sorted(drain(() => pool.allocate()))).toEqual(new SerialModel(range).dynamicFree());
      }),
    );
  });

  it('(c) pools rebuilt by reserving every held ID agree with the original and, whatever the order, with each other', () => {
    fc.assert(
      fc.property(histories(100), fc.integer(), (history, seed) => {
        const { pool, model } = run(history);
        const inOrder = new IdPool(range);
        const inShuffledOrder = new IdPool(range);
        for (const id of sorted([...model.held])) inOrder.reserve(id);
        for (const id of shuffled(model.held, seed, (value) => value)) inShuffledOrder.reserve(id);

        for (let id = range.min; id <= range.max; id += 1) expect(inOrder.isAllocated(id)).toBe(pool.isAllocated(id));
        const rebuiltSequence = drain(() => inOrder.allocate());
        expect(drain(() => inShuffledOrder.allocate())).toEqual(rebuiltSequence);
        expect(sorted(drain(() => pool.allocate()))).toEqual(sorted(rebuiltSequence));
      }),
    );
  });
});

describe('PortPool properties', () => {
  const owners = ['web', 'api', 'db'].map((name) => ({ id: `id-${name}`, name }));
  const step = fc.oneof(
    fc.record({ kind: fc.constant('reserve' as const), port: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 30000, max: 30020 })), owner: fc.nat({ max: 2 }) }),
    fc.record({ kind: fc.constant('dynamic' as const), owner: fc.nat({ max: 2 }) }),
    fc.record({ kind: fc.constant('releaseOwner' as const), owner: fc.nat({ max: 2 }) }),
  );

  it('(c) a port pool rebuilt from every held port keeps each port with its owner and hands out the same dynamic ports', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.integer(), (steps, seed) => {
        const ports = new PortPool();
        const held = new Map<number, number>();
        for (const action of steps) {
          const owner = owners[action.owner]!;
          if (action.kind === 'dynamic') {
            const port = ports.allocateDynamic('tcp', owner);
            expect(held.has(port)).toBe(false);
            held.set(port, action.owner);
          } else if (action.kind === 'releaseOwner') {
            const released = ports.releaseOwner(owner.id).map(({ port }) => port);
            const expected = [...held].filter(([, holder]) => holder === action.owner).map(([port]) => port);
            expect(sorted(released)).toEqual(sorted(expected));
            for (const port of released) held.delete(port);
          } else if (held.has(action.port) && held.get(action.port) !== action.owner) {
            expect(() => ports.reserve(action.port, 'tcp', owner)).toThrow(/already in use by service/);
          } else {
            ports.reserve(action.port, 'tcp', owner);
            held.set(action.port, action.owner);
          }
        }

        const rebuilt = new PortPool();
        for (const port of shuffled(held.keys(), seed, (value) => value)) rebuilt.reserve(port, 'tcp', owners[held.get(port)!]!);
        for (const [port, holder] of held) expect(rebuilt.ownerOf(port, 'tcp')).toEqual(owners[holder]);
        const remaining = drain(() => ports.allocateDynamic('tcp', owners[0]!));
        expect(sorted(drain(() => rebuilt.allocateDynamic('tcp', owners[0]!)))).toEqual(sorted(remaining));
      }),
    );
  });
});
