/**
 * The application protocol between the scheduler and MrRedisExecutor. It rides
 * on Mesos: task descriptions in `TaskInfo.data`, everything else in Mesos
 * MESSAGE calls (`data` bytes), always UTF-8 JSON.
 *
 * @module
 */
import type { ClusterNodeStats, ClusterOp } from "./redis/cluster.ts";

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
  /**
   * The instance's failover epoch at launch (bumped at each promotion). The
   * executor refuses commands of an older epoch for this instance.
   */
  epoch?: number;
  /**
   * `min-replicas-to-write` of the process whenever it is a master (set at
   * launch, dormant while it replicates, active from a promotion): an
   * isolated master then refuses writes with `NOREPLICAS`. The scheduler
   * sets 1 for every process of an MS instance and 0 for an S instance.
   * Default when absent: 1 for a slave (its instance has slaves), 0 for a
   * master (it may be a single instance).
   */
  minReplicasToWrite?: number;
  /**
   * `min-replicas-max-lag` in whole seconds: how long a replica may go
   * without acknowledging before it stops counting. Default
   * {@linkcode DEFAULT_MIN_REPLICAS_MAX_LAG_SECONDS}.
   */
  minReplicasMaxLagSeconds?: number;
  /**
   * The instance's passwords: the clients' (`default` user) and the internal
   * user's (executor and replication). Absent for instances made before
   * passwords: the process then runs without one. Never logged.
   */
  auth?: { password: string; adminPassword: string };
  /**
   * A Redis Cluster node (`RC` instances): its cluster bus port (a second
   * port from the offer) and whether it starts as a new node (`fresh`: the
   * data dir is emptied first, so it gets a new node id; replicas always do,
   * their data comes from their master). A replica has no `master`: the
   * scheduler attaches it with `CLUSTER REPLICATE`.
   */
  cluster?: { busPort: number; fresh?: boolean };
}

/**
 * Default `min-replicas-max-lag` (seconds). Below the scheduler's fastest
 * detection of a silent master (10 s of stats silence): a master cut off from
 * its replicas refuses writes before a slave can be promoted in its place.
 */
export const DEFAULT_MIN_REPLICAS_MAX_LAG_SECONDS = 5;

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
  /** `instantaneous_ops_per_sec` (absent from executors older than this field). */
  opsPerSec?: number;
  /** `master_repl_offset` (master) or `slave_repl_offset` (slave). */
  replOffset: number;
  /** Slave: `master_link_status:up` and not `master_sync_in_progress`. */
  inSync: boolean;
  /** Slave: `master_last_io_seconds_ago`; 0 for a master. */
  lastIoSeconds: number;
  /** Master: number of connected slaves. */
  connectedSlaves: number;
  /**
   * Master: the slaves it counts towards `min-replicas-to-write` (online and
   * acknowledging in time); 0 for a slave. Absent from executors older than
   * this field.
   */
  goodSlaves?: number;
  /**
   * Master: its online slaves known to take its replication stream (see
   * `StreamingSlaves` in lib/redis/info.ts): a slave fresh from a full sync
   * can be online, and counted in `goodSlaves`, for up to a second before
   * its master streams to it. Absent from executors older than this field.
   */
  streamingSlaves?: number;
  /** The newest epoch of the instance this task has been told (launch or command). */
  epoch?: number;
  /**
   * Present while the executor's checks get no answer from a process that
   * still lives (not stopped, not exited): ms since its last answer. The
   * other fields are from that last answer.
   */
  unansweredMs?: number;
  /** With `unansweredMs`: the process state the executor read (`running`, `sleeping`, ...). */
  procState?: string;
  /** A cluster node: its view of the cluster (`CLUSTER NODES` / `CLUSTER INFO`). */
  cluster?: ClusterNodeStats;
}

/** Executor → scheduler. */
export type ExecutorToScheduler =
  | {
    kind: "stats";
    at: number;
    stats: RedisStats[];
    /**
     * Task ids of the proxy tasks the executor hosts: a heartbeat for them,
     * so the scheduler can tell a proxy whose executor went silent.
     */
    proxies?: string[];
  }
  | {
    kind: "result";
    commandId: string;
    ok: boolean;
    error?: string;
    replOffset?: number;
    /** `logs`: the last lines of the log, oldest first. */
    lines?: string[];
    /** `logs`: older lines exist than those sent (or a line was cut to the byte bound). */
    truncated?: boolean;
    /** `proxy-masters`: the proxy tasks that did not take their master, with why. */
    failed?: { taskId: string; error: string }[];
  };

/**
 * Scheduler → executor. Each carries a `commandId` echoed in the `result`, and
 * the instance's `epoch`: the executor refuses a command whose epoch is older
 * than one it has already seen for that instance (a stale scheduler decision).
 */
export type SchedulerToExecutor =
  /** `REPLICAOF NO ONE`; answer carries the offset at promotion. */
  | { kind: "promote"; commandId: string; taskId: string; epoch?: number }
  /** `REPLICAOF host port`. */
  | {
    kind: "replicaof";
    commandId: string;
    taskId: string;
    host: string;
    port: number;
    epoch?: number;
  }
  /**
   * Fence: stop accepting writes and shut the process down (never a second
   * master). With `drainMs` (a planned switch, the master alive), a master
   * first lets its replicas take the stream while writes still flow (up to
   * half of it, 1.5 s at most), then refuses new writes and waits up to
   * `drainMs` for a replica to acknowledge every write it took, so that the
   * most advanced replica holds them all; a KILL of the task meanwhile waits
   * for the same.
   */
  | { kind: "fence"; commandId: string; taskId: string; epoch?: number; drainMs?: number }
  /** Asks the current replication offset (fresh INFO); answer carries `replOffset`. */
  | { kind: "offset"; commandId: string; taskId: string; epoch?: number }
  /**
   * Removes the data dir of a deleted instance's process (`dataDir` as in its
   * task spec; `taskId` names its last task). Refused while a task uses it.
   */
  | { kind: "purge"; commandId: string; taskId: string; dataDir: string; epoch?: number }
  /** CLUSTER changes on a cluster node, run in order as the internal user (see `redis/cluster.ts`). */
  | { kind: "cluster"; commandId: string; taskId: string; ops: ClusterOp[]; epoch?: number }
  /**
   * The last `lines` lines of the redis-server log in the data dir `dataDir`
   * (as in the task spec; the task may have ended). Answered whatever the epoch.
   */
  | {
    kind: "logs";
    commandId: string;
    taskId: string;
    dataDir: string;
    lines: number;
    epoch?: number;
  }
  /**
   * Tells the proxy task `taskId` the instance's master (see
   * `lib/proxy/task_spec.ts`); the proxy ignores an epoch older than the one
   * it follows.
   */
  | {
    kind: "proxy-master";
    commandId: string;
    taskId: string;
    host: string;
    port: number;
    epoch: number;
  }
  /**
   * Several `proxy-master` commands for proxy tasks of one executor in one
   * message (the masters of a create's instances start at about the same
   * time). The `result` is `ok` when every proxy took its master, else it
   * lists in `failed` those that did not.
   */
  | {
    kind: "proxy-masters";
    commandId: string;
    proxies: { taskId: string; host: string; port: number; epoch: number }[];
    /** None: each entry of `proxies` names its task. */
    taskId?: never;
    epoch?: never;
  };

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
    throw new TypeError('Cannot decode executor message: no string "kind"');
  }
  return value as T;
}

/**
 * The stats a TASK_RUNNING update of `taskId` carries (see
 * {@linkcode RedisTaskStatusData}), or `undefined` when `data` holds none
 * that are whole and of that task: an older executor, or bytes that are not
 * ours. Never throws.
 */
export function statusStats(
  taskId: string,
  data: Uint8Array | undefined,
): { stats: RedisStats; at: number } | undefined {
  if (!data || data.length === 0) return undefined;
  let value: RedisTaskStatusData;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
  const s = value?.stats as Partial<RedisStats> | undefined;
  const at = value?.statsAt;
  const counts = [
    s?.memoryUsed,
    s?.maxMemory,
    s?.uptime,
    s?.clients,
    s?.replOffset,
    s?.lastIoSeconds,
    s?.connectedSlaves,
  ];
  if (
    typeof s !== "object" || s === null || s.taskId !== taskId ||
    (s.role !== "master" && s.role !== "slave") || typeof s.inSync !== "boolean" ||
    !counts.every((n) => typeof n === "number" && Number.isFinite(n)) ||
    typeof at !== "number" || !Number.isFinite(at)
  ) return undefined;
  return { stats: s as RedisStats, at };
}

/** Why a task ended, in the `cause` of {@linkcode RedisTaskStatusData}. */
export type RedisTaskEndCause =
  /** Stopped on a KILL event or at executor SHUTDOWN. */
  | "killed"
  /** Killed (SIGKILL) on a `fence` command. */
  | "fenced"
  /** redis-server ended on its own (see `exitCode` / `signal`). */
  | "exited"
  /** redis-server stopped answering; the executor killed it (SIGKILL). */
  | "hung"
  /** `TaskInfo.data` was not a valid {@linkcode RedisTaskSpec}. */
  | "invalid"
  /** redis-server could not be started (port taken, bad binary, ...). */
  | "start_failed"
  /** A slave did not finish its initial sync in time; the executor killed it. */
  | "sync_timeout";

/**
 * What the executor puts in `TaskStatus.data` (JSON) of its updates:
 * `{host, port}` on TASK_RUNNING, with the stats that made it RUNNING, plus
 * `cause` (and the exit) on terminal ones.
 */
export interface RedisTaskStatusData {
  /** Host clients and slaves use to reach the process. */
  host?: string;
  /** Its port. */
  port?: number;
  /**
   * TASK_RUNNING: the stats of the check that found the process ready (a
   * slave: its initial sync done), so the scheduler need not wait for the
   * next stats message to count it in sync.
   */
  stats?: RedisStats;
  /** With `stats`: when they were read (executor clock, as `at` of a stats message). */
  statsAt?: number;
  /** Terminal updates: why the task ended. */
  cause?: RedisTaskEndCause;
  /** When redis-server ended with an exit code. */
  exitCode?: number;
  /** When redis-server was killed by a signal (`SIGKILL`, ...). */
  signal?: string;
}

/** Encodes a {@linkcode RedisTaskSpec} for `TaskInfo.data`. */
export function encodeTaskSpec(spec: RedisTaskSpec): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(spec));
}

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) <= 65535;
}

function nonEmpty(value: unknown): value is string {
  return typeof value === "string" && value !== "";
}

/**
 * Decodes and checks `TaskInfo.data`; throws a `TypeError` naming the missing
 * or bad field and its value. `dataDir` must be one plain path segment
 * (letters, digits, `.`, `_`, `-`; not `.` or `..`).
 */
export function decodeTaskSpec(data: Uint8Array | undefined): RedisTaskSpec {
  if (!data || data.length === 0) throw new TypeError("TaskInfo.data is missing");
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch (cause) {
    throw new TypeError("TaskInfo.data is not JSON", { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError("TaskInfo.data is not a JSON object");
  }
  const v = value as Record<string, unknown>;
  const bad = (field: string, want: string) =>
    new TypeError(
      `TaskInfo.data field "${field}" must be ${want}, but got ${
        JSON.stringify(v[field]) ?? "nothing"
      }`,
    );
  if (!nonEmpty(v.instance)) throw bad("instance", "a non-empty string");
  if (!nonEmpty(v.procId)) throw bad("procId", "a non-empty string");
  if (v.role !== "master" && v.role !== "slave") throw bad("role", '"master" or "slave"');
  if (!isPort(v.port)) throw bad("port", "a port number (1-65535)");
  if (!Number.isInteger(v.capacityMB) || (v.capacityMB as number) <= 0) {
    throw bad("capacityMB", "a positive whole number of MB");
  }
  if (
    !nonEmpty(v.dataDir) || !/^[A-Za-z0-9._-]+$/.test(v.dataDir) || v.dataDir === "." ||
    v.dataDir === ".."
  ) {
    throw bad("dataDir", 'one path segment of letters, digits, ".", "_" and "-"');
  }
  const spec: RedisTaskSpec = {
    instance: v.instance,
    procId: v.procId,
    role: v.role,
    port: v.port,
    capacityMB: v.capacityMB as number,
    dataDir: v.dataDir,
  };
  if (v.epoch !== undefined) {
    if (!Number.isInteger(v.epoch) || (v.epoch as number) < 0) {
      throw bad("epoch", "a whole number, 0 or more");
    }
    spec.epoch = v.epoch as number;
  }
  if (v.minReplicasToWrite !== undefined) {
    if (
      !Number.isInteger(v.minReplicasToWrite) || (v.minReplicasToWrite as number) < 0 ||
      (v.minReplicasToWrite as number) > 1000
    ) {
      throw bad("minReplicasToWrite", "a whole number from 0 to 1000");
    }
    spec.minReplicasToWrite = v.minReplicasToWrite as number;
  }
  if (v.minReplicasMaxLagSeconds !== undefined) {
    if (
      !Number.isInteger(v.minReplicasMaxLagSeconds) ||
      (v.minReplicasMaxLagSeconds as number) < 1 || (v.minReplicasMaxLagSeconds as number) > 3600
    ) {
      throw bad("minReplicasMaxLagSeconds", "a whole number of seconds from 1 to 3600");
    }
    spec.minReplicasMaxLagSeconds = v.minReplicasMaxLagSeconds as number;
  }
  if (v.auth !== undefined) {
    const a = v.auth as { password?: unknown; adminPassword?: unknown } | null;
    // The message never shows the value: it holds secrets.
    if (
      typeof a !== "object" || a === null || !nonEmpty(a.password) || !nonEmpty(a.adminPassword)
    ) {
      throw new TypeError(
        'TaskInfo.data field "auth" must be {password, adminPassword} with two non-empty strings',
      );
    }
    spec.auth = { password: a.password, adminPassword: a.adminPassword };
  }
  if (v.cluster !== undefined) {
    const c = v.cluster as { busPort?: unknown; fresh?: unknown } | null;
    if (
      typeof c !== "object" || c === null || !isPort(c.busPort) ||
      (c.fresh !== undefined && typeof c.fresh !== "boolean")
    ) {
      throw bad("cluster", "{busPort, fresh?} with a port number and a boolean");
    }
    spec.cluster = { busPort: c.busPort, ...(c.fresh !== undefined ? { fresh: c.fresh } : {}) };
  }
  // A cluster replica has no master address: it is attached by node id.
  if ((v.role === "slave" && spec.cluster === undefined) || v.master !== undefined) {
    const m = v.master as { host?: unknown; port?: unknown } | undefined;
    if (typeof m !== "object" || m === null || !nonEmpty(m.host) || !isPort(m.port)) {
      throw bad("master", "{host, port} of the master to replicate from");
    }
    spec.master = { host: m.host, port: m.port };
  }
  return spec;
}
