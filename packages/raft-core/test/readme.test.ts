// The usage example in README.md is this test, so that it compiles and runs.
import { ConfChange, EntryType, type Message } from '@shoal/proto';
import { expect, it } from 'vitest';
import { MemoryStorage, RawNode } from '../src/index.js';

it('runs the README example: a member driven by its caller, one Ready at a time', () => {
  // A founding member of a new cluster (here of one); a member that joins later starts from new MemoryStorage().
  const storage = MemoryStorage.bootstrapped({ voters: [1n], learners: [] });
  const node = new RawNode({ id: 1n, storage });
  const outbox: Message[] = [];
  const applied: string[] = [];
  const reads: string[] = [];

  // Run after every tick, step, proposal or read request.
  function handleReadies(): void {
    while (node.hasReady()) {
      const ready = node.ready();
      // 1. Persist, durably if ready.mustSync: the snapshot, then the entries, then the hard state.
      if (ready.snapshot !== undefined) storage.applySnapshot(ready.snapshot);
      storage.append(ready.entries);
      if (ready.hardState !== undefined) storage.setHardState(ready.hardState);
      // 2. Only now send: the messages promise what step 1 stored.
      outbox.push(...ready.messages);
      // 3. Apply the snapshot (none here) and the committed entries in order; conf changes go back to the node.
      for (const entry of ready.committedEntries) {
        if (entry.type === EntryType.CONF_CHANGE) node.applyConfChange(ConfChange.decode(entry.data));
        else if (entry.data.length > 0) applied.push(entry.data.toString());
      }
      // 4. Serve reads whose index has been applied (all of them, here).
      for (const read of ready.readStates) reads.push(`${read.context.toString()} at ${read.index}`);
      // 5. Tell the node.
      node.advance(ready);
    }
  }

  // Time passes in ticks the caller makes (swarmkit ticks once a second).
  for (let tick = 0; tick < 20 && node.status().role !== 'leader'; tick++) {
    node.tick();
    handleReadies();
  }
  expect(node.status()).toMatchObject({ role: 'leader', term: 2n });

  const position = node.propose(Buffer.from('hello'));
  handleReadies();
  expect(position).toEqual({ index: 3n, term: 2n });
  expect(applied).toEqual(['hello']);

  node.readIndex(Buffer.from('read-1'));
  handleReadies();
  expect(reads).toEqual(['read-1 at 3']);
  expect(outbox).toEqual([]); // a cluster of one has nobody to talk to
});
