/**
 * Property tests: random sequences of transactions run against the store and against a plain
 * reference model built from JavaScript Maps, which says what each write must do. The store must
 * end in the model's state, fail exactly the writes the model fails (same code, same operation),
 * deliver to every watcher exactly the commits after its starting point, and answer every index
 * lookup as a brute-force filter of the model does. A second store replays the same writes as a
 * raft replica would (prepare, encode, decode, apply at other versions) and must agree too.
 */
import { isShoalError } from '@shoal/errors';
import { NodeRole, StoreTransaction, TaskState, type AnyObject } from '@shoal/proto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  all,
  byDesiredState,
  byIdPrefix,
  byLabel,
  byName,
  byNamePrefix,
  byNodeId,
  byRole,
  byServiceId,
  bySlot,
  byTaskState,
  fromStoreTransaction,
  MemoryStore,
  toStoreTransaction,
  type Commit,
  type ReadTx,
  type Selector,
  type StoreEvent,
  type Transaction,
  type Watch,
  type WatchFilter,
  type WriteTx,
} from '../src/index.js';
import { drain, node, service, task, testOptions } from './fixtures.js';

type Kind = 'service' | 'task' | 'node';

/** The fields the generator varies; every object is built from these. */
interface Fields {
  readonly name: string;
  readonly serviceId: string;
  readonly nodeId: string;
  readonly slot: bigint;
  readonly desiredState: TaskState;
  readonly state: TaskState;
  readonly label: string | undefined;
  readonly role: NodeRole;
}

/**
 * Which object an operation on an existing object targets: the `pick`th (modulo) of the objects
 * that exist when it runs, so that most operations hit one, or (if `missing`) one that never does.
 */
interface Target {
  readonly pick: number;
  readonly missing: boolean;
}

type Operation =
  | { readonly type: 'create'; readonly kind: Kind; readonly id: string; readonly fields: Fields }
  | (Target & { readonly type: 'update'; readonly fields: Fields; readonly stale: boolean })
  | (Target & { readonly type: 'delete'; readonly stale: boolean })
  | (Target & { readonly type: 'expect'; readonly stale: boolean });

interface WatcherPlan {
  /** Started before this transaction (modulo the number of transactions + 1). */
  readonly before: number;
  readonly how: 'live' | 'viewAndWatch' | 'fromVersion';
  /** For fromVersion: how many versions before the current one. */
  readonly back: number;
  /** Watch only one kind, or only the tasks of service s1 (matched by new or old object). */
  readonly filter: WatchedSubset | undefined;
}

type WatchedSubset = Kind | 'tasks of s1';

function watchFilters(subset: WatchedSubset | undefined): WatchFilter[] | undefined {
  if (subset === undefined) return undefined;
  return subset === 'tasks of s1' ? [{ kind: 'task', selectors: [byServiceId('s1')] }] : [{ kind: subset }];
}

const retainedCommits = 4;

function build(kind: Kind, id: string, fields: Fields): AnyObject {
  const labels = fields.label === undefined ? {} : { tier: fields.label };
  switch (kind) {
    case 'service':
      return service(id, fields.name, { spec: { annotations: { labels } } });
    case 'node':
      return node(id, fields.name, { role: fields.role, spec: { annotations: { labels } } });
    case 'task':
      return task(id, fields.serviceId, {
        nodeId: fields.nodeId,
        slot: fields.slot,
        desiredState: fields.desiredState,
        status: { state: fields.state },
        annotations: { name: fields.name, labels },
        serviceAnnotations: { name: 'svc' },
      });
  }
}

function withVersion(object: AnyObject, version: bigint): AnyObject {
  return { ...object, meta: { version: { index: version }, createdAt: undefined, updatedAt: undefined } };
}

/** What the test compares objects by: the generated fields, read back from the object. */
function fingerprint(kind: string, object: AnyObject): string {
  const o = object as Partial<Record<string, unknown>> & AnyObject;
  const view = {
    service: () => {
      const s = o as ReturnType<typeof service>;
      return [s.spec?.annotations?.name, s.spec?.annotations?.labels];
    },
    node: () => {
      const n = o as ReturnType<typeof node>;
      return [n.description?.hostname, n.role, n.spec?.annotations?.labels];
    },
    task: () => {
      const t = o as ReturnType<typeof task>;
      return [t.annotations?.name, t.serviceId, t.nodeId, String(t.slot), t.desiredState, t.status?.state, t.annotations?.labels];
    },
  }[kind as Kind];
  return `${kind} ${object.id} ${JSON.stringify(view())}`;
}

function describeEvent(event: StoreEvent): string {
  const old = event.old === undefined ? '' : ` from ${fingerprint(event.kind, event.old)}`;
  return `${event.action} ${fingerprint(event.kind, event.object)}${old}`;
}

interface ModelObject {
  readonly kind: Kind;
  readonly id: string;
  readonly fields: Fields;
  /** The committed version; 0 for an object created in the transaction under way. */
  readonly version: bigint;
}

interface ModelEvent {
  readonly text: string;
  /** The object after the change and the one before it, as far as they exist. */
  readonly objects: readonly ModelObject[];
}

interface ModelCommit {
  readonly version: bigint;
  readonly events: readonly ModelEvent[];
}

/** What a failed transaction failed with, and at which operation. */
interface Failure {
  readonly at: number;
  readonly code: string;
}

const keyOf = (kind: Kind, id: string) => `${kind}/${id}`;
const lowerName = (object: ModelObject) => object.fields.name.toLowerCase();

const kinds: readonly Kind[] = ['service', 'task', 'node'];

/** The object an operation writes, given the objects as the transaction sees them. */
function targetOf(view: ReadonlyMap<string, ModelObject>, operation: Operation): { kind: Kind; id: string } {
  if (operation.type === 'create') return operation;
  const keys = [...view.keys()].sort();
  const picked = view.get(keys[operation.pick % Math.max(keys.length, 1)] ?? '');
  if (operation.missing || picked === undefined) {
    const kind = kinds[operation.pick % kinds.length] ?? 'task';
    return { kind, id: `${kind[0]}-missing` };
  }
  return picked;
}

/** The version a write passes for `operation` on `key`: the one the model holds, or a wrong one. */
function expectedVersion(view: ReadonlyMap<string, ModelObject>, operation: Operation, key: string): bigint {
  const current = view.get(key)?.version ?? 0n;
  return 'stale' in operation && operation.stale ? current + 1n : current;
}

/** The reference: the rules of the store written as plainly as possible over Maps. */
class Model {
  readonly objects = new Map<string, ModelObject>();
  readonly commits: ModelCommit[] = [];
  version = 0n;

  /** Runs a transaction; returns its failure, or undefined if it committed (or had nothing to commit). */
  run(operations: readonly Operation[]): Failure | undefined {
    const view = new Map(this.objects);
    const firstWritten = new Map<string, { before: ModelObject | undefined; recreated: boolean }>();
    for (const [at, operation] of operations.entries()) {
      const { kind, id } = targetOf(view, operation);
      const key = keyOf(kind, id);
      const current = view.get(key);
      const fail = (code: string): Failure => ({ at, code });
      if (operation.type === 'create') {
        if (current !== undefined) return fail('ALREADY_EXISTS');
        if (this.nameTaken(view, kind, id, operation.fields)) return fail('NAME_CONFLICT');
      } else {
        if (current === undefined) return fail('NOT_FOUND');
        if (expectedVersion(view, operation, key) !== current.version) return fail('CONFLICT');
        if (operation.type === 'update' && this.nameTaken(view, kind, id, operation.fields)) return fail('NAME_CONFLICT');
      }
      if (operation.type === 'expect') continue;
      const written = firstWritten.get(key) ?? { before: this.objects.get(key), recreated: false };
      if (operation.type === 'create' && written.before !== undefined) written.recreated = true;
      firstWritten.set(key, written);
      if (operation.type === 'delete') view.delete(key);
      else view.set(key, { kind, id, fields: operation.fields, version: current?.version ?? 0n });
    }
    this.commit(view, firstWritten);
    return undefined;
  }

  private nameTaken(view: ReadonlyMap<string, ModelObject>, kind: Kind, id: string, fields: Fields): boolean {
    if (kind !== 'service' || fields.name === '') return false;
    return [...view.values()].some((o) => o.kind === kind && o.id !== id && lowerName(o) === fields.name.toLowerCase());
  }

  private commit(
    view: ReadonlyMap<string, ModelObject>,
    firstWritten: ReadonlyMap<string, { before: ModelObject | undefined; recreated: boolean }>,
  ): void {
    const version = this.version + 1n;
    const events: ModelEvent[] = [];
    const text = (o: ModelObject) => fingerprint(o.kind, build(o.kind, o.id, o.fields));
    for (const [key, { before, recreated }] of firstWritten) {
      const after = view.get(key);
      if (before !== undefined && (after === undefined || recreated)) events.push({ text: `delete ${text(before)}`, objects: [before] });
      if (after === undefined) continue;
      if (before === undefined || recreated) events.push({ text: `create ${text(after)}`, objects: [after] });
      else events.push({ text: `update ${text(after)} from ${text(before)}`, objects: [after, before] });
    }
    if (events.length === 0) return;
    this.version = version;
    for (const key of firstWritten.keys()) {
      const after = view.get(key);
      if (after === undefined) this.objects.delete(key);
      else this.objects.set(key, { ...after, version });
    }
    this.commits.push({ version, events });
  }

  /** Changes up to this version are no longer kept for watchers. */
  compactedThrough(): bigint {
    const dropped = this.commits.length - retainedCommits;
    return dropped > 0 ? (this.commits[dropped - 1]?.version ?? 0n) : 0n;
  }

  /** The commits a watcher starting after `version`, perhaps watching only a subset, must receive. */
  commitsAfter(version: bigint, subset: WatchedSubset | undefined): string[][] {
    const watched = (event: ModelEvent) =>
      subset === undefined ||
      event.objects.some((o) => (subset === 'tasks of s1' ? o.kind === 'task' && o.fields.serviceId === 's1' : o.kind === subset));
    return this.commits
      .filter((commit) => commit.version > version)
      .map((commit) => [`version ${commit.version}`, ...commit.events.filter(watched).map((event) => event.text)])
      .filter((lines) => lines.length > 1);
  }

  /** Every object, as the store's `list` would show it. */
  contents(mapVersion: (version: bigint) => bigint): string[] {
    return [...this.objects.values()]
      .map((o) => `${fingerprint(o.kind, build(o.kind, o.id, o.fields))} @${mapVersion(o.version)}`)
      .sort();
  }
}

/** Which operation a transaction is at, so a thrown error can be pinned on it. */
interface Progress {
  at: number;
}

/**
 * Runs the operations in a store write transaction, passing the versions the model holds (through
 * `mapVersion`, for a replica whose versions differ), starting from the model's `committed` objects.
 */
function runOperations(
  tx: WriteTx,
  committed: ReadonlyMap<string, ModelObject>,
  operations: readonly Operation[],
  mapVersion: (version: bigint) => bigint,
  progress: Progress,
): void {
  const view = new Map(committed);
  for (const [at, operation] of operations.entries()) {
    progress.at = at;
    const { kind, id } = targetOf(view, operation);
    const key = keyOf(kind, id);
    const version = mapVersion(expectedVersion(view, operation, key));
    switch (operation.type) {
      case 'create':
        tx.create(kind, build(kind, id, operation.fields) as never);
        view.set(key, { kind, id, fields: operation.fields, version: 0n });
        break;
      case 'update':
        tx.update(kind, withVersion(build(kind, id, operation.fields), version) as never);
        view.set(key, { kind, id, fields: operation.fields, version: view.get(key)?.version ?? 0n });
        break;
      case 'delete':
        tx.delete(kind, id, version);
        view.delete(key);
        break;
      case 'expect':
        tx.expectVersion(kind, id, version);
        break;
    }
  }
}

/** Runs `write`; returns the ShoalError it threw as the failure of the operation it was at. */
function attempt(progress: Progress, write: () => void): Failure | undefined {
  try {
    write();
    return undefined;
  } catch (error) {
    if (!isShoalError(error)) throw error;
    return { at: progress.at, code: error.code };
  }
}

function contentsOf(tx: ReadTx): string[] {
  return (['service', 'task', 'node'] as const)
    .flatMap((kind) => tx.list(kind).map((o) => `${fingerprint(kind, o)} @${o.meta?.version?.index ?? 'none'}`))
    .sort();
}

function describeCommits(commits: readonly Commit[]): string[][] {
  return commits.map((commit) => {
    for (const event of commit.events) {
      if (event.action !== 'delete') expect(event.object.meta?.version?.index).toBe(commit.version);
    }
    return [`version ${commit.version}`, ...commit.events.map(describeEvent)];
  });
}

/** Every lookup the store's indexes serve for these kinds, with the brute-force predicate it must equal. */
const lookups: readonly { kind: Kind; selector: Selector; selects: (o: ModelObject) => boolean }[] = [
  ...['s0', 's1', 's9'].map((id) => ({
    kind: 'task' as const,
    selector: byServiceId(id),
    selects: (o: ModelObject) => o.fields.serviceId === id,
  })),
  ...['', 'n0', 'n1'].map((id) => ({
    kind: 'task' as const,
    selector: byNodeId(id),
    selects: (o: ModelObject) => o.fields.nodeId === id,
  })),
  ...[0n, 1n, 2n].map((slot) => ({
    kind: 'task' as const,
    selector: bySlot('s1', slot),
    selects: (o: ModelObject) => o.fields.serviceId === 's1' && o.fields.slot === slot,
  })),
  ...[TaskState.RUNNING, TaskState.SHUTDOWN].map((state) => ({
    kind: 'task' as const,
    selector: byDesiredState(state),
    selects: (o: ModelObject) => o.fields.desiredState === state,
  })),
  ...[TaskState.NEW, TaskState.RUNNING].map((state) => ({
    kind: 'task' as const,
    selector: byTaskState(state),
    selects: (o: ModelObject) => o.fields.state === state,
  })),
  ...(['service', 'task', 'node'] as const).flatMap((kind) => [
    ...['a', 'B'].map((name) => ({
      kind,
      selector: byName(name),
      selects: (o: ModelObject) => o.fields.name.toLowerCase() === name.toLowerCase(),
    })),
    // Only a task without a name of its own is named after its service and slot ("svc.1.t0").
    {
      kind,
      selector: byNamePrefix('svc.1'),
      selects: (o: ModelObject) => kind === 'task' && o.fields.name === '' && o.fields.slot === 1n,
    },
    { kind, selector: byIdPrefix(`${kind[0]}1`), selects: (o: ModelObject) => o.id.startsWith(`${kind[0]}1`) },
    { kind, selector: byLabel('tier'), selects: (o: ModelObject) => o.fields.label !== undefined },
    { kind, selector: byLabel('tier', 'x'), selects: (o: ModelObject) => o.fields.label === 'x' },
    { kind, selector: all, selects: () => true },
  ]),
  { kind: 'node', selector: byRole(NodeRole.MANAGER), selects: (o) => o.fields.role === NodeRole.MANAGER },
];

const fieldsArbitrary: fc.Arbitrary<Fields> = fc.record({
  name: fc.constantFrom('a', 'A', 'b', 'c', ''),
  serviceId: fc.constantFrom('s0', 's1'),
  nodeId: fc.constantFrom('', 'n0', 'n1'),
  slot: fc.constantFrom(0n, 1n, 2n),
  desiredState: fc.constantFrom(TaskState.RUNNING, TaskState.SHUTDOWN),
  state: fc.constantFrom(TaskState.NEW, TaskState.RUNNING),
  label: fc.constantFrom(undefined, 'x', 'y'),
  role: fc.constantFrom(NodeRole.WORKER, NodeRole.MANAGER),
});

const kindArbitrary = fc.constantFrom<Kind>('service', 'task', 'node');
/** Mostly false: one stale or missing target fails the whole transaction, and most should commit. */
const rarely = (oneIn: number) =>
  fc.oneof({ arbitrary: fc.constant(false), weight: oneIn - 1 }, { arbitrary: fc.constant(true), weight: 1 });
const existing = { pick: fc.nat({ max: 11 }), missing: rarely(20), stale: rarely(10) };

const createArbitrary: fc.Arbitrary<Operation> = fc
  .record({ kind: kindArbitrary, n: fc.integer({ min: 0, max: 3 }), fields: fieldsArbitrary })
  .map(({ kind, n, fields }) => ({ type: 'create' as const, kind, id: `${kind[0]}${n}`, fields }));

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  { arbitrary: createArbitrary, weight: 4 },
  { arbitrary: fc.record({ ...existing, fields: fieldsArbitrary }).map((o) => ({ type: 'update' as const, ...o })), weight: 3 },
  { arbitrary: fc.record(existing).map((o) => ({ type: 'delete' as const, ...o })), weight: 2 },
  { arbitrary: fc.record(existing).map((o) => ({ type: 'expect' as const, ...o })), weight: 1 },
);

const scenarioArbitrary = fc.record({
  /** The first transaction only creates, so that later ones mostly find objects to work on. */
  transactions: fc
    .tuple(
      fc.uniqueArray(createArbitrary, { selector: (operation) => targetOf(new Map(), operation).id, minLength: 1, maxLength: 8 }),
      fc.array(fc.array(operationArbitrary, { minLength: 1, maxLength: 5 }), { maxLength: 12 }),
    )
    .map(([seed, rest]) => [seed, ...rest]),
  watchers: fc.array(
    fc.record({
      before: fc.nat(),
      how: fc.constantFrom<WatcherPlan['how']>('live', 'viewAndWatch', 'fromVersion'),
      back: fc.nat({ max: 6 }),
      filter: fc.constantFrom<WatchedSubset | undefined>(undefined, 'service', 'task', 'node', 'tasks of s1'),
    }),
    { maxLength: 4 },
  ),
});

/** A replica's versions: raft indexes with gaps, so nothing relies on versions being consecutive. */
const replicaVersion = (version: bigint) => (version === 0n ? 0n : version * 3n + 7n);

describe('MemoryStore against a reference model', () => {
  it('agrees with the model on state, errors, watches and index lookups', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, async ({ transactions, watchers }) => {
        const model = new Model();
        const store = new MemoryStore(testOptions({ retainedCommits }));
        const replica = new MemoryStore(testOptions({ retainedCommits }));
        const started: { watch: Watch; after: bigint; filter: WatchedSubset | undefined }[] = [];

        for (let index = 0; index <= transactions.length; index++) {
          for (const plan of watchers.filter((w) => w.before % (transactions.length + 1) === index)) {
            const { filter } = plan;
            const filters = watchFilters(filter);
            if (plan.how === 'fromVersion') {
              const fromVersion = model.version > BigInt(plan.back) ? model.version - BigInt(plan.back) : 0n;
              if (fromVersion < model.compactedThrough()) {
                expect(() => store.watch({ fromVersion, filters })).toThrow(/^cannot watch from version/);
              } else {
                started.push({ watch: store.watch({ fromVersion, filters }), after: fromVersion, filter });
              }
            } else if (plan.how === 'viewAndWatch') {
              const { result, version, watch } = store.viewAndWatch(contentsOf, { filters });
              expect([result, version]).toEqual([model.contents((v) => v), model.version]);
              started.push({ watch, after: version, filter });
            } else {
              started.push({ watch: store.watch({ filters }), after: model.version, filter });
            }
          }
          const operations = transactions[index];
          if (operations === undefined) break;

          const committed = new Map(model.objects);
          const expected = model.run(operations);
          const progress: Progress = { at: -1 };
          const failure = attempt(progress, () =>
            store.update((tx) => runOperations(tx, committed, operations, (v) => v, progress)),
          );
          expect(failure).toEqual(expected);

          let transaction: Transaction | undefined;
          const replicaFailure = attempt(progress, () => {
            transaction = replica.prepare((tx) => runOperations(tx, committed, operations, replicaVersion, progress));
          });
          expect(replicaFailure).toEqual(expected);
          if (transaction !== undefined && transaction.changes.length > 0) {
            const entry = StoreTransaction.encode(toStoreTransaction(transaction, BigInt(index))).finish();
            replica.apply(fromStoreTransaction(StoreTransaction.decode(entry)), replicaVersion(model.version));
          }
        }

        expect([store.version, replica.version]).toEqual([model.version, replicaVersion(model.version)]);
        expect(store.view(contentsOf)).toEqual(model.contents((v) => v));
        expect(replica.view(contentsOf)).toEqual(model.contents(replicaVersion));
        for (const { watch, after, filter } of started) {
          expect(describeCommits(await drain(watch))).toEqual(model.commitsAfter(after, filter));
        }
        for (const { kind, selector, selects } of lookups) {
          const found = store.view((tx) => tx.find(kind, selector).map((o) => o.id).sort());
          const wanted = [...model.objects.values()].filter((o) => o.kind === kind && selects(o)).map((o) => o.id).sort();
          const lookup = `${kind} ${selector.description}`;
          expect({ lookup, found }).toEqual({ lookup, found: wanted });
        }
      }),
      { numRuns: 1000 },
    );
  });
});
