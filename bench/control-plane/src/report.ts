import { availableParallelism, loadavg } from 'node:os';
import { cpuPressure } from './proc.js';

/** `value` with thousands separators and `digits` decimals; `n/a` for a value that was not measured. */
export function format(value: number | undefined, digits = 0): string {
  if (value === undefined || Number.isNaN(value)) return 'n/a';
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

interface Row {
  readonly unit: string;
  /** The value of each run, by run title. */
  readonly values: Map<string, string>;
}

/**
 * What the bench found: one column per run, one row per metric, each value printed as it is taken
 * (a run takes a minute or more), then everything as one Markdown table at the end, with the notes and
 * failures after it.
 */
export class Report {
  readonly #runs: string[] = [];
  readonly #rows = new Map<string, Row>();
  readonly #notes: string[] = [];
  readonly #failures: string[] = [];
  /** Other work on the machine skews every number here, so the load before the bench started is shown with them. */
  readonly #loadAtStart = loadavg()[0] ?? 0;
  readonly #pressureAtStart = cpuPressure();

  /** Starts the column of a run. */
  beginRun(title: string): void {
    this.#runs.push(title);
    process.stdout.write(`${title}:\n`);
  }

  /** Records one value of `run`; `digits` decimals. */
  record(run: string, metric: string, value: number | undefined, unit: string, digits = 0): void {
    this.recordText(run, metric, format(value, digits), unit);
  }

  /** Records a value of `run` that is not one number. */
  recordText(run: string, metric: string, value: string, unit: string): void {
    let row = this.#rows.get(metric);
    if (row === undefined) {
      row = { unit, values: new Map() };
      this.#rows.set(metric, row);
    }
    row.values.set(run, value);
    process.stdout.write(`  ${metric}: ${value} ${unit}\n`);
  }

  /** Records something the numbers do not say (what a service warned about), printed under the table. */
  note(text: string): void {
    this.#notes.push(text);
    process.stdout.write(`  ${text}\n`);
  }

  /** Records that `run` could not be measured to the end, and why. */
  fail(run: string, err: unknown): void {
    const reason = err instanceof Error ? err.message : String(err);
    this.#failures.push(`${run}: ${reason}`);
    process.stdout.write(`  failed (see the end)\n`);
  }

  get failed(): boolean {
    return this.#failures.length > 0;
  }

  /** The table as Markdown, with the machine and time it was taken on, then the notes and what failed. */
  print(): void {
    const header = ['metric', 'unit', ...this.#runs];
    const rows = [...this.#rows].map(([metric, { unit, values }]) => [metric, unit, ...this.#runs.map((run) => values.get(run) ?? '')]);
    const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
    const numeric = (column: number) => column >= 2;
    const line = (cells: readonly string[]) =>
      `| ${cells.map((cell, column) => (numeric(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join(' | ')} |`;
    const rule = `|${widths.map((width, column) => `${'-'.repeat(width + 1)}${numeric(column) ? ':' : '-'}`).join('|')}|`;
    const load = `load average ${format(this.#loadAtStart, 2)} before the bench, ${format(loadavg()[0] ?? 0, 2)} at the end`;
    const pressure = `CPU pressure (some avg60) ${format(this.#pressureAtStart, 1)}% before, ${format(cpuPressure(), 1)}% at the end`;
    const sections = [`node ${process.version}, ${availableParallelism()} CPUs, ${load}, ${pressure}, ${new Date().toISOString()}`, [line(header), rule, ...rows.map(line)].join('\n')];
    if (this.#notes.length > 0) sections.push(`Notes:\n${this.#notes.map((note) => `- ${note}`).join('\n')}`);
    if (this.#failures.length > 0) sections.push(`Failures:\n${this.#failures.map((failure) => `- ${failure}`).join('\n')}`);
    process.stdout.write(`\n${sections.join('\n\n')}\n`);
  }
}
