/**
 * Running and watching redis-server processes: the child process
 * ({@linkcode RedisProcess}), a bounded client ({@linkcode RedisClient}), INFO
 * parsing and stats ({@linkcode parseInfo}, {@linkcode statsFromInfo}) and the
 * health monitor ({@linkcode RedisMonitor}).
 *
 * @module
 */

export * from "./client.ts";
export * from "./info.ts";
export * from "./monitor.ts";
export * from "./server.ts";
