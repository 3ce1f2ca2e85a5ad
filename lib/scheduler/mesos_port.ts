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
  /** FrameworkInfo.principal (the Mesos credential's principal). */
  principal?: string;
  /** The role to subscribe with; other than `*` it is `roles: [role]` with MULTI_ROLE. */
  role?: string;
}

/**
 * FrameworkInfo: checkpointing, the configured failover timeout,
 * PARTITION_AWARE; the principal; a role other than `*` as `roles` with the
 * MULTI_ROLE capability (so offers of resources reserved for it come too).
 */
export function buildFrameworkInfo(options: FrameworkInfoOptions): FrameworkInfo {
  const multiRole = options.role !== undefined && options.role !== "*";
  return {
    user: options.user,
    name: options.name,
    failover_timeout: options.failoverTimeoutSeconds,
    checkpoint: true,
    capabilities: [
      { type: "PARTITION_AWARE" },
      { type: "TASK_KILLING_STATE" },
      ...(multiRole ? [{ type: "MULTI_ROLE" as const }] : []),
    ],
    ...(multiRole ? { roles: [options.role!] } : {}),
    ...(options.principal ? { principal: options.principal } : {}),
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
