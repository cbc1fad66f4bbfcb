/** `value` with thousands separators and `digits` decimals; `n/a` for a value that was not measured. */
export function format(value: number | undefined, digits = 0): string {
  if (value === undefined || Number.isNaN(value)) return 'n/a';
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** A Markdown table, the first column left-aligned and the others (numbers) right-aligned. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${widths.map((width, column) => (column === 0 ? (cells[column] ?? '').padEnd(width) : (cells[column] ?? '').padStart(width))).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => `${'-'.repeat(width + 1)}${column === 0 ? '-' : ':'}`).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** How many of a service's distinct warnings are quoted. */
const QUOTED_WARNINGS = 3;

/** One line per service that logged warnings or errors: how many, and the first few distinct ones. */
export function warningNotes(warnings: ReadonlyMap<string, readonly string[]>): string[] {
  return [...warnings].flatMap(([service, logged]) => {
    if (logged.length === 0) return [];
    const quoted = [...new Set(logged)].slice(0, QUOTED_WARNINGS).map((warning) => `"${warning}"`);
    return [`- ${service} logged ${logged.length} warnings or errors, e.g. ${quoted.join('; ')}`];
  });
}
