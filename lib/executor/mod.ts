/**
 * The executor logic (no Mesos I/O): {@linkcode RedisExecutor} runs the redis
 * tasks of one framework on one agent.
 *
 * @module
 */

export * from "./redis_executor.ts";
export * from "./log_tail.ts";
