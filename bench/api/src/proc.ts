import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Linux's USER_HZ: the unit of the CPU times in /proc/<pid>/stat (100 on every mainstream kernel). */
const CLOCK_TICKS_PER_SECOND = 100;

/** User plus system CPU seconds process `pid` has used, from /proc (Linux only). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces, so fields are counted from after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / CLOCK_TICKS_PER_SECOND;
}

/**
 * Starts measuring the CPU the given processes use; the returned function gives each one's share of
 * one core since then, as a percentage (200% is both cores of a two-core machine).
 */
export function measureCpu(pids: readonly number[]): () => number[] {
  const startedAt = performance.now();
  const before = pids.map(cpuSecondsOf);
  return () => {
    const elapsed = (performance.now() - startedAt) / 1000;
    return pids.map((pid, i) => ((cpuSecondsOf(pid) - (before[i] ?? 0)) / elapsed) * 100);
  };
}

/** Resident memory of process `pid` in MiB: now (`VmRSS`) and at its peak so far (`VmHWM`), from /proc/<pid>/status. */
export function residentMemoryOf(pid: number): { nowMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { nowMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
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
