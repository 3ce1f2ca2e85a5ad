/**
 * Building the Mesos descriptions of our executor and redis tasks, and the
 * task id scheme `{instance}.{procId}.{launchCounter}`.
 *
 * @module
 */
import type { ExecutorInfo, Resource, TaskInfo } from "../mesos/types.ts";
import { encodeTaskSpec, type RedisTaskSpec } from "../executor_messages.ts";
import type { PlacedTask, TaskResources } from "./match.ts";

/** The executor id: one MrRedisExecutor per agent per framework hosts every task there. */
export const EXECUTOR_ID = "mrr-executor";

/** Options of {@linkcode buildExecutorInfo}. */
export interface ExecutorInfoOptions {
  /** Base URL of the artifact server, e.g. `http://127.0.0.1:5454`. */
  artifactUrl: string;
  /** Whether the artifact server ships a redis-server binary too. */
  shipsRedisServer: boolean;
  resources: TaskResources;
  /** Extra environment variables for the executor (e.g. `MRR_REDIS_BIND`). */
  environment?: Record<string, string>;
}

function scalar(name: string, value: number): Resource {
  return { name, type: "SCALAR", scalar: { value } };
}

/**
 * The ExecutorInfo put in every TaskInfo (always equal, as Mesos requires for
 * a running executor): CUSTOM, fetches `MrRedisExecutor` (and `redis-server`)
 * from the artifact server and runs it with the shell.
 */
export function buildExecutorInfo(options: ExecutorInfoOptions): ExecutorInfo {
  const base = options.artifactUrl.replace(/\/+$/, "");
  const uris = [{ value: `${base}/MrRedisExecutor`, executable: true, extract: false }];
  const variables = Object.entries(options.environment ?? {}).map(([name, value]) => ({
    name,
    value,
  }));
  if (options.shipsRedisServer) {
    uris.push({ value: `${base}/redis-server`, executable: true, extract: false });
    variables.push({ name: "MRR_REDIS_SERVER", value: "./redis-server" });
  }
  return {
    type: "CUSTOM",
    executor_id: { value: EXECUTOR_ID },
    name: "MrRedisExecutor",
    command: {
      uris,
      shell: true,
      value: "./MrRedisExecutor",
      ...(variables.length ? { environment: { variables } } : {}),
    },
    resources: [
      scalar("cpus", options.resources.executorCpus),
      scalar("mem", options.resources.executorMemMB),
    ],
  };
}

/** The task id of launch number `launch` of process `procId` of `instance`. */
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

/** Builds the TaskInfo of one placed redis task. */
export function buildTaskInfo(
  task: PlacedTask,
  taskId: string,
  agentId: string,
  executor: ExecutorInfo,
  spec: RedisTaskSpec,
): TaskInfo {
  return {
    name: `redis ${task.instance} ${task.procId}`,
    task_id: { value: taskId },
    agent_id: { value: agentId },
    executor,
    resources: [
      scalar("cpus", task.cpus),
      scalar("mem", task.memMB),
      { name: "ports", type: "RANGES", ranges: { range: [{ begin: task.port, end: task.port }] } },
    ],
    data: encodeTaskSpec(spec),
  };
}
