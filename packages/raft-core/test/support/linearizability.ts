/**
 * A linearizability checker: the Wing–Gong search with Lowe's memoization, as Porcupine implements it,
 * over any sequential model, with P-compositionality (a history is linearizable if each independent
 * part of it is, e.g. each key of a key-value store).
 */

/** One client operation. An operation whose outcome the client never learned has `returnedAt` Infinity and no output. */
export interface Operation<I, O> {
  readonly clientId: number;
  readonly input: I;
  /** Undefined when the outcome is unknown: the operation may have taken effect at any point after its call, or never. */
  readonly output: O | undefined;
  /** When the client invoked it; distinct instants are required only between a return and a later call. */
  readonly calledAt: number;
  readonly returnedAt: number;
}

/** A sequential specification. */
export interface Model<S, I, O> {
  init(): S;
  /**
   * The state after `input` is applied to `state`, if the operation could have returned `output`
   * there (an undefined output matches anything); undefined if it could not.
   */
  step(state: S, input: I, output: O | undefined): S | undefined;
  /** Identifies a state, for memoization: equal keys for equal states. */
  stateKey(state: S): string;
  /** Splits a history into parts that do not interact (defaults to one part). */
  partition?(history: readonly Operation<I, O>[]): Operation<I, O>[][];
}

export type CheckResult<I, O> =
  | { readonly linearizable: true }
  | {
      readonly linearizable: false;
      /** The part of the history that has no linearization. */
      readonly part: readonly Operation<I, O>[];
    };

/** Stops a search that would take too long to be useful in a test, rather than let it spin. */
export class CheckBudgetExceeded extends Error {
  constructor(readonly explored: number) {
    super(`linearizability check gave up after exploring ${explored} states`);
  }
}

interface Event {
  readonly operation: number;
  readonly isCall: boolean;
  /** For a call, its return event. */
  match: Event | undefined;
  prev: Event | undefined;
  next: Event | undefined;
}

/** Checks `history` against `model`; throws {@link CheckBudgetExceeded} past `maxStates` memoized states per part. */
export function checkLinearizable<S, I, O>(
  history: readonly Operation<I, O>[],
  model: Model<S, I, O>,
  maxStates = 1_000_000,
): CheckResult<I, O> {
  const parts = model.partition?.(history) ?? [history.slice()];
  for (const part of parts) {
    if (!checkPart(part, model, maxStates)) return { linearizable: false, part };
  }
  return { linearizable: true };
}

function checkPart<S, I, O>(operations: readonly Operation<I, O>[], model: Model<S, I, O>, maxStates: number): boolean {
  const head = buildEventList(operations);
  const linearized = new Uint32Array(Math.ceil(operations.length / 32) + 1);
  const seen = new Set<string>();
  const stack: { call: Event; state: S }[] = [];
  let state = model.init();
  let event = head.next;
  while (head.next !== undefined) {
    if (event === undefined) throw new Error('the event list ended on a call: every call must have a return');
    if (event.isCall) {
      const operation = operations[event.operation] as Operation<I, O>;
      const after = model.step(state, operation.input, operation.output);
      if (after !== undefined) {
        toggle(linearized, event.operation);
        const key = `${linearized.join(',')}|${model.stateKey(after)}`;
        if (!seen.has(key)) {
          seen.add(key);
          if (seen.size > maxStates) throw new CheckBudgetExceeded(seen.size);
          stack.push({ call: event, state });
          state = after;
          lift(event);
          event = head.next;
          continue;
        }
        toggle(linearized, event.operation);
      }
      event = event.next;
    } else {
      // An operation returned before it could be linearized: undo the last choice and try the next.
      const last = stack.pop();
      if (last === undefined) return false;
      state = last.state;
      toggle(linearized, last.call.operation);
      unlift(last.call);
      event = last.call.next;
    }
  }
  return true;
}

/** Calls and returns in time order (a call before a return at the same instant: they overlap), after a sentinel head. */
function buildEventList<I, O>(operations: readonly Operation<I, O>[]): Event {
  const timed: { at: number; event: Event }[] = [];
  operations.forEach((operation, index) => {
    const ret: Event = { operation: index, isCall: false, match: undefined, prev: undefined, next: undefined };
    const call: Event = { operation: index, isCall: true, match: ret, prev: undefined, next: undefined };
    timed.push({ at: operation.calledAt, event: call }, { at: operation.returnedAt, event: ret });
  });
  timed.sort((a, b) => a.at - b.at || Number(b.event.isCall) - Number(a.event.isCall));
  const head: Event = { operation: -1, isCall: false, match: undefined, prev: undefined, next: undefined };
  let tail = head;
  for (const { event } of timed) {
    tail.next = event;
    event.prev = tail;
    tail = event;
  }
  return head;
}

function lift(call: Event): void {
  unlink(call);
  unlink(call.match as Event);
}

function unlift(call: Event): void {
  relink(call.match as Event);
  relink(call);
}

function unlink(event: Event): void {
  (event.prev as Event).next = event.next;
  if (event.next !== undefined) event.next.prev = event.prev;
}

function relink(event: Event): void {
  (event.prev as Event).next = event;
  if (event.next !== undefined) event.next.prev = event;
}

function toggle(bits: Uint32Array, index: number): void {
  bits[index >>> 5] = (bits[index >>> 5] as number) ^ (1 << (index & 31));
}

/** An input to a key-value store whose keys are independent registers. */
export type KvInput = { readonly kind: 'put'; readonly key: string; readonly value: string } | { readonly kind: 'get'; readonly key: string };
/** A get's result (null for a missing key); a put's is 'ok'. */
export type KvOutput = string | null;
export type KvOperation = Operation<KvInput, KvOutput>;

/** A key-value store, checked one key (one register) at a time. */
export const kvModel: Model<string | null, KvInput, KvOutput> = {
  init: () => null,
  step(state, input, output) {
    if (input.kind === 'put') return input.value;
    return output === undefined || output === state ? state : undefined;
  },
  stateKey: (state) => (state === null ? '\u0000' : state),
  partition(history) {
    const byKey = new Map<string, KvOperation[]>();
    for (const operation of history) {
      const part = byKey.get(operation.input.key);
      if (part === undefined) byKey.set(operation.input.key, [operation]);
      else part.push(operation);
    }
    return [...byKey.values()];
  },
};
