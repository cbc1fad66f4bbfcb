/** The middle sample (the mean of the two middle ones for an even count); NaN for none. */
function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Seconds with two decimals; `n/a` for a value that was not measured. */
function seconds(ms: number): string {
  return Number.isNaN(ms) ? 'n/a' : (ms / 1000).toFixed(2);
}

/** A system's samples of one metric as `median (min–max, n)` in seconds. */
function summary(samples: readonly number[]): string {
  if (samples.length === 0) return 'n/a';
  return `${seconds(median(samples))} (${seconds(Math.min(...samples))}–${seconds(Math.max(...samples))}, n=${samples.length})`;
}

/**
 * Every sample the bench took, in ms, by system and metric; printed as one table comparing the
 * systems' medians (with the ratio of the first system to the second) and as JSON with every sample.
 */
export class Results {
  readonly #samples = new Map<string, Map<string, number[]>>();

  constructor(
    /** The systems compared, the numerator of the ratio first. */
    private readonly systems: readonly [string, string],
    /** The metrics in the order they are printed. */
    private readonly metrics: readonly string[],
  ) {}

  /** Records one sample, and prints it as it is taken (a run takes minutes). */
  record(system: string, metric: string, ms: number): void {
    let bySystem = this.#samples.get(system);
    if (bySystem === undefined) {
      bySystem = new Map();
      this.#samples.set(system, bySystem);
    }
    bySystem.set(metric, [...(bySystem.get(metric) ?? []), Math.round(ms)]);
    process.stdout.write(`  ${system}: ${metric}: ${seconds(ms)} s\n`);
  }

  #samplesOf(system: string, metric: string): readonly number[] {
    return this.#samples.get(system)?.get(metric) ?? [];
  }

  /** Markdown: per metric, each system's median (min–max, count) in seconds, and the ratio of the medians. */
  table(): string {
    const [numerator, denominator] = this.systems;
    const header = ['metric', `${numerator}: median (min–max, n), s`, `${denominator}: median (min–max, n), s`, `${numerator}/${denominator}`];
    const rows = this.metrics.map((metric) => {
      const ratio = median(this.#samplesOf(numerator, metric)) / median(this.#samplesOf(denominator, metric));
      return [metric, summary(this.#samplesOf(numerator, metric)), summary(this.#samplesOf(denominator, metric)), Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'];
    });
    const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
    const line = (cells: readonly string[]) => `| ${cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join(' | ')} |`;
    const rule = `|${widths.map((width, column) => `${'-'.repeat(width + 1)}${column === 0 ? '-' : ':'}`).join('|')}|`;
    return [line(header), rule, ...rows.map(line)].join('\n');
  }

  /** Every sample, in ms: `{ system: { metric: [ms, …] } }`. */
  json(): string {
    const bySystem = Object.fromEntries([...this.#samples].map(([system, metrics]) => [system, Object.fromEntries(metrics)]));
    return JSON.stringify(bySystem);
  }
}
