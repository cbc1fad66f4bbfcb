import { availableParallelism, loadavg } from 'node:os';
import { cpuPressure } from './proc.js';

/** `value` with thousands separators and `digits` decimals. */
export function format(value: number, digits = 0): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** A Markdown table whose columns from `firstNumeric` on hold numbers, right-aligned. */
function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], firstNumeric: number): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const numeric = (column: number) => column >= firstNumeric;
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, column) => (numeric(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => `${'-'.repeat(width + 1)}${numeric(column) ? ':' : '-'}`).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/**
 * What the bench found: the set-up figures (seeding, memory) and one row per request and concurrency
 * level, each printed as it is taken (a run takes minutes), then everything as Markdown at the end,
 * with notes and failures after it.
 */
export class Report {
  readonly #facts: (readonly string[])[] = [];
  readonly #loads: (readonly string[])[] = [];
  readonly #failures: string[] = [];
  readonly #notes: string[] = [];
  /** Other work on the machine skews every number here, so the load before the bench started is shown with them. */
  readonly #loadAtStart = loadavg()[0] ?? 0;
  readonly #pressureAtStart = cpuPressure();

  static readonly LOAD_COLUMNS = ['request', 'clients', 'answered', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'response KiB', 'api CPU %', 'api CPU ms/req', 'bench CPU %', 'failed'] as const;

  /** Records one set-up figure. */
  fact(what: string, value: number, unit: string, digits = 0): void {
    this.#facts.push([what, unit, format(value, digits)]);
    process.stdout.write(`  ${what}: ${format(value, digits)} ${unit}\n`);
  }

  /** Records the row of one request at one concurrency level, its cells in {@link Report.LOAD_COLUMNS}' order. */
  load(cells: readonly string[]): void {
    this.#loads.push(cells);
    process.stdout.write(`  ${Report.LOAD_COLUMNS.map((title, column) => `${title} ${cells[column] ?? ''}`).join(', ')}\n`);
  }

  /** Records something a row's numbers do not say (what failed requests answered), printed under the tables. */
  note(text: string): void {
    this.#notes.push(text);
    process.stdout.write(`  ${text}\n`);
  }

  /** Records that something could not be measured, and why. */
  fail(what: string, err: unknown): void {
    const reason = err instanceof Error ? err.message : String(err);
    this.#failures.push(`${what}: ${reason}`);
    process.stdout.write(`  ${what}: failed (see the end)\n`);
  }

  get failed(): boolean {
    return this.#failures.length > 0;
  }

  /** Both tables as Markdown, with the machine and time they were taken on, then what failed. */
  print(): void {
    const load = `load average ${format(this.#loadAtStart, 2)} before the bench, ${format(loadavg()[0] ?? 0, 2)} at the end`;
    const pressure = `CPU pressure (some avg60) ${format(this.#pressureAtStart, 1)}% before, ${format(cpuPressure(), 1)}% at the end`;
    const sections = [
      `node ${process.version}, ${availableParallelism()} CPUs, ${load}, ${pressure}, ${new Date().toISOString()}`,
      markdownTable(['set-up', 'unit', 'value'], this.#facts, 2),
      markdownTable(Report.LOAD_COLUMNS, this.#loads, 2),
    ];
    if (this.#notes.length > 0) sections.push(`Notes:\n${this.#notes.map((note) => `- ${note}`).join('\n')}`);
    if (this.#failures.length > 0) sections.push(`Failures:\n${this.#failures.map((failure) => `- ${failure}`).join('\n')}`);
    process.stdout.write(`\n${sections.join('\n\n')}\n`);
  }
}
