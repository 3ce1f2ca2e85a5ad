/**
 * Events for driving the scheduler core in a test without Mesos: offers,
 * status updates and executor messages as the master would deliver them.
 */
import { encodeMessage, type RedisStats } from "../lib/executor_messages.ts";
import type { Offer, SchedulerEvent, TaskState } from "../lib/mesos/types.ts";

/** Offer `o{n}` of `agent`: 4 cpus, 4 GiB, ports 7000+10n…7009+10n; with `executor`, ours runs there. */
export function offer(n: number, agent: string, executor = false): Offer {
  return {
    id: { value: `o${n}` },
    framework_id: { value: "fw" },
    agent_id: { value: agent },
    hostname: "127.0.0.1",
    resources: [
      { name: "cpus", type: "SCALAR", scalar: { value: 4 } },
      { name: "mem", type: "SCALAR", scalar: { value: 4096 } },
      {
        name: "ports",
        type: "RANGES",
        ranges: { range: [{ begin: 7000 + n * 10, end: 7009 + n * 10 }] },
      },
    ],
    ...(executor ? { executor_ids: [{ value: "mrr-executor" }] } : {}),
  };
}

/**
 * An offer of `agent` (id `o-{agent}` unless told) for the pure planners'
 * tests: 4 cpus, 4 GiB and ports 31000–31009 unless told; with `executor`,
 * ours runs there.
 */
export function agentOffer(
  agent: string,
  { cpus = 4, mem = 4096, ports = [[31000, 31009]], executor = false, id = `o-${agent}` } = {},
): Offer {
  return {
    id: { value: id },
    framework_id: { value: "fw" },
    agent_id: { value: agent },
    hostname: "127.0.0.1",
    resources: [
      { name: "cpus", type: "SCALAR", scalar: { value: cpus } },
      { name: "mem", type: "SCALAR", scalar: { value: mem } },
      {
        name: "ports",
        type: "RANGES",
        ranges: { range: ports.map(([begin, end]) => ({ begin: begin!, end: end! })) },
      },
    ],
    ...(executor ? { executor_ids: [{ value: "mrr-executor" }] } : {}),
  };
}

/**
 * An executor's status update of `taskId` (with a uuid to acknowledge unless
 * `uuid` is false), with `data` (JSON-encoded) when given.
 */
export function update(
  taskId: string,
  state: TaskState,
  agent = "A1",
  uuid = true,
  data?: unknown,
): SchedulerEvent {
  return {
    type: "UPDATE",
    update: {
      status: {
        task_id: { value: taskId },
        state,
        agent_id: { value: agent },
        source: "SOURCE_EXECUTOR",
        message: `test ${state}`,
        ...(uuid ? { uuid: new Uint8Array(16).fill(7) } : {}),
        ...(data !== undefined ? { data: new TextEncoder().encode(JSON.stringify(data)) } : {}),
      },
    },
  };
}

/** A message of our executor on `agent`. */
export function executorMessage(
  data: Parameters<typeof encodeMessage>[0],
  agent = "A1",
): SchedulerEvent {
  return {
    type: "MESSAGE",
    message: {
      agent_id: { value: agent },
      executor_id: { value: "mrr-executor" },
      data: encodeMessage(data),
    },
  };
}

/** A stats message read at `at`; each entry defaults to a healthy master with nothing stored. */
export function stats(list: Partial<RedisStats>[], agent = "A1", at = 0): SchedulerEvent {
  return executorMessage({
    kind: "stats",
    at,
    stats: list.map((s) => statsEntry(s)),
  }, agent);
}

/** One task's stats; defaults to a healthy master with nothing stored. */
export function statsEntry(s: Partial<RedisStats>): RedisStats {
  return {
    taskId: "",
    role: "master",
    memoryUsed: 1000,
    maxMemory: 1,
    uptime: 3,
    clients: 1,
    replOffset: 0,
    inSync: true,
    lastIoSeconds: 0,
    connectedSlaves: 0,
    ...s,
  };
}
