/**
 * mr-redis: Redis as a service on Apache Mesos.
 *
 * The library's public face. The programs are `cmd/sched.ts` (the scheduler
 * and REST API), `cmd/executor.ts` (MrRedisExecutor), `cmd/mrr.ts` (the CLI)
 * and `cmd/mesos_local.ts` (the local Mesos-compatible cluster).
 *
 * @module
 */
export * from "./lib/config.ts";
export * from "./lib/model.ts";
export * from "./lib/store/mod.ts";
export * as messages from "./lib/executor_messages.ts";
export * as redis from "./lib/redis/mod.ts";
export * as executor from "./lib/executor/mod.ts";
export * as api from "./lib/api/mod.ts";
export * as mesos from "./lib/mesos/codec.ts";
export { SchedulerClient } from "./lib/mesos/scheduler_client.ts";
export { ExecutorClient } from "./lib/mesos/executor_client.ts";
export { LocalCluster, startLocalCluster } from "./lib/mesos/local/mod.ts";
export * as release from "./lib/release/mod.ts";
export * as proxy from "./lib/proxy/mod.ts";
export * as metrics from "./lib/metrics/mod.ts";
