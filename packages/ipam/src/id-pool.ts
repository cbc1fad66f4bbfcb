import { errors } from '@shoal/errors';
import { SerialBitmap } from './serial-bitmap.js';

/** The range of an {@link IdPool} and the name its errors give the values. */
export interface IdPoolOptions {
  /** Names one value in error messages: `VXLAN ID`, `tcp port`. */
  readonly kind: string;
  /** The lowest value {@link IdPool.reserve} accepts. */
  readonly min: number;
  /** The highest value {@link IdPool.reserve} accepts. */
  readonly max: number;
  /** The lowest value {@link IdPool.allocate} hands out; at least `min`. */
  readonly dynamicMin: number;
  /** The highest value {@link IdPool.allocate} hands out; at most `max`. */
  readonly dynamicMax: number;
}

/**
 * Overlay VXLAN network identifiers, as libnetwork's overlay driver manages them (`ovmanager`): a
 * user may ask for any 24-bit VNI, and automatic ones start at 4096.
 */
export const VXLAN_IDS: IdPoolOptions = { kind: 'VXLAN ID', min: 0, max: 2 ** 24 - 1, dynamicMin: 4096, dynamicMax: 2 ** 24 - 1 };

/**
 * Integer identifiers from a fixed range: {@link reserve} takes a given value anywhere in
 * [min, max], {@link allocate} hands out free ones from [dynamicMin, dynamicMax] serially (the first
 * free one after the previous allocation, wrapping; see {@link SerialBitmap}).
 *
 * The default range is {@link VXLAN_IDS}. Rebuild after a restart by calling {@link reserve} with
 * every value the store records.
 */
export class IdPool {
  /** The ranges and the kind this pool was built with. */
  readonly options: IdPoolOptions;
  private readonly ids: SerialBitmap;

  /** @throws INVALID_ARGUMENT if the ranges are not integers with min ≤ dynamicMin ≤ dynamicMax ≤ max. */
  constructor(options: IdPoolOptions = VXLAN_IDS) {
    const { kind, min, max, dynamicMin, dynamicMax } = options;
    const ordered = [min, dynamicMin, dynamicMax, max];
    if (!ordered.every(Number.isSafeInteger) || ordered.some((value, index) => index > 0 && value < ordered[index - 1]!)) {
      throw errors.invalidArgument(`invalid ${kind} range: ${dynamicMin}-${dynamicMax} must lie inside ${min}-${max}`);
    }
    this.options = { ...options };
    this.ids = new SerialBitmap(min, max, dynamicMin, dynamicMax);
  }

  /** How many values {@link allocate} can still hand out. */
  get available(): number {
    return this.ids.available;
  }

  /**
   * Hands out the next free value of the dynamic range, serially.
   *
   * @throws RESOURCE_EXHAUSTED `no <kind> available: all of <dynamicMin>-<dynamicMax> are in use`.
   */
  allocate(): number {
    const id = this.ids.take();
    if (id === undefined) {
      const { kind, dynamicMin, dynamicMax } = this.options;
      throw errors.resourceExhausted(`no ${kind} available: all of ${dynamicMin}-${dynamicMax} are in use`, { kind });
    }
    return id;
  }

  /**
   * Marks a given value as held: one recorded in the store, or one a user asked for.
   *
   * @throws INVALID_ARGUMENT if it is not an integer in [min, max] (`invalid <kind> <value>: …`) or is
   *   already held (`<kind> <value> is already in use`).
   */
  reserve(id: number): void {
    const { kind, min, max } = this.options;
    if (!this.inRange(id)) {
      throw errors.invalidArgument(`invalid ${kind} ${id}: it must be an integer between ${min} and ${max}`, { kind, id });
    }
    if (!this.ids.mark(id)) throw errors.invalidArgument(`${kind} ${id} is already in use`, { kind, id });
  }

  /** Frees a held value. Returns false, changing nothing, if it is not held. */
  release(id: number): boolean {
    return this.inRange(id) && this.ids.unmark(id);
  }

  /** True if the value was handed out or reserved and not released since. */
  isAllocated(id: number): boolean {
    return this.inRange(id) && this.ids.has(id);
  }

  private inRange(id: number): boolean {
    return Number.isInteger(id) && id >= this.options.min && id <= this.options.max;
  }
}

/** The driver option an overlay network records its VXLAN ID in, as dockerd's overlay allocator does. */
export const VXLAN_ID_LIST_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';
