import { availableParallelism, loadavg } from 'node:os';

interface Row {
  readonly metric: string;
  readonly value: string;
  readonly unit: string;
}

/** `value` with thousands separators and `digits` decimals. */
export function format(value: number, digits = 0): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/**
 * The results table: each measurement is printed as it is taken (a run takes minutes), and the whole
 * table, as Markdown, at the end, with failures after it.
 */
export class Report {
  readonly #rows: Row[] = [];
  readonly #failures: string[] = [];
  /** Other work on the machine skews every number here, so the load before the bench started is shown with them. */
  readonly #loadAtStart = loadavg()[0] ?? 0;

  /** Records one number; `digits` decimals. */
  record(metric: string, value: number, unit: string, digits = 0): void {
    this.recordText(metric, format(value, digits), unit);
  }

  /** Records a value that is not one number (several CPU shares, a range). */
  recordText(metric: string, value: string, unit: string): void {
    this.#rows.push({ metric, value, unit });
    process.stdout.write(`  ${metric}: ${value} ${unit}\n`);
  }

  /** Records that a measurement could not be taken, and why. */
  fail(measurement: string, err: unknown): void {
    const reason = err instanceof Error ? err.message : String(err);
    this.recordText(measurement, 'failed', 'see below');
    this.#failures.push(`${measurement}: ${reason}`);
  }

  get failed(): boolean {
    return this.#failures.length > 0;
  }

  /** The table as Markdown, with the machine and time it ran on, then what failed. */
  print(): void {
    const width = (column: keyof Row, title: string) => Math.max(title.length, ...this.#rows.map((row) => row[column].length));
    const [metricWidth, valueWidth, unitWidth] = [width('metric', 'metric'), width('value', 'value'), width('unit', 'unit')];
    const line = (metric: string, value: string, unit: string) => `| ${metric.padEnd(metricWidth)} | ${value.padStart(valueWidth)} | ${unit.padEnd(unitWidth)} |`;
    const load = `load average ${format(this.#loadAtStart, 2)} before the bench, ${format(loadavg()[0] ?? 0, 2)} at the end`;
    process.stdout.write(
      `\nnode ${process.version}, ${availableParallelism()} CPUs, ${load}, ${new Date().toISOString()}\n\n` +
        [
          line('metric', 'value', 'unit'),
          `|${'-'.repeat(metricWidth + 2)}|${'-'.repeat(valueWidth + 1)}:|${'-'.repeat(unitWidth + 2)}|`,
          ...this.#rows.map((row) => line(row.metric, row.value, row.unit)),
        ].join('\n') +
        '\n',
    );
    if (this.#failures.length > 0) process.stdout.write(`\nFailures:\n${this.#failures.map((failure) => `- ${failure}`).join('\n')}\n`);
  }
}
