import { readFileSync } from 'node:fs';

/** Linux's USER_HZ: the unit of the CPU times in /proc/<pid>/stat (100 on every mainstream kernel). */
const CLOCK_TICKS_PER_SECOND = 100;

/** User plus system CPU seconds process `pid` has used so far, every thread included, from /proc (Linux only). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces, so fields are counted from after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / CLOCK_TICKS_PER_SECOND;
}

/**
 * The share of the last minute in which some runnable task waited for a CPU (Linux PSI,
 * /proc/pressure/cpu `some avg60`), in percent; NaN where the kernel does not report it. On a shared
 * machine it says, better than the load average, how much other work slowed the bench down.
 */
export function cpuPressure(): number {
  try {
    return Number(/^some avg10=\S+ avg60=(\S+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}

/** Processes whose CPU time is reported together (the scheduler instances), one figure each. */
export interface ProcessGroup {
  readonly name: string;
  readonly pids: readonly number[];
}

/** The CPU seconds each process of a group used. */
export interface GroupCpu {
  readonly name: string;
  readonly seconds: readonly number[];
}

/** Starts measuring the groups' CPU time; the returned function gives what each process used since. */
export function measureCpu(groups: readonly ProcessGroup[]): () => GroupCpu[] {
  const before = groups.map(({ pids }) => pids.map(cpuSecondsOf));
  return () => groups.map(({ name, pids }, group) => ({ name, seconds: pids.map((pid, index) => cpuSecondsOf(pid) - before[group]![index]!) }));
}
