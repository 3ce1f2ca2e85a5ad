/**
 * The application protocol between the scheduler and MrRedisExecutor. It rides
 * on Mesos: task descriptions in `TaskInfo.data`, everything else in Mesos
 * MESSAGE calls (`data` bytes), always UTF-8 JSON.
 *
 * @module
 */

/** What the scheduler puts in `TaskInfo.data` (JSON) for one redis process. */
export interface RedisTaskSpec {
  /** Instance name. */
  instance: string;
  /** Process id within the instance. */
  procId: string;
  /** Role at launch. */
  role: "master" | "slave";
  /** Port taken from the offer. */
  port: number;
  /** maxmemory in MB. */
  capacityMB: number;
  /** For a slave: the master to replicate from. */
  master?: { host: string; port: number };
  /**
   * Data directory name inside the executor sandbox (kept across restarts in
   * place, so a single instance keeps its data).
   */
  dataDir: string;
}

/** Stats of one redis process, from INFO. */
export interface RedisStats {
  taskId: string;
  role: "master" | "slave";
  /** `used_memory` bytes. */
  memoryUsed: number;
  /** `maxmemory` bytes. */
  maxMemory: number;
  /** `uptime_in_seconds`. */
  uptime: number;
  /** `connected_clients`. */
  clients: number;
  /** `master_repl_offset` (master) or `slave_repl_offset` (slave). */
  replOffset: number;
  /** Slave: `master_link_status:up` and not `master_sync_in_progress`. */
  inSync: boolean;
  /** Slave: `master_last_io_seconds_ago`; 0 for a master. */
  lastIoSeconds: number;
  /** Master: number of connected slaves. */
  connectedSlaves: number;
}

/** Executor → scheduler. */
export type ExecutorToScheduler =
  | { kind: "stats"; at: number; stats: RedisStats[] }
  | { kind: "result"; commandId: string; ok: boolean; error?: string; replOffset?: number };

/** Scheduler → executor. Each carries a `commandId` echoed in the `result`. */
export type SchedulerToExecutor =
  /** `REPLICAOF NO ONE`; answer carries the offset at promotion. */
  | { kind: "promote"; commandId: string; taskId: string }
  /** `REPLICAOF host port`. */
  | { kind: "replicaof"; commandId: string; taskId: string; host: string; port: number }
  /** Fence: stop accepting writes and shut the process down (never a second master). */
  | { kind: "fence"; commandId: string; taskId: string };

/** Encodes a message for Mesos `data` bytes. */
export function encodeMessage(msg: ExecutorToScheduler | SchedulerToExecutor): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(msg));
}

/**
 * Decodes Mesos `data` bytes; throws a `TypeError` naming the problem when the
 * bytes are not a JSON object with a string `kind`.
 */
export function decodeMessage<T extends { kind: string }>(data: Uint8Array): T {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch (cause) {
    throw new TypeError("Cannot decode executor message: not JSON", { cause });
  }
  if (
    typeof value !== "object" || value === null ||
    typeof (value as { kind?: unknown }).kind !== "string"
  ) {
    throw new TypeError("Cannot decode executor message: no string \"kind\"");
  }
  return value as T;
}
