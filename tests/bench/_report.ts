/** Benchmark output: one JSON line per figure, with an optional baseline and ratio. */

/** Prints `{ name, value, unit, baseline?, ratio? }` as one line on stdout. */
export function report(
  name: string,
  value: number,
  unit: string,
  baseline?: { name: string; value: number },
): void {
  const line: Record<string, unknown> = { name, value: Math.round(value * 100) / 100, unit };
  if (baseline) {
    line.baseline = baseline.name;
    line.ratio = Math.round((value / baseline.value) * 1000) / 1000;
  }
  // deno-lint-ignore no-console -- printing figures is what a benchmark is for
  console.log(JSON.stringify(line));
}

/** The q-quantile (0..1) of `values` (sorted copy). */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
