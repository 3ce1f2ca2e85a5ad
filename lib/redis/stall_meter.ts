/**
 * Measures how long this process's event loop was stalled: a timer that
 * should fire every `tickMs` notes each time it fired late, and by how much.
 * A busy machine (or a burst of synchronous work such as spawning processes)
 * stalls the loop, and while it is stalled no answer can be read: a check
 * that "timed out" across a stall says nothing about the server it checked.
 *
 * The meter runs only while someone holds it ({@linkcode StallMeter.acquire})
 * and its timer never keeps the process alive.
 *
 * @module
 */

/** One stall: when it ended and how long past its due time the timer fired (ms). */
export interface Stall {
  at: number;
  ms: number;
}

/**
 * Sum of the stalls that ended within `[from, to]` (ms since the epoch); a
 * stall that began before `from` counts from `from` only. Pure.
 */
export function stalledWithin(stalls: readonly Stall[], from: number, to: number): number {
  let total = 0;
  for (const s of stalls) {
    if (s.at < from || s.at > to) continue;
    // A stall that began before `from` counts only from `from`.
    total += Math.min(s.ms, s.at - from);
  }
  return total;
}

/** A process-wide meter of event-loop stalls. */
export class StallMeter {
  readonly #tickMs: number;
  readonly #minStallMs: number;
  readonly #keepMs: number;
  readonly #stalls: Stall[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #last = 0;
  #holders = 0;

  /** A meter ticking every `tickMs`, noting lateness above `minStallMs`, kept `keepMs`. */
  constructor(tickMs = 100, minStallMs = 25, keepMs = 120_000) {
    this.#tickMs = tickMs;
    this.#minStallMs = minStallMs;
    this.#keepMs = keepMs;
  }

  /** Starts measuring (if not yet); call the returned function when done. */
  acquire(): () => void {
    if (this.#holders++ === 0) {
      this.#last = Date.now();
      this.#timer = setInterval(() => this.#tick(), this.#tickMs);
      Deno.unrefTimer(this.#timer);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#holders === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  #tick(): void {
    const now = Date.now();
    const late = now - this.#last - this.#tickMs;
    this.#last = now;
    if (late >= this.#minStallMs) this.#stalls.push({ at: now, ms: late });
    while (this.#stalls.length > 0 && this.#stalls[0]!.at < now - this.#keepMs) {
      this.#stalls.shift();
    }
  }

  /**
   * How long the loop was stalled between `from` and now (ms), as far as
   * measured. A stall still going on shows once it ends, so callers ask after
   * their own timer fired — itself proof the stall is over.
   */
  stalledSince(from: number): number {
    const now = Date.now();
    const pending = this.#timer !== undefined ? Math.max(0, now - this.#last - this.#tickMs) : 0;
    return stalledWithin(this.#stalls, from, now) + pending;
  }
}

/** The meter shared by everything in this process. */
export const stallMeter: StallMeter = new StallMeter();
