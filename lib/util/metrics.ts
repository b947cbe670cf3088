/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
 * text exposition format (version 0.0.4). Pure: values are set by the subsystems (counters,
 * histograms) or read when scraped (gauges with a `collect` callback); no clock, no I/O.
 */

/** Label names to values. */
export type Labels = Readonly<Record<string, string>>;

type Kind = "counter" | "gauge" | "histogram";

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly kind: Kind;
  render(out: string[]): void;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra !== undefined) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function keyOf(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
}

function numberText(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** A monotonically increasing count, per label set. */
export class Counter implements Metric {
  readonly kind = "counter";
  readonly #values = new Map<string, { labels: Labels; value: number }>();

  constructor(readonly name: string, readonly help: string) {}

  /** Adds `by` (>= 0) to the count of `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new RangeError(`Counter ${this.name} cannot decrease`);
    const k = keyOf(labels);
    const e = this.#values.get(k);
    if (e === undefined) this.#values.set(k, { labels, value: by });
    else e.value += by;
  }

  /** The count of `labels` (0 if never incremented). */
  value(labels: Labels = {}): number {
    return this.#values.get(keyOf(labels))?.value ?? 0;
  }

  /** Every label set counted so far, with its count (read by the JSON API's throughput). */
  *series(): IterableIterator<{ readonly labels: Labels; readonly value: number }> {
    for (const { labels, value } of this.#values.values()) yield { labels, value };
  }

  /** Forgets the series of `labels` (a deleted topic). */
  remove(labels: Labels): void {
    this.#values.delete(keyOf(labels));
  }

  render(out: string[]): void {
    for (const { labels, value } of this.#values.values()) {
      out.push(`${this.name}${labelText(labels)} ${numberText(value)}`);
    }
  }
}

/** A value read when scraped: `collect` returns the series. */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly collect: () => Iterable<[Labels, number]>,
    /** "counter" for a count kept elsewhere (read when scraped). */
    readonly kind: "gauge" | "counter" = "gauge",
  ) {}

  render(out: string[]): void {
    for (const [labels, value] of this.collect()) {
      out.push(`${this.name}${labelText(labels)} ${numberText(value)}`);
    }
  }
}

/** Observations counted into cumulative buckets, with their sum and count, per label set. */
export class Histogram implements Metric {
  readonly kind = "histogram";
  readonly #series = new Map<
    string,
    { labels: Labels; buckets: number[]; sum: number; count: number }
  >();

  /** `bounds`: the upper bounds of the buckets, increasing (+Inf is added). */
  constructor(readonly name: string, readonly help: string, readonly bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) throw new RangeError(`${name}: bounds must increase`);
    }
  }

  observe(value: number, labels: Labels = {}): void {
    const k = keyOf(labels);
    let s = this.#series.get(k);
    if (s === undefined) {
      s = { labels, buckets: this.bounds.map(() => 0), sum: 0, count: 0 };
      this.#series.set(k, s);
    }
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]!) s.buckets[i]!++;
    s.sum += value;
    s.count++;
  }

  /** Observations of `labels` so far. */
  count(labels: Labels = {}): number {
    return this.#series.get(keyOf(labels))?.count ?? 0;
  }

  render(out: string[]): void {
    for (const s of this.#series.values()) {
      this.bounds.forEach((b, i) => {
        out.push(
          `${this.name}_bucket${labelText(s.labels, ["le", numberText(b)])} ${s.buckets[i]}`,
        );
      });
      out.push(`${this.name}_bucket${labelText(s.labels, ["le", "+Inf"])} ${s.count}`);
      out.push(`${this.name}_sum${labelText(s.labels)} ${numberText(s.sum)}`);
      out.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
  }
}

/** Latency buckets in milliseconds, from 0.5 ms to 30 s. */
export const LATENCY_MS_BUCKETS = [
  0.5,
  1,
  2.5,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000,
  30000,
] as const;

/** The metrics of one node, rendered together. */
export class MetricsRegistry {
  readonly #metrics = new Map<string, Metric>();

  #add<M extends Metric>(m: M): M {
    if (this.#metrics.has(m.name)) throw new Error(`Metric ${m.name} registered twice`);
    this.#metrics.set(m.name, m);
    return m;
  }

  counter(name: string, help: string): Counter {
    return this.#add(new Counter(name, help));
  }

  gauge(name: string, help: string, collect: () => Iterable<[Labels, number]>): Gauge {
    return this.#add(new Gauge(name, help, collect));
  }

  /** A counter whose value is kept elsewhere and read when scraped. */
  counterOf(name: string, help: string, collect: () => Iterable<[Labels, number]>): Gauge {
    return this.#add(new Gauge(name, help, collect, "counter"));
  }

  histogram(name: string, help: string, bounds: readonly number[] = LATENCY_MS_BUCKETS): Histogram {
    return this.#add(new Histogram(name, help, bounds));
  }

  /** The Prometheus text exposition of every metric. */
  render(): string {
    const out: string[] = [];
    for (const m of this.#metrics.values()) {
      out.push(`# HELP ${m.name} ${m.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
      out.push(`# TYPE ${m.name} ${m.kind}`);
      m.render(out);
    }
    return out.join("\n") + "\n";
  }
}
