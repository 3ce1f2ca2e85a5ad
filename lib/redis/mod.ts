/**
 * Running and watching redis-server processes: the child process
 * ({@linkcode RedisProcess}), a bounded client ({@linkcode RedisClient}), INFO
 * parsing and stats ({@linkcode parseInfo}, {@linkcode statsFromInfo}), the
 * health monitor ({@linkcode RedisMonitor}) with its rules
 * ({@linkcode judgeUnanswered}), and a direct check from afar
 * ({@linkcode probeRedis}).
 *
 * @module
 */

export * from "./auth.ts";
export * from "./client.ts";
export * from "./info.ts";
export * from "./liveness.ts";
export * from "./monitor.ts";
export * from "./probe.ts";
export * from "./server.ts";
