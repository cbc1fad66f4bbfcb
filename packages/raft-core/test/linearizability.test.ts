// The checker the simulation relies on, checked against histories whose answer is known, including
// the ones it must reject: a checker that cannot fail would make the simulation prove nothing.
import { SeededRandom } from '@shoal/testkit';
import { describe, expect, it } from 'vitest';
import { CheckBudgetExceeded, checkLinearizable, kvModel, type KvInput, type KvOperation, type KvOutput } from './support/linearizability.js';

/** An operation by `clientId` over [calledAt, returnedAt]; a returnedAt of Infinity leaves the outcome unknown. */
function op(clientId: number, input: KvInput, output: KvOutput | undefined, calledAt: number, returnedAt: number): KvOperation {
  return { clientId, input, output, calledAt, returnedAt };
}
const put = (key: string, value: string) => ({ kind: 'put', key, value }) as const;
const get = (key: string) => ({ kind: 'get', key }) as const;

const linearizable = (history: KvOperation[]) => checkLinearizable(history, kvModel).linearizable;

describe('linearizability checker', () => {
  it('accepts the empty history and a sequential one that reads its own writes', () => {
    expect(linearizable([])).toBe(true);
    expect(linearizable([op(1, put('x', 'a'), 'ok', 0, 1), op(1, get('x'), 'a', 2, 3), op(2, get('y'), null, 4, 5)])).toBe(true);
  });

  it('rejects a read that misses a write which completed before the read began', () => {
    expect(linearizable([op(1, put('x', 'a'), 'ok', 0, 1), op(2, get('x'), null, 2, 3)])).toBe(false);
  });

  it('accepts either value for a read that overlaps the write', () => {
    expect(linearizable([op(1, put('x', 'a'), 'ok', 0, 3), op(2, get('x'), null, 1, 2)])).toBe(true);
    expect(linearizable([op(1, put('x', 'a'), 'ok', 0, 3), op(2, get('x'), 'a', 1, 2)])).toBe(true);
  });

  it('rejects a new-then-old read inversion during a slow write', () => {
    // Both reads overlap the write, but once one read has seen the new value a later one may not see the old.
    const history = [op(1, put('x', 'a'), 'ok', 0, 10), op(2, get('x'), 'a', 1, 2), op(3, get('x'), null, 3, 4)];
    expect(linearizable(history)).toBe(false);
  });

  it('rejects a read of a value nobody wrote', () => {
    expect(linearizable([op(1, put('x', 'a'), 'ok', 0, 1), op(2, get('x'), 'b', 2, 3)])).toBe(false);
  });

  it('lets a write with an unknown outcome take effect late or never', () => {
    const lost = op(1, put('x', 'b'), undefined, 2, Infinity);
    const before = op(1, put('x', 'a'), 'ok', 0, 1);
    expect(linearizable([before, lost, op(2, get('x'), 'a', 3, 4)])).toBe(true);
    expect(linearizable([before, lost, op(2, get('x'), 'b', 3, 4), op(2, get('x'), 'b', 5, 6)])).toBe(true);
    // Once seen, it cannot be undone: reading the older value afterwards is not linearizable.
    expect(linearizable([before, lost, op(2, get('x'), 'b', 3, 4), op(2, get('x'), 'a', 5, 6)])).toBe(false);
  });

  it('never lets an operation with an unknown outcome take effect before it was invoked', () => {
    expect(linearizable([op(1, get('x'), 'b', 0, 1), op(2, put('x', 'b'), undefined, 2, Infinity)])).toBe(false);
  });

  it('checks keys independently and reports the part that fails', () => {
    const good = [op(1, put('x', 'a'), 'ok', 0, 1), op(2, get('x'), 'a', 2, 3)];
    const bad = [op(1, put('y', 'a'), 'ok', 4, 5), op(2, get('y'), null, 6, 7)];
    const result = checkLinearizable([...good, ...bad], kvModel);
    expect(result.linearizable).toBe(false);
    expect(result.linearizable ? [] : result.part).toEqual(bad);
  });

  it('accepts every history recorded from an atomic register, and rejects each once one read is corrupted', () => {
    for (let run = 0; run < 200; run++) {
      const history = atomicRegisterHistory(new SeededRandom(`register-${run}`));
      expect(linearizable(history), `run ${run}`).toBe(true);
      const reads = history.filter((operation) => operation.input.kind === 'get');
      const victim = reads[run % reads.length] as KvOperation;
      const corrupted = history.map((operation) => (operation === victim ? { ...operation, output: 'never-written' } : operation));
      expect(linearizable(corrupted), `run ${run}`).toBe(false);
    }
  });

  it('gives up with CheckBudgetExceeded rather than search without end', () => {
    // Twenty concurrent writes of unknown outcome and a read that matches none: every subset is tried.
    const writes = Array.from({ length: 20 }, (_, i) => op(i, put('x', `v${i}`), undefined, i, Infinity));
    expect(() => checkLinearizable([...writes, op(99, get('x'), 'none', 30, 31)], kvModel, 10_000)).toThrow(CheckBudgetExceeded);
  });
});

/**
 * Four clients run against one atomic register: each operation takes effect at one instant inside its
 * [call, return] interval, so the recorded history is linearizable by construction.
 */
function atomicRegisterHistory(random: SeededRandom): KvOperation[] {
  const history: KvOperation[] = [];
  const steps: { at: number; run: () => void }[] = [];
  let value: string | null = null;
  for (let client = 0; client < 4; client++) {
    let time = random.int(0, 5);
    for (let n = 0; n < 6; n++) {
      const calledAt = time;
      const effectAt = calledAt + random.int(1, 10);
      const returnedAt = effectAt + random.int(1, 10);
      const input: KvInput = random.chance(0.5) ? put('x', `c${client}-${n}`) : get('x');
      const operation = { clientId: client, input, output: null as KvOutput, calledAt, returnedAt };
      // Distinct instants for every effect: a tie would make the atomic order ambiguous.
      steps.push({
        at: effectAt * 10 + client,
        run: () => {
          if (input.kind === 'put') {
            value = input.value;
            operation.output = 'ok';
          } else {
            operation.output = value;
          }
        },
      });
      history.push(operation);
      time = returnedAt + random.int(1, 5);
    }
  }
  steps.sort((a, b) => a.at - b.at);
  for (const step of steps) step.run();
  // Reads must exist for the corruption half of the test; put one at the end if the draws made none.
  history.push({ clientId: 9, input: get('x'), output: value, calledAt: 10_000, returnedAt: 10_001 });
  return history;
}
