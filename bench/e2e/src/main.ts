/**
 * Benchmark of Shoal against Docker's own swarm mode on the same machine, the same dockerd and the
 * same image (issue 6): the time from `docker service create --replicas 50` to all 50 tasks running,
 * and from `docker rm -f` of one task's container to its replacement running. Prints a table and
 * every sample as JSON; bench/e2e/README.md says what each number means. Not a test: nothing here asserts.
 *
 * `node dist/main.js [shoal] [docker] [--runs=3] [--recoveries=3] [--replicas=50]`: the named systems
 * only (both by default), up side by side and measured in turns, run by run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTestImage, TEST_LABEL, testRunId } from '@shoal/testkit';
import { EngineClient } from './engine-client.js';
import { measureRun, METRICS, type Workload } from './measure.js';
import { Results } from './results.js';
import { dockerCli, DockerSwarm, LOCAL_DOCKERD, ShoalSwarm, type DockerCli, type SwarmUnderTest } from './swarms.js';

/** The systems, by the name the command line gives them, in the order they take their turns by default. */
const SYSTEMS: Record<string, { readonly title: string; start(localDocker: DockerCli, runId: string): Promise<SwarmUnderTest> }> = {
  shoal: ShoalSwarm,
  docker: DockerSwarm,
};

const DEFAULT_WORKLOAD: Workload = { replicas: 50, runs: 3, recoveries: 3 };

function usage(problem: string): never {
  process.stderr.write(`${problem}\nusage: node dist/main.js [shoal] [docker] [--runs=N] [--recoveries=N] [--replicas=N]\n`);
  process.exit(2);
}

function parseArguments(args: readonly string[]): { systems: string[]; workload: Workload } {
  const named = args.filter((arg) => !arg.startsWith('--'));
  const options = new Map(
    args
      .filter((arg) => arg.startsWith('--'))
      .map((arg) => {
        const [, name, value] = /^--([a-z]+)=(\d+)$/.exec(arg) ?? usage(`unknown argument ${arg}`);
        if (!(name! in DEFAULT_WORKLOAD)) usage(`unknown option --${name}`);
        return [name!, Number(value)] as const;
      }),
  );
  const unknown = named.filter((name) => !(name in SYSTEMS));
  if (unknown.length > 0) usage(`unknown system ${unknown.join(', ')}`);
  const workload = { ...DEFAULT_WORKLOAD, ...Object.fromEntries(options) } as Workload;
  if (workload.replicas < 1 || workload.runs < 1) usage('--replicas and --runs take positive whole numbers');
  return { systems: named.length > 0 ? named : Object.keys(SYSTEMS), workload };
}

const { systems, workload } = parseArguments(process.argv.slice(2));
const runId = testRunId();

// Interrupted: the current measurement stops at its next poll and the system is taken down before the
// table is printed. A second signal exits at once, and says what may be left behind.
const interrupt = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupt.abort();
    process.once(signal, () => {
      process.stderr.write(
        `interrupted again: exiting without clean-up. dockerd may still be in the bench's swarm (docker swarm leave --force), ` +
          `and containers labelled ${TEST_LABEL}=${runId} may remain\n`,
      );
      process.exit(130);
    });
  });
}

await requireTestImage();
const configDir = mkdtempSync(join(tmpdir(), 'shoal-bench-e2e-'));
const localDocker = dockerCli(LOCAL_DOCKERD, configDir);
const dockerd = new EngineClient(LOCAL_DOCKERD);
const results = new Results([ShoalSwarm.title, DockerSwarm.title], Object.values(METRICS));
const notes: string[] = [];
const failures: string[] = [];
const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));
const load = () => (loadavg()[0] ?? 0).toFixed(1);
const dockerdVersion = (await localDocker(['version', '--format', '{{.Server.Version}}'])).trim();
process.stdout.write(
  `e2e benchmark: ${workload.replicas} replicas of sleep 3600, ${workload.runs} runs × ${workload.recoveries} recoveries per system, ` +
    `dockerd ${dockerdVersion}, run id ${runId}\n`,
);
// Both systems are up for the whole bench and take turns run by run, so that the load other work puts
// on the shared machine, which drifts over minutes, weighs on both alike.
const swarms: SwarmUnderTest[] = [];
try {
  for (const name of systems) {
    const { title, start } = SYSTEMS[name]!;
    if (interrupt.signal.aborted) break;
    try {
      swarms.push(await start(localDocker, runId));
    } catch (err) {
      failures.push(`${title}: could not start: ${describe(err)}`);
    }
  }
  for (let run = 1; run <= workload.runs && !interrupt.signal.aborted; run++) {
    for (const swarm of [...swarms]) {
      if (interrupt.signal.aborted) break;
      const loadBefore = load();
      process.stdout.write(`${swarm.name}, run ${run}:\n`);
      try {
        await measureRun({ swarm, dockerd, localDocker, runId, workload, results, signal: interrupt.signal }, run);
        notes.push(`${swarm.name}, run ${run}: load average (1 min) ${loadBefore} before, ${load()} after`);
      } catch (err) {
        // A system that failed a run is taken down; the other goes on alone.
        failures.push(`${swarm.name}, run ${run}: ${describe(err)}`);
        swarms.splice(swarms.indexOf(swarm), 1);
        await swarm.stop().catch((stopErr: unknown) => failures.push(`${swarm.name}: clean-up failed: ${describe(stopErr)}`));
      }
    }
  }
} finally {
  for (const swarm of swarms) await swarm.stop().catch((err: unknown) => failures.push(`${swarm.name}: clean-up failed: ${describe(err)}`));
  dockerd.close();
  rmSync(configDir, { recursive: true, force: true });
}
const sections = [
  `node ${process.version}, ${availableParallelism()} CPUs, dockerd ${dockerdVersion}, ${new Date().toISOString()}`,
  results.table(),
  `Notes:\n${notes.map((note) => `- ${note}`).join('\n')}`,
  ...(failures.length > 0 ? [`Failures:\n${failures.map((failure) => `- ${failure}`).join('\n')}`] : []),
  `Samples (ms): ${results.json()}`,
];
process.stdout.write(`\n${sections.join('\n\n')}\n`);
process.exitCode = interrupt.signal.aborted ? 130 : failures.length > 0 ? 1 : 0;
