/**
 * A cumulative histogram of observed values (seconds, in practice), as
 * Prometheus histograms count them: one counter per upper bound, a sum and a
 * count.
 *
 * @module
 */
import type { Sample } from "./exposition.ts";

/** Default bounds for store round trips, seconds. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
];

/** A histogram; see the module doc. */
export class Histogram {
  readonly #bounds: number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  /** Creates one with the upper bounds `buckets` (sorted and deduplicated here). */
  constructor(buckets: readonly number[] = LATENCY_BUCKETS) {
    this.#bounds = [...new Set(buckets)].filter((b) => Number.isFinite(b)).sort((a, b) => a - b);
    this.#counts = this.#bounds.map(() => 0);
  }

  /** Counts one value. */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    this.#sum += value;
    this.#count++;
    for (let i = 0; i < this.#bounds.length; i++) if (value <= this.#bounds[i]!) this.#counts[i]!++;
  }

  /** How many values were observed. */
  get count(): number {
    return this.#count;
  }

  /** Their sum. */
  get sum(): number {
    return this.#sum;
  }

  /** The `_bucket` (with `le`, `+Inf` last), `_sum` and `_count` samples, with `labels`. */
  samples(labels: Record<string, string> = {}): Sample[] {
    return [
      ...this.#bounds.map((b, i) => ({
        suffix: "_bucket",
        labels: { ...labels, le: String(b) },
        value: this.#counts[i]!,
      })),
      { suffix: "_bucket", labels: { ...labels, le: "+Inf" }, value: this.#count },
      { suffix: "_sum", labels, value: this.#sum },
      { suffix: "_count", labels, value: this.#count },
    ];
  }
}
