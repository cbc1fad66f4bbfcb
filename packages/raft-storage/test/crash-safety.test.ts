import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom, testSeed } from '@shoal/testkit';
import { RaftStorage } from '../src/index.js';
import { readAll, useStorageHarness } from './harness.js';

const harness = useStorageHarness();
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const writerScript = fileURLToPath(new URL('fixtures/crash-writer.mjs', import.meta.url));

/** What the writer says it did, parsed from its `begin …` lines. */
type Operation =
  | { kind: 'append'; first: bigint; term: bigint; commit: bigint; hashes: string[] }
  | { kind: 'snapshot'; index: bigint; term: bigint; hash: string }
  | { kind: 'rotate' };

/** The storage's content as the writer's announced operations define it. */
interface Model {
  readonly entries: ReadonlyMap<bigint, { term: bigint; hash: string }>;
  readonly snapshot: { index: bigint; term: bigint; hash: string } | undefined;
  readonly hardState: { term: bigint; commit: bigint };
}

const emptyModel: Model = { entries: new Map(), snapshot: undefined, hardState: { term: 0n, commit: 0n } };

function parseOperation(line: string): Operation {
  const [kind, ...fields] = line.split(' ');
  if (kind === 'append') {
    const [first, term, commit, hashes] = fields;
    return { kind, first: BigInt(first ?? ''), term: BigInt(term ?? ''), commit: BigInt(commit ?? ''), hashes: (hashes ?? '').split(',') };
  }
  if (kind === 'snapshot') return { kind, index: BigInt(fields[0] ?? ''), term: BigInt(fields[1] ?? ''), hash: fields[2] ?? '' };
  return { kind: 'rotate' };
}

function applyOperation(model: Model, operation: Operation): Model {
  switch (operation.kind) {
    case 'append': {
      const entries = new Map([...model.entries].filter(([index]) => index < operation.first));
      operation.hashes.forEach((hash, offset) => entries.set(operation.first + BigInt(offset), { term: operation.term, hash }));
      return { ...model, entries, hardState: { term: operation.term, commit: operation.commit } };
    }
    case 'snapshot': {
      const entries = new Map([...model.entries].filter(([index]) => index > operation.index));
      return { ...model, entries, snapshot: { index: operation.index, term: operation.term, hash: operation.hash } };
    }
    case 'rotate':
      return model;
  }
}

/** Runs the writer on `dataDir` until `killAfterMs` after it is ready, then SIGKILLs it. */
async function runWriterUntilKilled(dataDir: string, seed: string, killAfterMs: number): Promise<{ lines: string[]; stderr: string }> {
  const child = spawn(process.execPath, [writerScript, dataDir, seed], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    const wasReady = stdout.startsWith('ready\n');
    stdout += chunk.toString();
    if (!wasReady && stdout.startsWith('ready\n')) setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  });
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, closeSignal) => resolve(closeSignal)));
  if (signal !== 'SIGKILL') throw new Error(`the writer exited by itself (signal ${signal}): ${stderr}`);
  // A line cut by the kill has no newline and is not counted: the writer had not finished saying it.
  return { lines: stdout.split('\n').slice(1, -1), stderr };
}

/** The storage's content as read back through the API, in the model's terms. */
async function readBack(dataDir: string): Promise<Model> {
  const { storage, recovered } = await harness.open({ dataDir });
  const entries = new Map(recovered.entries.map((entry) => [entry.index, { term: entry.term, hash: sha256(entry.data) }]));
  const snapshot = recovered.snapshot && { index: recovered.snapshot.index, term: recovered.snapshot.term, hash: sha256(await readAll(await storage.openSnapshot())) };
  await storage.close();
  return { entries, snapshot, hardState: { term: recovered.hardState.term, commit: recovered.hardState.commit } };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

beforeAll(() => {
  // The writer runs the built package in a plain node process.
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-b', packageDir], { stdio: 'pipe' });
}, 120_000);

describe('crash safety', () => {
  it('after a SIGKILL at a random instant, every acknowledged write is intact and nothing else is there but the write in flight', async () => {
    const seed = testSeed();
    const random = new SeededRandom(seed);
    const dataDir = await harness.dataDir();
    let model = emptyModel;
    let acknowledged = 0;

    for (let run = 0; run < 8; run++) {
      const { lines } = await runWriterUntilKilled(dataDir, `${seed}/${run}`, random.int(20, 300));
      let inFlight: Operation | undefined;
      for (const line of lines) {
        if (line === 'ack') {
          if (inFlight === undefined) throw new Error(`an ack with no operation (seed ${seed})`);
          model = applyOperation(model, inFlight);
          inFlight = undefined;
          acknowledged++;
        } else {
          inFlight = parseOperation(line.replace(/^begin /, ''));
        }
      }
      // The operation in flight when the kill came may or may not have reached the disk, but whole or not at all.
      const outcomes = inFlight === undefined ? [model] : [model, applyOperation(model, inFlight)];
      const found = await readBack(dataDir);
      const matching = outcomes.findIndex((outcome) => JSON.stringify(describeModel(outcome)) === JSON.stringify(describeModel(found)));
      if (matching === -1) {
        expect(describeModel(found), `run ${run} recovered something that was never written whole (replay with SHOAL_TEST_SEED=${seed})`).toEqual(
          describeModel(model),
        );
      }
      model = found;
    }
    // The runs did real work: the claim is not vacuously true of a writer that never got going.
    expect(acknowledged, `seed ${seed}`).toBeGreaterThan(50);
  }, 60_000);
});

/** A model as plain sorted data, so two models compare with toEqual and print readably. */
function describeModel(model: Model): unknown {
  return {
    snapshot: model.snapshot && { index: String(model.snapshot.index), term: String(model.snapshot.term), hash: model.snapshot.hash },
    hardState: { term: String(model.hardState.term), commit: String(model.hardState.commit) },
    entries: [...model.entries]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([index, entry]) => `${index}@${entry.term}:${entry.hash.slice(0, 16)}`),
  };
}
