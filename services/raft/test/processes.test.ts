import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './support/cluster.js';
import { ProcessCluster, WriteLoad, writesNotReadBack } from './support/processes.js';

describe('three replicas as real processes', () => {
  let cluster: ProcessCluster;
  beforeAll(async () => {
    cluster = await ProcessCluster.start(3);
  }, 90_000);
  afterAll(() => cluster?.close());

  it('loses no acknowledged write when the leader is killed with SIGKILL under write load, and the killed replica catches up after a restart', async () => {
    let alive = [...cluster.replicas];
    const load = new WriteLoad('load', () => alive);
    await load.reach(20);

    const killed = await cluster.leader();
    alive = cluster.replicas.filter((replica) => replica !== killed);
    const killedAt = Date.now();
    await killed.kill();
    // Only running replicas count: the first one named leader now is a new one.
    const newLeader = await cluster.leader();
    // Speed belongs in bench/: this is reported, not asserted.
    console.info(`raft: new leader ${newLeader.nodeId} elected ${Date.now() - killedAt} ms after SIGKILL of the leader (tick 50 ms, election 10 ticks)`);
    await load.reach(load.acknowledged.size + 20);
    await load.stop();

    for (const survivor of alive) expect(await writesNotReadBack(survivor, load.acknowledged)).toEqual([]);
    await killed.start();
    expect(await eventually(() => writesNotReadBack(killed, load.acknowledged), 20_000)).toEqual([]);
  }, 120_000);
});
