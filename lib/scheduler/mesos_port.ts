/**
 * Adapts the Mesos `SchedulerClient` to the {@linkcode MesosPort} the core
 * calls, and builds the FrameworkInfo.
 *
 * @module
 */
import type { FrameworkInfo, TaskInfo } from "../mesos/types.ts";
import type { SchedulerClient } from "../mesos/scheduler_client.ts";
import type { MesosPort } from "./core.ts";

/** Options of {@linkcode buildFrameworkInfo}. */
export interface FrameworkInfoOptions {
  user: string;
  name: string;
  failoverTimeoutSeconds: number;
  frameworkId?: string;
  webuiUrl?: string;
}

/** FrameworkInfo: checkpointing, the configured failover timeout, PARTITION_AWARE. */
export function buildFrameworkInfo(options: FrameworkInfoOptions): FrameworkInfo {
  return {
    user: options.user,
    name: options.name,
    failover_timeout: options.failoverTimeoutSeconds,
    checkpoint: true,
    capabilities: [{ type: "PARTITION_AWARE" }, { type: "TASK_KILLING_STATE" }],
    ...(options.frameworkId ? { id: { value: options.frameworkId } } : {}),
    ...(options.webuiUrl ? { webui_url: options.webuiUrl } : {}),
  };
}

/** Wraps a started-or-starting client. */
export function mesosPort(client: SchedulerClient): MesosPort {
  return {
    launch: (offerId: string, tasks: TaskInfo[], refuseSeconds: number) =>
      client.launch([offerId], tasks, { refuse_seconds: refuseSeconds }),
    decline: (offerIds: string[], refuseSeconds: number) =>
      client.decline(offerIds, { refuse_seconds: refuseSeconds }),
    revive: () => client.revive(),
    suppress: () => client.suppress(),
    kill: (taskId: string, agentId?: string) => client.kill(taskId, agentId),
    acknowledge: (agentId: string, taskId: string, uuid: Uint8Array) =>
      client.acknowledge(agentId, taskId, uuid),
    reconcile: (tasks: { taskId: string; agentId?: string }[]) => client.reconcile(tasks),
    message: (agentId: string, executorId: string, data: Uint8Array) =>
      client.message(agentId, executorId, data),
  };
}
