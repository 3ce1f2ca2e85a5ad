/**
 * The data model kept in the store: instances, their redis processes, and the
 * framework id. Every record carries `rev` (an integer bumped on each write by
 * the scheduler) besides the store's own version used for compare-and-set.
 *
 * Store layout (prefix `/mr-redis` unless configured):
 *
 * | key | value |
 * |---|---|
 * | `/mr-redis/framework_id` | the Mesos FrameworkID (plain string) |
 * | `/mr-redis/instances/{name}` | {@linkcode InstanceRecord} as JSON |
 * | `/mr-redis/instances/{name}/procs/{procId}` | {@linkcode ProcessRecord} as JSON |
 * | `/mr-redis/instances/{name}/proxies/{proxyId}` | {@linkcode ProxyRecord} as JSON |
 *
 * Deleting an instance deletes `/mr-redis/instances/{name}` and everything under it.
 *
 * @module
 */

/** Instance type: `S` single server, `MS` master with slaves, `RC` Redis Cluster. */
export type InstanceType = "S" | "MS" | "RC";

/** Instance status as shown by STATUS. */
export type InstanceStatus =
  | "CREATING"
  | "RUNNING"
  | "DEGRADED"
  | "FAILING_OVER"
  | "DELETING"
  | "DELETED";

/** Role of one redis process. */
export type ProcessRole = "master" | "slave";

/** State of one redis process as the scheduler knows it. */
export type ProcessState =
  | "PENDING" // waiting for an offer
  | "STAGING" // launched, no RUNNING yet
  | "RUNNING"
  | "KILLING"
  | "LOST" // terminal (failed/lost/killed); kept until replaced
  | "DONE";

/** One redis-server process of an instance; one Mesos task. */
export interface ProcessRecord {
  /** Stable id within the instance, e.g. `p3`. */
  id: string;
  /** Mesos task id (unique per launch: `{instance}.{procId}.{n}`). */
  taskId: string;
  role: ProcessRole;
  state: ProcessState;
  /** Agent id and host the task runs on, once launched. */
  agentId?: string;
  host?: string;
  port?: number;
  /** Executor id hosting the task. */
  executorId?: string;
  /** Last replication offset reported (for promotion choice). */
  replOffset?: number;
  /** Why the last launch failed, when it did. */
  reason?: string;
  /** Last update time, ms since epoch. */
  updatedAt: number;
  /** Launches so far; the next task id ends with `launchCount + 1`. */
  launchCount?: number;
  /** Consecutive failed launches (drives the relaunch backoff). */
  failures?: number;
  /** A LOST process is relaunched no earlier than this time (ms since epoch). */
  retryAt?: number;
  /** Slave: the master address (`host:port`) it was last told to replicate from. */
  replicaOf?: string;
  /** Last Mesos task state seen, e.g. `TASK_RUNNING`. */
  lastState?: string;
  /** When the last KILL was sent (ms since epoch), to resend it. */
  killSentAt?: number;
  /**
   * A lost process whose agent is still alive is relaunched on that same agent
   * (same data dir, so an AOF survives) until this time (ms since epoch); after
   * it, anywhere.
   */
  pinAgentUntil?: number;
  /** The instance epoch given to the current task at launch. */
  launchEpoch?: number;
  /** RC: the shard (0-based) this process belongs to. */
  shard?: number;
  /** RC: the cluster node id it last reported. */
  nodeId?: string;
  /** RC: the cluster bus port taken from the offer, once launched. */
  busPort?: number;
  /** The `maxmemory` (MB) of the current task, set at launch; absent: the instance's `capacityMB`. */
  capacityMB?: number;
  /** The `min-replicas-to-write` of the current task, set at launch; absent: 1 for MS, 0 for S. */
  minReplicas?: number;
  /** A slave added by an UPDATE that has not synced yet: not counted in the instance until it has. */
  joining?: boolean;
  /** Being removed by an UPDATE: killed, never relaunched, its record deleted once its task ended. */
  retiring?: boolean;
}

/** The sizes an UPDATE changes. */
export interface InstanceShape {
  capacityMB: number;
  slaves: number;
  distribution: number;
}

/**
 * A change of an instance (UPDATE) in progress, persisted so that a restarted
 * scheduler resumes it. See `lib/scheduler/update_plan.ts`.
 */
export interface UpdateRecord {
  /** What the instance becomes. */
  target: InstanceShape;
  /** What it was when the change began. */
  from: InstanceShape;
  /** The step the change is at, in words (shown in STATUS). */
  phase: string;
  /** When the change began (ms since epoch). */
  startedAt: number;
  /** The master's epoch when the change began (a resize promotes once). */
  startEpoch: number;
}

/**
 * One proxy endpoint of an instance (`lib/proxy`), run as a Mesos task by
 * MrRedisExecutor; ids `x1`, `x2`, ... stay the same across relaunches.
 */
export interface ProxyRecord {
  /** Stable id within the instance, e.g. `x2`. */
  id: string;
  /** Mesos task id (unique per launch: `{instance}.{proxyId}.{n}`); empty until launched. */
  taskId: string;
  state: ProcessState;
  /** Agent id and host the task runs on, once launched. */
  agentId?: string;
  host?: string;
  /** The port it listens on (from the offer). */
  port?: number;
  executorId?: string;
  /** Why the last launch failed, when it did. */
  reason?: string;
  /** Last update time, ms since epoch. */
  updatedAt: number;
  /** Launches so far. */
  launchCount?: number;
  /** Consecutive failed launches (drives the relaunch backoff). */
  failures?: number;
  /** A LOST proxy is relaunched no earlier than this time (ms since epoch). */
  retryAt?: number;
  /** Last Mesos task state seen. */
  lastState?: string;
  /** When the last KILL was sent (ms since epoch), to resend it. */
  killSentAt?: number;
  /**
   * The agent of a launch that stopped answering while its executor was
   * silent: the relaunch goes elsewhere; cleared once a launch runs.
   */
  avoidAgentId?: string;
}

/** One Redis instance as requested by a user and tracked by the scheduler. */
export interface InstanceRecord {
  name: string;
  type: InstanceType;
  status: InstanceStatus;
  /** Capacity (maxmemory) of every process, in MB. */
  capacityMB: number;
  /** Desired number of masters (1 for S and MS; the shards of an RC). */
  masters: number;
  /** Desired number of slaves (of each shard for an RC). */
  slaves: number;
  /** Most processes of this instance on one agent. */
  distribution: number;
  /**
   * Proxy endpoints wanted (each on its own agent). Absent: none (instances
   * made before proxies).
   */
  proxies?: number;
  /** Process id of the current master, once chosen. */
  masterId?: string;
  /** Why the instance is not RUNNING, when known (shown in STATUS). */
  reason?: string;
  /** Process id being promoted while the instance is FAILING_OVER. */
  promotingId?: string;
  /**
   * While `promotingId` is set: the master it replaces. Until the promoted
   * process reports itself master its AOF may be unfinished, and this one's
   * data dir holds the data.
   */
  promotedFrom?: string;
  /**
   * Failover epoch: bumped (compare-and-set) with each change of master and
   * persisted before the promote is sent; every command and task carries it,
   * and executors refuse older ones. Absent means 0.
   */
  epoch?: number;
  /** The last notable event (a failover, a data loss), shown in STATUS as `LastEvent`. */
  lastEvent?: string;
  /**
   * The clients' password (the `default` user of every process); never in
   * STATUS, logs or task labels (`GET /v1/CREDENTIALS/{name}`). Absent for
   * instances made before passwords: they run without one.
   */
  password?: string;
  /** The internal user's secret (executor and replication); never shown anywhere. */
  adminPassword?: string;
  /** RC: the process id of each shard's master, by shard. */
  shardMasters?: string[];
  /**
   * RC: node ids of nodes gone for good (a replaced master, a node started
   * anew); every live node is told to forget them.
   */
  ghosts?: string[];
  /** The change (UPDATE) in progress, if any. */
  update?: UpdateRecord;
  /** The highest process number used so far (`p7` → 7): ids of removed processes are never reused. */
  lastProcId?: number;
  /** Monotonic record revision, bumped by the scheduler on each write. */
  rev: number;
  createdAt: number;
  updatedAt: number;
}

/** How many redis processes an instance has: `masters × (1 + slaves)`. */
export function processCount(inst: Pick<InstanceRecord, "masters" | "slaves">): number {
  return inst.masters * (1 + inst.slaves);
}
