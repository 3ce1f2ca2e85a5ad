/**
 * Releases: their layout on disk, how a program finds the release it runs
 * from, and what the scheduler ships to agents (see `README.md`).
 *
 * @module
 */
export * from "./layout.ts";
export * from "./shipping.ts";
export * from "./hosts.ts";
