/**
 * Watches one redis-server: `INFO` at a steady pace, a hang when several
 * checks in a row get no answer in time, and the process exit at once.
 *
 * After a failed check the next one starts after `retryIntervalMs` (not the
 * full interval), so a hang is declared within about
 * `intervalMs + maxFailures × timeoutMs + (maxFailures - 1) × retryIntervalMs`
 * of the last good answer (1.5 s + 0.5 s … with the executor's 500 ms × 3).
 *
 * @module
 */

import type { RedisClient } from "./client.ts";
import type { RedisInfo } from "./info.ts";
import type { RedisExit } from "./server.ts";

/** What a {@linkcode RedisMonitor} reports. */
export type RedisMonitorEvent =
  /** A fresh INFO answer. */
  | { kind: "info"; info: RedisInfo }
  /** `maxFailures` checks in a row failed; the monitor has stopped. */
  | { kind: "hung"; failures: number; error: string }
  /** The process ended; the monitor has stopped. */
  | { kind: "exited"; exit: RedisExit };

/** The process a {@linkcode RedisMonitor} watches (a `RedisProcess` fits). */
export interface MonitoredProcess {
  /** Client used for the checks. */
  readonly client: Pick<RedisClient, "info">;
  /** Resolves when the process ends. */
  readonly exited: Promise<RedisExit>;
}

/** Options of {@linkcode RedisMonitor}. */
export interface RedisMonitorOptions {
  /** Time between the starts of two checks, in ms. Default 1000. */
  intervalMs?: number;
  /** Deadline of one check, in ms. Default 1500. */
  timeoutMs?: number;
  /** Failed checks in a row that make a hang. Default 3. */
  maxFailures?: number;
  /** Pause after a failed check before the next one, in ms. Default 100. */
  retryIntervalMs?: number;
  /** Receives every event; a throw or rejection is ignored. */
  onEvent: (event: RedisMonitorEvent) => void | Promise<void>;
}

/**
 * Watches one process until it exits, hangs or {@linkcode RedisMonitor.stop}
 * is called. Any answer that fails (timeout, refused connection, error reply)
 * counts as a failed check; a good answer resets the count.
 */
export class RedisMonitor {
  /** Time between the starts of two checks, in ms; may be changed at any time. */
  intervalMs: number;
  readonly #timeoutMs: number;
  readonly #maxFailures: number;
  readonly #retryIntervalMs: number;
  readonly #process: MonitoredProcess;
  readonly #onEvent: (event: RedisMonitorEvent) => void | Promise<void>;
  #stopped = false;
  #started = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #failures = 0;

  /** Makes a monitor for `process`; call {@linkcode RedisMonitor.start}. */
  constructor(process: MonitoredProcess, options: RedisMonitorOptions) {
    const intervalMs = options.intervalMs ?? 1000;
    const timeoutMs = options.timeoutMs ?? 1500;
    const maxFailures = options.maxFailures ?? 3;
    const retryIntervalMs = options.retryIntervalMs ?? 100;
    if (!(retryIntervalMs >= 0)) {
      throw new RangeError(`Cannot create monitor: invalid retryIntervalMs ${retryIntervalMs}`);
    }
    if (!(intervalMs > 0)) {
      throw new RangeError(`Cannot create monitor: invalid intervalMs ${intervalMs}`);
    }
    if (!(timeoutMs > 0)) {
      throw new RangeError(`Cannot create monitor: invalid timeoutMs ${timeoutMs}`);
    }
    if (!Number.isInteger(maxFailures) || maxFailures < 1) {
      throw new RangeError(`Cannot create monitor: invalid maxFailures ${maxFailures}`);
    }
    this.#process = process;
    this.intervalMs = intervalMs;
    this.#timeoutMs = timeoutMs;
    this.#maxFailures = maxFailures;
    this.#retryIntervalMs = retryIntervalMs;
    this.#onEvent = options.onEvent;
  }

  /** Starts watching; the first check runs at once. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#process.exited.then((exit) => {
      if (this.#stopped) return;
      this.#finish();
      this.#emit({ kind: "exited", exit });
    });
    this.#loop = this.#run();
  }

  /** Runs the next check now instead of waiting for the interval. */
  checkNow(): void {
    this.#wake?.();
  }

  /** Stops watching; resolves when the last check has finished. No more events after it. */
  async stop(): Promise<void> {
    this.#finish();
    await this.#loop;
  }

  #finish(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  async #emit(event: RedisMonitorEvent): Promise<void> {
    try {
      await this.#onEvent(event);
    } catch {
      // The listener owns its errors.
    }
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const began = Date.now();
      let wait = this.intervalMs;
      try {
        const info = await this.#process.client.info(this.#timeoutMs);
        if (this.#stopped) return;
        this.#failures = 0;
        await this.#emit({ kind: "info", info });
      } catch (error) {
        if (this.#stopped) return;
        this.#failures++;
        wait = Math.min(this.intervalMs, this.#retryIntervalMs);
        if (this.#failures >= this.#maxFailures) {
          // Give a concurrent exit the chance to be the reported cause.
          await new Promise((r) => setTimeout(r, 20));
          if (this.#stopped) return;
          this.#finish();
          await this.#emit({
            kind: "hung",
            failures: this.#failures,
            error: (error as Error).message ?? String(error),
          });
          return;
        }
      }
      const spent = this.#failures > 0 ? 0 : Date.now() - began;
      await this.#sleep(Math.max(0, wait - spent));
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = () => {
        clearTimeout(this.#timer);
        this.#wake = undefined;
        resolve();
      };
      this.#timer = setTimeout(() => this.#wake?.(), ms);
    });
  }
}
