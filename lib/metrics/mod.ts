/**
 * Metrics in the Prometheus text format: the exposition writer, a histogram,
 * and the scheduler's process-wide counters. What `/metrics` shows is built in
 * `lib/api/metrics.ts`.
 *
 * @module
 */
export * from "./exposition.ts";
export * from "./histogram.ts";
export * from "./counters.ts";
export * from "./instrument.ts";
