/**
 * Building the Mesos descriptions of our executor and redis tasks, and the
 * task id scheme `{instance}.{procId}.{launchCounter}`.
 *
 * @module
 */
import type { CommandURI, ExecutorInfo, Resource, TaskInfo } from "../mesos/types.ts";
import { encodeTaskSpec, type RedisTaskSpec } from "../executor_messages.ts";
import { encodeProxySpec, type ProxyTaskSpec } from "../proxy/task_spec.ts";
import type { PlacedTask, TaskResources } from "./match.ts";

/** The executor id: one MrRedisExecutor per agent per framework hosts every task there. */
export const EXECUTOR_ID = "mrr-executor";

/** Options of {@linkcode buildExecutorInfo}. */
export interface ExecutorInfoOptions {
  /** What the agent fetches into the sandbox (see `lib/release/shipping.ts`). */
  uris: CommandURI[];
  /** The shell command that starts the executor in the sandbox. */
  command: string;
  resources: TaskResources;
  /** Environment variables of the executor (e.g. `MRR_REDIS_BIND`, `MRR_REDIS_SERVER`). */
  environment?: Record<string, string>;
}

function scalar(name: string, value: number): Resource {
  return { name, type: "SCALAR", scalar: { value } };
}

/**
 * The ExecutorInfo put in every TaskInfo (always equal, as Mesos requires for
 * a running executor): CUSTOM, fetches what the shipment lists and runs its
 * command with the shell.
 */
export function buildExecutorInfo(options: ExecutorInfoOptions): ExecutorInfo {
  const variables = Object.entries(options.environment ?? {}).map(([name, value]) => ({
    name,
    value,
  }));
  return {
    type: "CUSTOM",
    executor_id: { value: EXECUTOR_ID },
    name: "MrRedisExecutor",
    command: {
      uris: options.uris.map((uri) => ({ ...uri })),
      shell: true,
      value: options.command,
      ...(variables.length ? { environment: { variables } } : {}),
    },
    resources: [
      scalar("cpus", options.resources.executorCpus),
      scalar("mem", options.resources.executorMemMB),
    ],
  };
}

/** The task id of launch number `launch` of process `procId` of `instance`. */
/**
 * The data dir name of a process (one path segment): stable across its
 * launches, distinct across instances that reuse a name.
 */
export function dataDirOf(instance: string, createdAt: number, procId: string): string {
  return `${instance}-${createdAt}-${procId}`;
}

/** Task id `{instance}.{procId}.{launch}`. */
export function taskIdOf(instance: string, procId: string, launch: number): string {
  return `${instance}.${procId}.${launch}`;
}

/** Splits a task id made by {@linkcode taskIdOf}; `undefined` for any other id. */
export function parseTaskId(
  taskId: string,
): { instance: string; procId: string; launch: number } | undefined {
  const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.(\d+)$/.exec(taskId);
  if (!m) return undefined;
  return { instance: m[1]!, procId: m[2]!, launch: Number(m[3]) };
}

/** A placed task's resources when none were carved from the offer: plain unreserved ones. */
function plainResources(task: PlacedTask): Resource[] {
  const ports = [task.port, ...(task.busPort !== undefined ? [task.busPort] : [])]
    .sort((x, y) => x - y);
  return [
    scalar("cpus", task.cpus),
    scalar("mem", task.memMB),
    { name: "ports", type: "RANGES", ranges: { range: ports.map((p) => ({ begin: p, end: p })) } },
  ];
}

/**
 * Builds the TaskInfo of one placed redis task; `resources` are its resources
 * as carved from the offer (`offer_resources.ts`), else plain unreserved ones.
 */
export function buildTaskInfo(
  task: PlacedTask,
  taskId: string,
  agentId: string,
  executor: ExecutorInfo,
  spec: RedisTaskSpec,
  resources?: Resource[],
): TaskInfo {
  return {
    name: `redis ${task.instance} ${task.procId}`,
    task_id: { value: taskId },
    agent_id: { value: agentId },
    executor,
    resources: resources ?? plainResources(task),
    data: encodeTaskSpec(spec),
  };
}

/**
 * Builds the TaskInfo of one placed proxy task, with a DiscoveryInfo naming
 * it `{instance}-proxy` and its port `redis` (tcp), so Mesos-DNS-style tools
 * find every proxy of an instance under one name. `resources` as for
 * {@linkcode buildTaskInfo}.
 */
export function buildProxyTaskInfo(
  task: PlacedTask,
  taskId: string,
  agentId: string,
  executor: ExecutorInfo,
  spec: ProxyTaskSpec,
  resources?: Resource[],
): TaskInfo {
  return {
    name: `proxy ${task.instance} ${task.procId}`,
    task_id: { value: taskId },
    agent_id: { value: agentId },
    executor,
    resources: resources ?? plainResources(task),
    data: encodeProxySpec(spec),
    discovery: {
      visibility: "CLUSTER",
      name: `${task.instance}-proxy`,
      ports: { ports: [{ number: task.port, name: "redis", protocol: "tcp" }] },
      labels: {
        labels: [{ key: "instance", value: task.instance }, { key: "proxy", value: task.procId }],
      },
    },
  };
}
