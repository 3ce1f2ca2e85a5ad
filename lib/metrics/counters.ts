/**
 * The scheduler's own counters, kept for the life of the `sched` process
 * (across leadership terms): offers received and declined, the store's
 * batch latency, API requests by route and code. The core and the HTTP
 * front add to them; `/metrics` reads them.
 *
 * @module
 */
import { Histogram } from "./histogram.ts";

/** See the module doc. */
export class SchedulerCounters {
  /** Offers received from Mesos. */
  offersReceived = 0;
  /** Offers declined whole (every offer id of a DECLINE call). */
  offersDeclined = 0;
  /** Store operation (`batch`, `get`, ...) → seconds per call. */
  readonly #storeSeconds = new Map<string, Histogram>();
  /** Store operation → calls that threw (store unreachable). */
  readonly #storeErrors = new Map<string, number>();
  /** `route\ncode` → requests answered. */
  readonly #requests = new Map<string, number>();

  /** Counts one store call of `op` that took `seconds` (and failed when `failed`). */
  countStore(op: string, seconds: number, failed: boolean): void {
    let h = this.#storeSeconds.get(op);
    if (!h) this.#storeSeconds.set(op, h = new Histogram());
    h.observe(seconds);
    if (failed) this.#storeErrors.set(op, (this.#storeErrors.get(op) ?? 0) + 1);
  }

  /** Every store operation seen, sorted, with its latency histogram and failures. */
  store(): { op: string; seconds: Histogram; errors: number }[] {
    return [...this.#storeSeconds.keys()].sort().map((op) => ({
      op,
      seconds: this.#storeSeconds.get(op)!,
      errors: this.#storeErrors.get(op) ?? 0,
    }));
  }

  /** Counts one answered API request. */
  countRequest(route: string, code: number): void {
    const key = `${route}\n${code}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
  }

  /** Every (route, code) with its count, sorted. */
  requests(): { route: string; code: string; count: number }[] {
    return [...this.#requests].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(
      ([key, count]) => {
        const [route, code] = key.split("\n") as [string, string];
        return { route, code, count };
      },
    );
  }
}
