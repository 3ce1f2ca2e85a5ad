/**
 * Driving MrRedisExecutor in a test without Mesos: a driver that records
 * what the executor sends, and the LAUNCH and MESSAGE events the agent would
 * deliver.
 */
import {
  decodeMessage,
  encodeMessage,
  type ExecutorToScheduler,
  type RedisStats,
  type SchedulerToExecutor,
} from "../lib/executor_messages.ts";
import type { ExecutorDriver, TaskStatusUpdate } from "../lib/executor/mod.ts";
import type { ExecutorEvent } from "../lib/mesos/types.ts";

/** Records what the executor sends, the way the Mesos executor client would carry it. */
export class RecordingDriver implements ExecutorDriver {
  updates: TaskStatusUpdate[] = [];
  messages: ExecutorToScheduler[] = [];
  update(status: TaskStatusUpdate): void {
    this.updates.push(status);
  }
  message(data: Uint8Array): void {
    this.messages.push(decodeMessage<ExecutorToScheduler>(data));
  }
  /** The states reported for `taskId`, in order. */
  states(taskId: string): string[] {
    return this.updates.filter((u) => u.task_id.value === taskId).map((u) => u.state);
  }
  /** The last update of `taskId` in `state`. */
  last(taskId: string, state: string): TaskStatusUpdate | undefined {
    return this.updates.findLast((u) => u.task_id.value === taskId && u.state === state);
  }
  /** The result message of command `commandId`. */
  result(commandId: string) {
    return this.messages.find((m) => m.kind === "result" && m.commandId === commandId);
  }
  /** The newest stats of `taskId`. */
  latestStats(taskId: string): RedisStats | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const m = this.messages[i]!;
      if (m.kind !== "stats") continue;
      const s = m.stats.find((x) => x.taskId === taskId);
      if (s) return s;
    }
    return undefined;
  }
}

/** The LAUNCH event of task `taskId` with `data` (its spec). */
export function launch(taskId: string, data: Uint8Array | undefined): ExecutorEvent {
  return {
    type: "LAUNCH",
    launch: {
      task: {
        name: taskId,
        task_id: { value: taskId },
        agent_id: { value: "agent-1" },
        ...(data ? { data } : {}),
      },
    },
  };
}

/** A scheduler command as the MESSAGE event that carries it. */
export function command(msg: SchedulerToExecutor): ExecutorEvent {
  return { type: "MESSAGE", message: { data: encodeMessage(msg) } };
}

/** The SUBSCRIBED event an agent sends an executor once it has subscribed (agent 127.0.0.1). */
export function subscribed(): ExecutorEvent {
  return {
    type: "SUBSCRIBED",
    subscribed: {
      executor_info: { executor_id: { value: "e1" } },
      framework_info: { user: "u", name: "mr-redis" },
      agent_info: { hostname: "127.0.0.1" },
    },
  } as ExecutorEvent;
}
