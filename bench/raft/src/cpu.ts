import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Linux's USER_HZ: the unit of the CPU times in /proc/<pid>/stat (100 on every mainstream kernel). */
const CLOCK_TICKS_PER_SECOND = 100;

/** User plus system CPU seconds process `pid` has used, from /proc (Linux only). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces, so fields are counted from after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [utime, stime] = [fields[11], fields[12]].map(Number);
  return ((utime ?? 0) + (stime ?? 0)) / CLOCK_TICKS_PER_SECOND;
}

/**
 * Starts measuring the CPU the given processes use; the returned function gives each one's share of
 * one core since then, as a percentage (200% is both cores of a two-core machine).
 */
export function measureCpu(pids: readonly number[]): () => number[] {
  const startedAt = performance.now();
  const before = pids.map(cpuSecondsOf);
  return () => {
    const seconds = (performance.now() - startedAt) / 1000;
    return pids.map((pid, i) => ((cpuSecondsOf(pid) - (before[i] ?? 0)) / seconds) * 100);
  };
}
