import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Linux's USER_HZ: the unit of the CPU times in /proc/<pid>/stat (100 on every mainstream kernel). */
const CLOCK_TICKS_PER_SECOND = 100;

/** What /proc says of one process at one moment (Linux only). */
interface ProcessSample {
  /** User plus system CPU seconds used so far, every thread included. */
  readonly cpuSeconds: number;
  /** Resident memory now (`VmRSS`), MiB. */
  readonly rssMiB: number;
  /** Resident memory at its highest so far (`VmHWM`), MiB. */
  readonly peakRssMiB: number;
}

function sample(pid: number): ProcessSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces, so fields are counted from after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const mib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) / 1024;
  return { cpuSeconds: (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / CLOCK_TICKS_PER_SECOND, rssMiB: mib('VmRSS'), peakRssMiB: mib('VmHWM') };
}

/** What one process used over a window: CPU seconds, that as a share of one core, and its memory at the end. */
export interface ProcessUsage {
  readonly name: string;
  readonly cpuSeconds: number;
  /** Percent of one core over the window (200% is both cores of a two-core machine). */
  readonly cpuPercent: number;
  readonly rssMiB: number;
  readonly peakRssMiB: number;
}

/** A window of time over which each named process's CPU use is counted, with its memory at the end. */
export class UsageWindow {
  readonly #startedAt = performance.now();
  /** Each process, with the CPU seconds it had used when the window opened. */
  readonly #processes = new Map<string, { readonly pid: number; readonly cpuBefore: number }>();

  /** Opens the window over `pids` (by name). */
  constructor(pids: ReadonlyMap<string, number>) {
    for (const [name, pid] of pids) this.#processes.set(name, { pid, cpuBefore: sample(pid).cpuSeconds });
  }

  /** Adds a process started inside the window: everything it has used counts. */
  addStartedProcess(name: string, pid: number): void {
    this.#processes.set(name, { pid, cpuBefore: 0 });
  }

  /** What each process used from the opening until now. */
  close(): ProcessUsage[] {
    const seconds = (performance.now() - this.#startedAt) / 1000;
    return [...this.#processes].map(([name, { pid, cpuBefore }]) => {
      const now = sample(pid);
      const cpuSeconds = now.cpuSeconds - cpuBefore;
      return { name, cpuSeconds, cpuPercent: (cpuSeconds / seconds) * 100, rssMiB: now.rssMiB, peakRssMiB: now.peakRssMiB };
    });
  }
}

/**
 * The share of the last minute in which some runnable task waited for a CPU (Linux PSI,
 * /proc/pressure/cpu `some avg60`), in percent; NaN where the kernel does not report it.
 */
export function cpuPressure(): number {
  try {
    return Number(/^some avg10=\S+ avg60=(\S+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}
