// Plain-text tables for the terminal and docs/performance.md (columns padded, right-aligned numbers).

export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ').trimEnd()
  return [line(header), widths.map(w => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

export const ms = (x: number | undefined): string => x === undefined || Number.isNaN(x) ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)
export const range = (s: { median: number, min: number, max: number } | undefined): string => s ? `${ms(s.median)} [${ms(s.min)}-${ms(s.max)}]` : '-'
export const ratio = (a: number | undefined, b: number | undefined): string => a === undefined || b === undefined ? '-' : `${(a / b).toFixed(2)}x`
export const mb = (bytes: number | undefined): string => bytes === undefined ? '-' : bytes >= 1e7 ? (bytes / 1e6).toFixed(0) : (bytes / 1e6).toFixed(2)
