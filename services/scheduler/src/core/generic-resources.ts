import type { GenericResource } from '@shoal/proto';

/**
 * The generic resources (GPUs, SSDs, …) of one node that no task holds, with swarmkit's semantics
 * (`api/genericresource`): a node advertises a kind either as a count (`discrete`, e.g. `ssd=3`) or
 * as named units (`named`, e.g. `gpu=GPU-1`, `gpu=GPU-2`); a task always asks for a count of a kind,
 * and when the kind is named it is handed that many particular units, which it then holds until it
 * leaves the node.
 */
export class GenericResourcePool {
  private readonly counts = new Map<string, bigint>();
  /** Free units per named kind. A Set keeps insertion order, so which units a task gets is deterministic. */
  private readonly freeUnits = new Map<string, Set<string>>();
  /** Every unit the node advertises per named kind: released units outside it are not taken back. */
  private readonly advertisedUnits = new Map<string, ReadonlySet<string>>();

  /** Nodes that advertise no generic resources, nearly all of them, share one pool: with nothing in it, nothing changes it. */
  private static readonly empty = new GenericResourcePool([]);

  /** The pool of a node that advertises `advertised`. */
  static of(advertised: readonly GenericResource[]): GenericResourcePool {
    return advertised.length === 0 ? GenericResourcePool.empty : new GenericResourcePool(advertised);
  }

  private constructor(advertised: readonly GenericResource[]) {
    for (const resource of advertised) {
      if (resource.discreteResourceSpec !== undefined) {
        const { kind, value } = resource.discreteResourceSpec;
        this.counts.set(kind, (this.counts.get(kind) ?? 0n) + value);
      } else if (resource.namedResourceSpec !== undefined) {
        const { kind, value } = resource.namedResourceSpec;
        let units = this.freeUnits.get(kind);
        if (units === undefined) {
          units = new Set();
          this.freeUnits.set(kind, units);
        }
        units.add(value);
      }
    }
    for (const [kind, units] of this.freeUnits) this.advertisedUnits.set(kind, new Set(units));
  }

  /**
   * Whether the node can give a task everything `requests` asks for. Tasks may only ask for counts:
   * a named request never fits, nor does a kind the node does not advertise.
   */
  hasEnough(requests: readonly GenericResource[]): boolean {
    for (const request of requests) {
      const spec = request.discreteResourceSpec;
      if (spec === undefined) return false;
      const count = this.counts.get(spec.kind);
      if (count !== undefined) {
        if (spec.value > count) return false;
        continue;
      }
      const units = this.freeUnits.get(spec.kind);
      if (units === undefined || spec.value > BigInt(units.size)) return false;
    }
    return true;
  }

  /**
   * Takes what `requests` asks for and returns what the task now holds: one count per counted kind
   * and one entry per named unit, as swarmkit records them in `Task.assignedGenericResources`. Call it
   * only after {@link hasEnough} accepted the same requests.
   */
  claim(requests: readonly GenericResource[]): GenericResource[] {
    const held: GenericResource[] = [];
    for (const request of requests) {
      const spec = request.discreteResourceSpec;
      if (spec === undefined || spec.value <= 0n) continue;
      const count = this.counts.get(spec.kind);
      if (count !== undefined) {
        this.counts.set(spec.kind, count - spec.value);
        held.push({ discreteResourceSpec: { kind: spec.kind, value: spec.value } });
        continue;
      }
      const units = this.freeUnits.get(spec.kind);
      if (units === undefined) continue;
      let wanted = spec.value;
      for (const unit of units) {
        if (wanted === 0n) break;
        units.delete(unit);
        held.push({ namedResourceSpec: { kind: spec.kind, value: unit } });
        wanted--;
      }
    }
    return held;
  }

  /** Marks resources a task already holds (from an earlier {@link claim}) as taken. */
  take(held: readonly GenericResource[]): void {
    for (const resource of held) {
      if (resource.discreteResourceSpec !== undefined) {
        const { kind, value } = resource.discreteResourceSpec;
        const count = this.counts.get(kind);
        if (count !== undefined) this.counts.set(kind, count - value);
      } else if (resource.namedResourceSpec !== undefined) {
        this.freeUnits.get(resource.namedResourceSpec.kind)?.delete(resource.namedResourceSpec.value);
      }
    }
  }

  /** Gives back what a task held; named units the node no longer advertises stay gone. */
  release(held: readonly GenericResource[]): void {
    for (const resource of held) {
      if (resource.discreteResourceSpec !== undefined) {
        const { kind, value } = resource.discreteResourceSpec;
        const count = this.counts.get(kind);
        if (count !== undefined) this.counts.set(kind, count + value);
      } else if (resource.namedResourceSpec !== undefined) {
        const { kind, value } = resource.namedResourceSpec;
        if (this.advertisedUnits.get(kind)?.has(value) === true) this.freeUnits.get(kind)?.add(value);
      }
    }
  }
}
