/**
 * The logic of MrRedisExecutor, free of Mesos I/O: it takes executor events
 * (LAUNCH, KILL, MESSAGE, SHUTDOWN, ...) and answers through a small
 * {@linkcode ExecutorDriver} (status updates and messages), running one
 * redis-server per task.
 *
 * Task life: LAUNCH → (TASK_STARTING) → redis-server started → TASK_RUNNING
 * once it answers and, for a slave, its initial sync is done → exactly one
 * terminal update: TASK_KILLED (KILL, fence, SHUTDOWN) or TASK_FAILED (bad
 * spec, start failure, exit, hang, sync timeout). The executor never restarts
 * a process itself: the scheduler decides.
 *
 * TASK_STARTING is optional for a Mesos executor, and each update costs a
 * round trip through agent, master and scheduler and back (the update and
 * its acknowledgement): it is sent only when the task has neither reached
 * TASK_RUNNING nor ended within `startingUpdateDelayMs` (default 5 s) of its
 * LAUNCH. A usual start reports TASK_RUNNING straight from TASK_STAGING (the
 * slaves of a 1 master + 50 slaves create, on a busy 2-core machine, are in
 * sync 1 to 3 s after their LAUNCH: a 1 s delay saved nothing there); a slow
 * one (a slave's long initial sync) still shows TASK_STARTING meanwhile.
 *
 * Slowness is not death: a redis-server that stops answering its checks is
 * killed (a hang) only when the kernel shows it stopped (`SIGSTOP`); one that
 * lives but is silent (busy, starved) is reported in the stats
 * (`unansweredMs`, `procState`) and left to the scheduler, which checks it
 * itself before anything is replaced (`lib/scheduler/detection.ts`).
 *
 * Durability by role: a master runs with the append-only file; a slave runs
 * without it (its data is a copy of its master's, fetched again by a full
 * sync when it restarts) until a `promote`, which turns the AOF on and waits
 * for its first rewrite to finish before `REPLICAOF NO ONE` and before it
 * answers: no process is reported master without its AOF.
 *
 * Self-fencing, so an old master the scheduler cannot reach never keeps taking
 * writes next to a promoted one:
 *
 * - Every process runs with `min-replicas-to-write` (from the spec; see
 *   {@linkcode RedisTaskSpec.minReplicasToWrite}) and `min-replicas-max-lag`:
 *   a master of an MS instance whose replicas were re-pointed elsewhere, or
 *   stopped acknowledging, refuses writes with `NOREPLICAS`. The setting is
 *   dormant on a slave and active from its promotion.
 * - A lease on the agent: it is renewed by every event from the agent and by
 *   every MESSAGE the agent accepts while the subscription is open (the
 *   `stats` message goes every second). When it runs out (`leaseMs`), every
 *   process gets `min-replicas-to-write` {@linkcode MAX_MIN_REPLICAS}: a
 *   master refuses every write, S instances included, until the lease is
 *   renewed (a new subscription); reads still work.
 *
 * @module
 */

import {
  decodeMessage,
  decodeTaskSpec,
  DEFAULT_MIN_REPLICAS_MAX_LAG_SECONDS,
  encodeMessage,
  type ExecutorToScheduler,
  type RedisStats,
  type RedisTaskSpec,
  type RedisTaskStatusData,
  type SchedulerToExecutor,
} from "../executor_messages.ts";
import type {
  ExecutorEvent,
  TaskID,
  TaskInfo,
  TaskState,
  TaskStatusReason,
} from "../mesos/types.ts";
import { isInSync, type RedisInfo, statsFromInfo, StreamingSlaves } from "../redis/info.ts";
import { type ClusterNodeStats, clusterServerArgs } from "../redis/cluster.ts";
import { clusterView, freshClusterDir, runClusterCommand } from "./cluster_node.ts";
import { redactSecrets } from "../redis/auth.ts";
import { readTaskLog } from "./log_tail.ts";
import { RedisMonitor, type RedisMonitorEvent } from "../redis/monitor.ts";
import { describeExit, MAX_MIN_REPLICAS, type RedisExit, RedisProcess } from "../redis/server.ts";
import { checkMaster, isProxySpec } from "../proxy/task_spec.ts";
import { ProxyTasks } from "./proxy_tasks.ts";

/** The channel a draining master publishes to (see `#drainWrites`). */
const FENCE_CHANNEL = "__mrr_fence__";
/** The longest part of a drain spent waiting for every replica before writes stop, ms. */
const PRE_DRAIN_MS = 1_500;
/** The longest drain a `fence` command may ask for, ms. */
export const MAX_DRAIN_MS = 60_000;

/** One status update as the executor sends it (the client adds uuid, source, executor id). */
export interface TaskStatusUpdate {
  task_id: TaskID;
  state: TaskState;
  message?: string;
  reason?: TaskStatusReason;
  data?: Uint8Array;
}

/** What the executor needs from the Mesos executor client. */
export interface ExecutorDriver {
  /** Sends a status update (reliably: retried until acknowledged). */
  update(status: TaskStatusUpdate): void | Promise<void>;
  /**
   * Sends a MESSAGE to the scheduler (best effort). Resolves once the agent
   * accepted it and rejects when it could not be delivered: an accepted
   * message renews the agent lease.
   */
  message(data: Uint8Array): void | Promise<void>;
}

/** Options of {@linkcode RedisExecutor}. */
export interface RedisExecutorOptions {
  /** Where updates and messages go. */
  driver: ExecutorDriver;
  /** The sandbox. */
  sandbox: string;
  /**
   * Where data dirs go: `<dataRoot>/<spec.dataDir>`. Default: the sandbox.
   * A stable path outside the sandbox keeps the data across executor runs.
   */
  dataRoot?: string;
  /**
   * Host put in TASK_RUNNING data. Default: the agent hostname from
   * SUBSCRIBED, else `127.0.0.1`.
   */
  host?: string;
  /** Address redis-server binds. Default `0.0.0.0`. */
  bind?: string;
  /** The redis-server binary. Default `redis-server` on PATH. */
  redisServer?: string;
  /** `maxmemory-policy`. Default `noeviction`. */
  maxMemoryPolicy?: string;
  /** Period of the `stats` message, in ms. Default 1000. */
  statsIntervalMs?: number;
  /** Period of the INFO check of a running process, in ms. Default 500. */
  checkIntervalMs?: number;
  /**
   * Period of the INFO check while waiting for RUNNING, in ms. Default 500,
   * as when running: a master is checked at once when it is ready, and a
   * slave at once when redis-server logs the end of its sync, so the period
   * is only the fallback (each check costs the executor and the redis-server
   * CPU, 51 processes of a create at once).
   */
  startingCheckIntervalMs?: number;
  /**
   * Smallest deadline of one check, in ms; it grows with the answer times
   * seen (4 × the slowest of the last 16, at most 5 s). Default 500 (a
   * stopped process is declared hung within about 2 s on an idle machine).
   */
  checkTimeoutMs?: number;
  /**
   * Failed checks in a row after which the process state is read: stopped
   * (SIGSTOP) is a hang and the process is killed; alive is reported as
   * unresponsive in the stats and left to the scheduler. Default 3.
   */
  maxFailures?: number;
  /**
   * TASK_STARTING is sent only when a task has not reached TASK_RUNNING (nor
   * ended) this long after its LAUNCH, in ms; 0 sends it at once. Default 5000.
   */
  startingUpdateDelayMs?: number;
  /** How long redis-server may take to answer its first PING, in ms. Default 10000. */
  startTimeoutMs?: number;
  /** How long a slave may take for its initial sync, in ms. Default 600000. */
  syncTimeoutMs?: number;
  /** Graceful stop budget before SIGKILL, in ms. Default 4000. */
  stopTimeoutMs?: number;
  /** Deadline of a promote / replicaof command, in ms. Default 5000. */
  commandTimeoutMs?: number;
  /**
   * The agent lease, in ms (0: off): with no event from the agent and no
   * MESSAGE it accepted for this long, masters refuse writes until the lease
   * is renewed. Default 5000.
   */
  leaseMs?: number;
  /**
   * Whether the subscription to the agent is open now; a MESSAGE accepted
   * while it is not does not renew the lease. Default: always open.
   */
  connected?: () => boolean;
  /** Called once no task has run for this long, in ms (0: never). Default 30000. */
  idleTimeoutMs?: number;
  /** Called when idle (see `idleTimeoutMs`). */
  onIdle?: () => void;
  /** Receives one line per notable event. */
  log?: (line: string) => void;
  /**
   * The module proxy tasks' thread starts from; `null` runs them on the
   * executor's thread. Default: the one of this source tree (see
   * `proxy_tasks.ts`).
   */
  proxyThreadModule?: URL | null;
}

type Phase = "starting" | "running" | "stopping" | "done";

interface Task {
  id: string;
  spec: RedisTaskSpec;
  phase: Phase;
  proc?: RedisProcess;
  monitor?: RedisMonitor;
  info?: RedisInfo;
  killRequested: boolean;
  syncTimer?: ReturnType<typeof setTimeout>;
  /** Sends TASK_STARTING if the task is still starting when it fires (`startingUpdateDelayMs`). */
  startingTimer?: ReturnType<typeof setTimeout>;
  /** The newest epoch of the instance this task was told. */
  epoch: number;
  /** `min-replicas-to-write` while the lease holds. */
  minReplicas: number;
  /** `min-replicas-max-lag` in seconds. */
  maxLagSeconds: number;
  /** `min-replicas-to-write` the process was last given (launch or CONFIG SET). */
  guard: number;
  /** A fence stopped its writes: `min-replicas-to-write` stays at MAX_MIN_REPLICAS. */
  fenced?: boolean;
  /** A fence's drain (writes stopped, waiting for a replica to catch up) in progress. */
  draining?: Promise<void>;
  /** Changes of `guard`, one at a time. */
  guarding: Promise<void>;
  /**
   * While the monitor finds it unresponsive (alive but silent): when it last
   * answered and the process state read. Cleared by its next answer.
   */
  unresponsive?: { since: number; state: string };
  /** A master: which of its slaves take its stream (from its INFO answers). */
  streams?: StreamingSlaves;
  /** A cluster node: its latest view of the cluster. */
  cluster?: ClusterNodeStats;
  /** A cluster view is being read. */
  readingCluster?: boolean;
}

function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(
      `Cannot create executor: option "${name}" must be a positive number, but got ${value}`,
    );
  }
  return value;
}

/** Longest wait for a slave's master to listen before starting the slave anyway. */
const MASTER_WAIT_MS = 1000;

/**
 * Resolves `true` once `host:port` accepts a TCP connection (polled every
 * 5 ms: a new master listens 5–20 ms after its spawn, and every slave of
 * the instance waits for it), `false` after `maxMs` or once `cancelled()`
 * says so.
 */
async function waitForListener(
  host: string,
  port: number,
  maxMs: number,
  cancelled: () => boolean,
): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (!cancelled() && Date.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const attempt = Deno.connect({ hostname: host, port });
    // A connection arriving after the 200 ms race is closed as well, not leaked.
    const result = await Promise.race([
      attempt.then((conn) => (conn.close(), true), () => false),
      new Promise<false>((r) => timer = setTimeout(() => r(false), 200)),
    ]);
    clearTimeout(timer);
    if (result) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs the redis tasks of one framework on one agent. */
export class RedisExecutor {
  readonly #driver: ExecutorDriver;
  readonly #sandbox: string;
  readonly #dataRoot: string;
  readonly #log: (line: string) => void;
  readonly #opts: Required<
    Pick<
      RedisExecutorOptions,
      | "bind"
      | "redisServer"
      | "maxMemoryPolicy"
      | "statsIntervalMs"
      | "checkIntervalMs"
      | "startingCheckIntervalMs"
      | "checkTimeoutMs"
      | "maxFailures"
      | "startTimeoutMs"
      | "startingUpdateDelayMs"
      | "syncTimeoutMs"
      | "stopTimeoutMs"
      | "commandTimeoutMs"
      | "idleTimeoutMs"
      | "leaseMs"
    >
  >;
  readonly #onIdle: (() => void) | undefined;
  readonly #connected: () => boolean;
  /** When the agent was last heard from (an event or an accepted MESSAGE). */
  #lastContact = 0;
  /** The lease ran out: every process has `min-replicas-to-write` MAX_MIN_REPLICAS. */
  #leaseLost = false;
  #leaseTimer: ReturnType<typeof setInterval> | undefined;
  #host: string | undefined;
  #agentHost: string | undefined;
  readonly #tasks = new Map<string, Task>();
  /** The proxy tasks (`proxy_tasks.ts`). */
  readonly #proxies: ProxyTasks;
  /** Instance name → the newest failover epoch seen (launches and commands). */
  readonly #epochs = new Map<string, number>();
  readonly #work = new Set<Promise<unknown>>();
  readonly #sends = new Set<Promise<void>>();
  #statsTimer: ReturnType<typeof setInterval> | undefined;
  /** Waits for a master to listen, shared by its slaves launched meanwhile (see `#masterListening`). */
  readonly #masterWaits = new Map<string, Promise<boolean>>();
  /** When the stats message still on its way to the agent left (see `#sendStats`). */
  #statsInFlight: number | undefined;
  /** Stats asked for while one was on its way: send once it is accepted. */
  #statsAgain = false;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #subscribed = false;
  #closed = false;
  #silent = false;
  #closing: Promise<void> | undefined;

  /** Makes an executor; it does nothing until it gets events. */
  constructor(options: RedisExecutorOptions) {
    if (!options.sandbox) throw new TypeError('Cannot create executor: option "sandbox" is empty');
    this.#driver = options.driver;
    this.#sandbox = options.sandbox;
    this.#dataRoot = options.dataRoot || options.sandbox;
    this.#host = options.host;
    this.#log = options.log ?? (() => {});
    this.#onIdle = options.onIdle;
    this.#connected = options.connected ?? (() => true);
    const leaseMs = options.leaseMs ?? 5000;
    if (!(leaseMs >= 0) || !Number.isFinite(leaseMs)) {
      throw new RangeError(
        `Cannot create executor: option "leaseMs" must be 0 or more, but got ${leaseMs}`,
      );
    }
    const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    if (!(idleTimeoutMs >= 0)) {
      throw new RangeError(
        `Cannot create executor: option "idleTimeoutMs" must be 0 or more, but got ${idleTimeoutMs}`,
      );
    }
    const startingUpdateDelayMs = options.startingUpdateDelayMs ?? 5000;
    if (!(startingUpdateDelayMs >= 0) || !Number.isFinite(startingUpdateDelayMs)) {
      throw new RangeError(
        `Cannot create executor: option "startingUpdateDelayMs" must be 0 or more, but got ${startingUpdateDelayMs}`,
      );
    }
    const maxFailures = options.maxFailures ?? 3;
    if (!Number.isInteger(maxFailures) || maxFailures < 1) {
      throw new RangeError(
        `Cannot create executor: option "maxFailures" must be a whole number above 0, but got ${maxFailures}`,
      );
    }
    this.#opts = {
      bind: options.bind ?? "0.0.0.0",
      redisServer: options.redisServer ?? "redis-server",
      maxMemoryPolicy: options.maxMemoryPolicy ?? "noeviction",
      statsIntervalMs: positive("statsIntervalMs", options.statsIntervalMs ?? 1000),
      checkIntervalMs: positive("checkIntervalMs", options.checkIntervalMs ?? 500),
      startingCheckIntervalMs: positive(
        "startingCheckIntervalMs",
        options.startingCheckIntervalMs ?? 500,
      ),
      checkTimeoutMs: positive("checkTimeoutMs", options.checkTimeoutMs ?? 500),
      maxFailures,
      startTimeoutMs: positive("startTimeoutMs", options.startTimeoutMs ?? 10_000),
      startingUpdateDelayMs,
      syncTimeoutMs: positive("syncTimeoutMs", options.syncTimeoutMs ?? 600_000),
      stopTimeoutMs: positive("stopTimeoutMs", options.stopTimeoutMs ?? 4000),
      commandTimeoutMs: positive("commandTimeoutMs", options.commandTimeoutMs ?? 5000),
      idleTimeoutMs,
      leaseMs,
    };
    this.#proxies = new ProxyTasks({
      send: (status) => this.#send(status),
      host: () => this.host,
      bind: this.#opts.bind,
      ended: () => this.#armIdle(),
      log: this.#log,
      ...(options.proxyThreadModule !== undefined
        ? { threadModule: options.proxyThreadModule }
        : {}),
    });
  }

  /** Ids of the tasks not yet ended (redis and proxy tasks). */
  get taskIds(): string[] {
    return [...this.#tasks.keys(), ...this.#proxies.taskIds];
  }

  /** True while the agent lease has run out and masters refuse writes. */
  get leaseLost(): boolean {
    return this.#leaseLost;
  }

  /** Host put in TASK_RUNNING data. */
  get host(): string {
    return this.#host ?? this.#agentHost ?? "127.0.0.1";
  }

  /**
   * Handles one executor event. Returns quickly: launches, kills and commands
   * run in the background (see {@linkcode RedisExecutor.idle}).
   */
  handle(event: ExecutorEvent): void {
    if (this.#closed) return;
    this.#renewLease();
    switch (event.type) {
      case "SUBSCRIBED":
        this.#agentHost = event.subscribed?.agent_info?.hostname || undefined;
        if (!this.#subscribed) {
          this.#subscribed = true;
          this.#log(`Subscribed; advertising host ${this.host}`);
          this.#statsTimer = setInterval(() => this.#sendStats(), this.#opts.statsIntervalMs);
          if (this.#opts.leaseMs > 0) {
            const every = Math.max(10, Math.min(1000, this.#opts.leaseMs / 5));
            this.#leaseTimer = setInterval(() => this.#checkLease(), every);
          }
          this.#armIdle();
        }
        return;
      case "LAUNCH":
        if (event.launch?.task) this.#track(this.#launch(event.launch.task));
        return;
      case "LAUNCH_GROUP":
        for (const task of event.launch_group?.task_group?.tasks ?? []) {
          this.#send({
            task_id: task.task_id,
            state: "TASK_FAILED",
            reason: "REASON_TASK_GROUP_INVALID",
            message:
              `Cannot launch task "${task.task_id.value}": MrRedisExecutor does not run task groups`,
          });
        }
        return;
      case "KILL":
        if (event.kill?.task_id && this.#proxies.has(event.kill.task_id.value)) {
          this.#track(this.#proxies.kill(event.kill.task_id.value));
        } else if (event.kill?.task_id) this.#track(this.#kill(event.kill.task_id.value));
        return;
      case "MESSAGE":
        if (event.message?.data) this.#track(this.#command(event.message.data));
        return;
      case "SHUTDOWN":
        void this.shutdown();
        return;
      case "ERROR":
        this.#log(`Agent reported an error: ${event.error?.message ?? "(no message)"}`);
        return;
      default:
        return;
    }
  }

  /** Resolves once every launch, kill and command started so far has finished. */
  async idle(): Promise<void> {
    await this.#drain();
    await this.#closing;
  }

  async #drain(): Promise<void> {
    while (this.#work.size > 0) await Promise.allSettled([...this.#work]);
  }

  /** Waits (at most `timeoutMs`) until every update and message handed to the driver settled. */
  async flush(timeoutMs = 5000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.#sends]),
      new Promise((r) => timer = setTimeout(r, timeoutMs)),
    ]);
    clearTimeout(timer);
  }

  /**
   * Stops every task gracefully and sends TASK_KILLED for each (what the
   * SHUTDOWN event does); no more events are handled afterwards.
   */
  shutdown(): Promise<void> {
    this.#closing ??= this.#close(true);
    return this.#closing;
  }

  /**
   * Stops every redis-server gracefully without sending updates (the agent is
   * gone); no more events are handled afterwards.
   */
  abandon(): Promise<void> {
    this.#closing ??= this.#close(false);
    return this.#closing;
  }

  async #close(report: boolean): Promise<void> {
    this.#closed = true;
    this.#silent = !report;
    clearInterval(this.#statsTimer);
    clearInterval(this.#leaseTimer);
    clearTimeout(this.#idleTimer);
    const proxies = this.#proxies.closeAll(report);
    const stops = [...this.#tasks.values()].map((task) => {
      task.killRequested = true;
      if (!task.proc || task.phase === "stopping" || task.phase === "done") return undefined;
      return this.#stopTask(task, {
        graceful: true,
        state: "TASK_KILLED",
        message: "Executor shut down",
        cause: "killed",
      });
    });
    await Promise.allSettled([...stops, proxies]);
    // Launches still starting see `killRequested` and stop on their own.
    await this.#drain();
  }

  #track(work: Promise<unknown>): void {
    const p = work.catch((error) => this.#log(`Unexpected executor error: ${errorText(error)}`));
    this.#work.add(p);
    p.finally(() => this.#work.delete(p));
  }

  #send(status: TaskStatusUpdate): void {
    if (this.#silent) return;
    this.#log(
      `Task ${status.task_id.value}: ${status.state}${
        status.message ? ` (${status.message})` : ""
      }`,
    );
    const p = (async () => {
      try {
        await this.#driver.update(status);
      } catch (error) {
        this.#log(
          `Cannot send ${status.state} of task ${status.task_id.value}: ${errorText(error)}`,
        );
      }
    })();
    this.#sends.add(p);
    p.finally(() => this.#sends.delete(p));
  }

  #sendMessage(msg: ExecutorToScheduler): Promise<void> {
    const p = (async () => {
      try {
        await this.#driver.message(encodeMessage(msg));
        if (this.#connected()) this.#renewLease();
      } catch (error) {
        this.#log(`Cannot send ${msg.kind} message: ${errorText(error)}`);
      }
    })();
    this.#sends.add(p);
    p.finally(() => this.#sends.delete(p));
    return p;
  }

  /** The stats of `task` from its INFO `info`. */
  #statsOf(task: Task, info: RedisInfo): RedisStats {
    return {
      ...statsFromInfo(task.id, info),
      ...(info.role === "master" && task.streams ? { streamingSlaves: task.streams.count } : {}),
      epoch: task.epoch,
      ...(task.cluster ? { cluster: task.cluster } : {}),
    };
  }

  #statusData(task: Task, extra: RedisTaskStatusData = {}): Uint8Array {
    const data: RedisTaskStatusData = { host: this.host, port: task.spec.port, ...extra };
    return new TextEncoder().encode(JSON.stringify(data));
  }

  #armIdle(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#closed || !this.#subscribed || this.#opts.idleTimeoutMs === 0) return;
    if (this.#tasks.size > 0 || this.#proxies.size > 0) return;
    this.#idleTimer = setTimeout(() => {
      if (this.#tasks.size === 0 && this.#proxies.size === 0 && !this.#closed) {
        this.#log(`No task for ${this.#opts.idleTimeoutMs} ms; executor idle`);
        this.#onIdle?.();
      }
    }, this.#opts.idleTimeoutMs);
  }

  /**
   * Resolves once `host:port` listens (or after {@linkcode MASTER_WAIT_MS}):
   * the slaves of one master launched together share one wait, so 17 of
   * them cost one connection attempt every 20 ms, not 17 (each refused
   * attempt makes an error object; they added up while the master started).
   */
  #masterListening(host: string, port: number): Promise<boolean> {
    const key = `${host}:${port}`;
    let wait = this.#masterWaits.get(key);
    if (!wait) {
      wait = waitForListener(host, port, MASTER_WAIT_MS, () => this.#closed);
      this.#masterWaits.set(key, wait);
      wait.finally(() => this.#masterWaits.delete(key));
    }
    return wait;
  }

  /**
   * Sends the stats of every task. Routine sends (the tick, a slave in
   * sync, a master's count of slaves changing) are coalesced: while a stats
   * message is on its way to the agent (for at most `statsIntervalMs`), the
   * next ones wait and leave as one once it is accepted, with the state of
   * that moment. A burst of slaves finishing their sync at once makes one or
   * two messages instead of one each, every one of which the agent, the
   * master and the scheduler (a planning pass) would handle. `urgent` ones
   * (a role changed, a process silent or answering again) leave at once.
   */
  #sendStats(urgent = false): void {
    const inFlight = this.#statsInFlight;
    if (
      !urgent && inFlight !== undefined &&
      Date.now() - inFlight < this.#opts.statsIntervalMs
    ) {
      this.#statsAgain = true;
      return;
    }
    this.#statsAgain = false;
    const stats: RedisStats[] = [];
    for (const task of this.#tasks.values()) {
      if ((task.phase === "running" || task.phase === "starting") && task.info) {
        const silent = task.unresponsive
          ? {
            unansweredMs: Date.now() - task.unresponsive.since,
            procState: task.unresponsive.state,
          }
          : {};
        stats.push({ ...this.#statsOf(task, task.info), ...silent });
      }
    }
    const proxies = this.#proxies.taskIds;
    if (stats.length === 0 && proxies.length === 0) return;
    const sentAt = Date.now();
    this.#statsInFlight = sentAt;
    this.#sendMessage({
      kind: "stats",
      at: sentAt,
      stats,
      ...(proxies.length > 0 ? { proxies } : {}),
    }).finally(() => {
      // A newer message left meanwhile (urgent, or this one took too long): its own end decides.
      if (this.#statsInFlight !== sentAt) return;
      this.#statsInFlight = undefined;
      if (this.#statsAgain && !this.#closed) this.#sendStats();
    });
  }

  async #launch(info: TaskInfo): Promise<void> {
    const id = info.task_id.value;
    if (isProxySpec(info.data)) {
      clearTimeout(this.#idleTimer);
      await this.#proxies.launch(info);
      return;
    }
    if (this.#tasks.has(id)) {
      this.#log(`Task ${id}: LAUNCH for a task already running here; ignored`);
      return;
    }
    let spec: RedisTaskSpec;
    try {
      spec = decodeTaskSpec(info.data);
    } catch (error) {
      this.#send({
        task_id: info.task_id,
        state: "TASK_FAILED",
        reason: "REASON_TASK_INVALID",
        message: `Cannot launch task "${id}": ${errorText(error)}`,
        data: new TextEncoder().encode(JSON.stringify({ cause: "invalid" })),
      });
      return;
    }
    const minReplicas = spec.minReplicasToWrite ?? (spec.role === "slave" ? 1 : 0);
    const task: Task = {
      id,
      spec,
      phase: "starting",
      killRequested: false,
      epoch: spec.epoch ?? 0,
      minReplicas,
      maxLagSeconds: spec.minReplicasMaxLagSeconds ?? DEFAULT_MIN_REPLICAS_MAX_LAG_SECONDS,
      guard: this.#leaseLost ? MAX_MIN_REPLICAS : minReplicas,
      guarding: Promise.resolve(),
    };
    for (const other of this.#tasks.values()) {
      const clash = other.spec.port === spec.port
        ? `port ${spec.port}`
        : other.spec.dataDir === spec.dataDir
        ? `data dir "${spec.dataDir}"`
        : undefined;
      if (clash) {
        this.#send({
          task_id: info.task_id,
          state: "TASK_FAILED",
          reason: "REASON_TASK_INVALID",
          message: `Cannot launch task "${id}": ${clash} is used by task "${other.id}"`,
          data: this.#statusData(task, { cause: "start_failed" }),
        });
        return;
      }
    }
    this.#tasks.set(id, task);
    this.#noteEpoch(spec.instance, task.epoch);
    clearTimeout(this.#idleTimer);
    this.#reportStarting(task);
    const dataDir = `${this.#dataRoot}/${spec.dataDir}`;
    if (spec.cluster?.fresh) {
      // A new node: nothing of an earlier node of this dir (id, slots, data) may come back.
      await freshClusterDir(dataDir);
    }
    if (spec.role === "slave" && spec.master) {
      // A slave launched with its master may start first: redis-server retries
      // its master only once a second, so wait (briefly) until the master listens.
      await this.#masterListening(spec.master.host, spec.master.port);
    }
    try {
      task.proc = await RedisProcess.start({
        binary: this.#opts.redisServer,
        port: spec.port,
        bind: this.#opts.bind,
        dataDir,
        maxMemoryMB: spec.capacityMB,
        maxMemoryPolicy: this.#opts.maxMemoryPolicy,
        startTimeoutMs: this.#opts.startTimeoutMs,
        minReplicasToWrite: task.guard,
        minReplicasMaxLagSeconds: task.maxLagSeconds,
        // Durability by role: a slave's data is its master's (a restart
        // fetches it again by a full sync), so it keeps no AOF until promoted.
        appendOnly: spec.role !== "slave",
        ...(spec.role === "slave" && spec.master ? { replicaOf: spec.master } : {}),
        ...(spec.auth ? { auth: spec.auth } : {}),
        ...(spec.cluster
          ? { extraArgs: clusterServerArgs({ busPort: spec.cluster.busPort }) }
          : {}),
      });
    } catch (error) {
      this.#finish(task, {
        state: "TASK_FAILED",
        message: errorText(error),
        cause: "start_failed",
      });
      return;
    }
    this.#log(`Task ${id}: redis-server pid ${task.proc.pid} on port ${spec.port} (${spec.role})`);
    if (task.killRequested) {
      await this.#stopTask(task, {
        graceful: true,
        state: "TASK_KILLED",
        message: "Killed while starting",
        cause: "killed",
      });
      return;
    }
    task.monitor = new RedisMonitor(task.proc, {
      intervalMs: this.#opts.startingCheckIntervalMs,
      timeoutMs: this.#opts.checkTimeoutMs,
      maxFailures: this.#opts.maxFailures,
      onEvent: (event) => this.#onMonitor(task, event),
    });
    task.monitor.start();
    if (spec.role === "slave" && spec.master) {
      // Check at once when redis-server logs the end of its sync (the
      // monitor's period while starting is only the fallback).
      const off = task.proc.onLog((line) => {
        if (task.phase !== "starting") return off();
        if (/sync: Finished with success/i.test(line)) task.monitor?.checkNow();
      });
      task.syncTimer = setTimeout(() => {
        if (task.phase !== "starting") return;
        const m = spec.master!;
        this.#track(this.#stopTask(task, {
          graceful: false,
          state: "TASK_FAILED",
          message: `Slave did not finish its initial sync with ${m.host}:${m.port} within ${
            this.#opts.syncTimeoutMs / 1000
          } s`,
          cause: "sync_timeout",
        }));
      }, this.#opts.syncTimeoutMs);
    }
  }

  /**
   * Sends TASK_STARTING for `task`, at once with `startingUpdateDelayMs` 0,
   * else only if it is still starting when the delay is over.
   */
  #reportStarting(task: Task): void {
    const starting = () => this.#send({ task_id: { value: task.id }, state: "TASK_STARTING" });
    if (this.#opts.startingUpdateDelayMs === 0) return starting();
    task.startingTimer = setTimeout(() => {
      task.startingTimer = undefined;
      if (task.phase === "starting" && !this.#closed) starting();
    }, this.#opts.startingUpdateDelayMs);
  }

  #onMonitor(task: Task, event: RedisMonitorEvent): void {
    if (task.phase === "stopping" || task.phase === "done") return;
    switch (event.kind) {
      case "info": {
        const goodBefore = task.info?.goodSlaves;
        const streamingBefore = task.streams?.count;
        task.info = event.info;
        if (event.info.role === "master") {
          (task.streams ??= new StreamingSlaves()).update(event.info);
        } else task.streams = undefined;
        // The scheduler waits for a master to count its slaves before calling
        // the instance RUNNING, and an UPDATE for it to stream to a new slave
        // before retiring an old one: tell it at once, not at the next stats tick.
        if (
          task.phase === "running" && event.info.role === "master" &&
          ((goodBefore !== undefined && goodBefore !== event.info.goodSlaves) ||
            (streamingBefore !== undefined && streamingBefore !== task.streams?.count))
        ) this.#sendStats();
        if (task.spec.cluster && !task.readingCluster && task.proc) {
          task.readingCluster = true;
          this.#track(
            clusterView(task.proc.client, this.#checkTimeout(task)).then((view) => {
              if (view) task.cluster = view;
            }).finally(() => task.readingCluster = false),
          );
        }
        if (task.unresponsive) {
          this.#log(
            `Task ${task.id}: redis-server answers again after ${
              Date.now() - task.unresponsive.since
            } ms`,
          );
          task.unresponsive = undefined;
          if (task.phase === "running") this.#sendStats(true);
        }
        if (task.phase === "starting" && isInSync(event.info)) {
          task.phase = "running";
          clearTimeout(task.syncTimer);
          clearTimeout(task.startingTimer);
          if (task.monitor) task.monitor.intervalMs = this.#opts.checkIntervalMs;
          // The stats that made it RUNNING go with the update: the scheduler
          // counts a slave in sync from it, not from the next stats message
          // (which may wait behind one still on its way).
          this.#send({
            task_id: { value: task.id },
            state: "TASK_RUNNING",
            data: this.#statusData(task, {
              stats: this.#statsOf(task, event.info),
              statsAt: Date.now(),
            }),
          });
          this.#sendStats();
        }
        return;
      }
      case "exited":
        this.#finish(task, {
          state: "TASK_FAILED",
          message: `redis-server (pid ${task.proc?.pid}, port ${task.spec.port}) ${
            describeExit(event.exit)
          }`,
          cause: "exited",
          exit: event.exit,
        });
        return;
      case "hung":
        this.#track(this.#stopTask(task, {
          graceful: false,
          state: "TASK_FAILED",
          message:
            `redis-server stopped answering (pid ${task.proc?.pid}, port ${task.spec.port}): ${event.failures} checks in a row failed and the process is ${event.state}, last: ${event.error}`,
          cause: "hung",
        }));
        return;
      case "unresponsive":
        // Alive but silent: slowness is not death. Say so in the stats and let
        // the scheduler's own check decide; the monitor goes on checking.
        task.unresponsive = { since: event.since, state: event.state };
        this.#log(
          `Task ${task.id}: redis-server (pid ${task.proc?.pid}, port ${task.spec.port}) has not answered ${event.failures} checks in a row (process ${event.state}), last: ${event.error}; reported, not killed`,
        );
        this.#sendStats(true);
        return;
    }
  }

  async #stopTask(
    task: Task,
    how: {
      graceful: boolean;
      state: TaskState;
      message: string;
      cause: RedisTaskStatusData["cause"];
    },
  ): Promise<void> {
    if (task.phase === "stopping" || task.phase === "done") return;
    task.phase = "stopping";
    clearTimeout(task.syncTimer);
    const monitor = task.monitor;
    if (monitor) this.#track(monitor.stop());
    const exit = await task.proc?.stop({
      graceful: how.graceful,
      timeoutMs: this.#opts.stopTimeoutMs,
    });
    this.#finish(task, { ...how, ...(exit ? { exit } : {}) });
  }

  #finish(
    task: Task,
    how: {
      state: TaskState;
      message: string;
      cause: RedisTaskStatusData["cause"];
      exit?: RedisExit;
    },
  ): void {
    if (task.phase === "done") return;
    task.phase = "done";
    clearTimeout(task.syncTimer);
    clearTimeout(task.startingTimer);
    if (task.monitor) this.#track(task.monitor.stop());
    task.proc?.kill("SIGKILL");
    this.#tasks.delete(task.id);
    const extra: RedisTaskStatusData = { cause: how.cause };
    if (how.exit?.signal) extra.signal = how.exit.signal;
    else if (how.exit) extra.exitCode = how.exit.code;
    this.#send({
      task_id: { value: task.id },
      state: how.state,
      message: how.message,
      ...(how.state === "TASK_FAILED" && how.cause === "start_failed"
        ? { reason: "REASON_CONTAINER_LAUNCH_FAILED" as const }
        : {}),
      data: this.#statusData(task, extra),
    });
    this.#armIdle();
  }

  async #kill(taskId: string): Promise<void> {
    const task = this.#tasks.get(taskId);
    if (!task) {
      this.#send({
        task_id: { value: taskId },
        state: "TASK_KILLED",
        message: `No task "${taskId}" runs on this executor`,
      });
      return;
    }
    task.killRequested = true;
    if (!task.proc) return; // The launch stops it once redis-server is up.
    // A fenced master being drained is killed once a replica has caught up.
    if (task.draining) await task.draining;
    await this.#stopTask(task, {
      graceful: true,
      state: "TASK_KILLED",
      message: "Killed by the scheduler",
      cause: "killed",
    });
  }

  /** Gives a proxy task its master (`proxy-master`, or one entry of `proxy-masters`); the error, if any. */
  #tellProxy(
    msg: { taskId?: unknown; host?: unknown; port?: unknown; epoch?: unknown },
  ): string | undefined {
    const master = checkMaster(msg);
    const error = typeof msg.taskId !== "string"
      ? `Cannot give a proxy its master: no string "taskId"`
      : master
      ? this.#proxies.setMaster(msg.taskId, master)
      : `Cannot run command "proxy-master": bad master ${JSON.stringify(msg.host)}:${
        JSON.stringify(msg.port)
      } epoch ${JSON.stringify(msg.epoch)}`;
    if (error) this.#log(error);
    return error;
  }

  async #command(data: Uint8Array): Promise<void> {
    let msg: SchedulerToExecutor;
    try {
      msg = decodeMessage<SchedulerToExecutor>(data);
    } catch (error) {
      this.#log(`Ignoring a message from the scheduler: ${errorText(error)}`);
      return;
    }
    const commandId = typeof msg.commandId === "string" ? msg.commandId : "";
    const reply = (
      ok: boolean,
      extra: {
        error?: string;
        replOffset?: number;
        lines?: string[];
        truncated?: boolean;
        failed?: { taskId: string; error: string }[];
      } = {},
    ) => this.#sendMessage({ kind: "result", commandId, ok, ...extra });
    if (msg.kind === "proxy-masters") {
      const entries: unknown = (msg as { proxies?: unknown }).proxies;
      if (!Array.isArray(entries)) {
        reply(false, { error: 'Cannot run command "proxy-masters": no array "proxies"' });
        return;
      }
      const failed: { taskId: string; error: string }[] = [];
      for (const entry of entries) {
        const error = this.#tellProxy(entry ?? {});
        if (error) {
          failed.push({ taskId: typeof entry?.taskId === "string" ? entry.taskId : "", error });
        }
      }
      reply(
        failed.length === 0,
        failed.length ? { error: failed.map((f) => f.error).join("; "), failed } : {},
      );
      return;
    }
    if (typeof msg.taskId !== "string") {
      reply(false, {
        error: `Cannot run command "${(msg as { kind: string }).kind}": no string "taskId"`,
      });
      return;
    }
    if (msg.kind === "proxy-master") {
      const error = this.#tellProxy(msg);
      reply(error === undefined, error ? { error } : {});
      return;
    }
    const task = this.#tasks.get(msg.taskId);
    const live = task && task.proc && (task.phase === "starting" || task.phase === "running");
    const epoch = msg.epoch;
    if (task && epoch !== undefined) {
      if (!Number.isInteger(epoch) || epoch < 0) {
        reply(false, { error: `Cannot run command "${msg.kind}": bad epoch ${epoch}` });
        return;
      }
      const known = this.#epochs.get(task.spec.instance) ?? 0;
      if (epoch < known && msg.kind !== "fence" && msg.kind !== "offset" && msg.kind !== "logs") {
        const error =
          `Cannot run command "${msg.kind}" on task "${task.id}": epoch ${epoch} is older than ${known} of instance "${task.spec.instance}"`;
        this.#log(error);
        reply(false, { error });
        return;
      }
      this.#noteEpoch(task.spec.instance, epoch);
      if (msg.kind === "promote" || msg.kind === "replicaof" || msg.kind === "cluster") {
        task.epoch = epoch;
      }
    }
    try {
      switch (msg.kind) {
        case "offset": {
          if (!live) {
            throw new Error(`Cannot read the offset of task "${msg.taskId}": it does not run here`);
          }
          const info = await task.proc!.client.info(this.#checkTimeout(task));
          task.info = info;
          const replOffset = info.role === "slave" ? info.slaveReplOffset : info.masterReplOffset;
          reply(true, { replOffset });
          return;
        }
        case "promote": {
          if (!live) throw new Error(`Cannot promote task "${msg.taskId}": it does not run here`);
          // A promoted slave is a master of an MS instance: it takes writes only with a replica.
          task.minReplicas = Math.max(task.minReplicas, task.spec.minReplicasToWrite ?? 1);
          await this.#guardWrites(task, true);
          // A master keeps an AOF: on (its first rewrite done) before it counts as one.
          const aofStarted = performance.now();
          await task.proc!.client.enableAof(this.#opts.commandTimeoutMs);
          const aofMs = Math.round(performance.now() - aofStarted);
          const offset = await task.proc!.client.promote(this.#opts.commandTimeoutMs);
          this.#log(
            `Task ${task.id}: promoted to master at offset ${offset} (AOF on in ${aofMs} ms)`,
          );
          await this.#refresh(task);
          reply(true, { replOffset: offset });
          return;
        }
        case "replicaof": {
          if (!live) throw new Error(`Cannot re-point task "${msg.taskId}": it does not run here`);
          const { host, port } = msg;
          if (typeof host !== "string" || host === "" || !Number.isInteger(port)) {
            throw new TypeError(
              `Cannot re-point task "${msg.taskId}": bad master ${JSON.stringify(host)}:${
                JSON.stringify(port)
              }`,
            );
          }
          await task.proc!.client.replicaOf(host, port, this.#opts.commandTimeoutMs);
          this.#log(`Task ${task.id}: now replicating from ${host}:${port}`);
          await this.#refresh(task);
          reply(true);
          return;
        }
        case "cluster": {
          if (!live || !task.spec.cluster) {
            throw new Error(
              `Cannot run cluster ops on task "${msg.taskId}": no cluster node runs here`,
            );
          }
          const proc = task.proc!;
          await runClusterCommand(
            {
              client: proc.client,
              beforeTakeover: async () => {
                // The new master of a shard takes writes only with a replica, as in MS.
                task.minReplicas = Math.max(task.minReplicas, task.spec.minReplicasToWrite ?? 0);
                await this.#guardWrites(task, true);
                await proc.client.enableAof(this.#opts.commandTimeoutMs);
              },
            },
            msg.ops,
            this.#opts.commandTimeoutMs,
          );
          this.#log(`Task ${task.id}: cluster ops ${msg.ops.map((o) => o.op).join(", ")} done`);
          task.cluster = await clusterView(proc.client, this.#checkTimeout(task)) ?? task.cluster;
          await this.#refresh(task);
          reply(true);
          return;
        }
        case "purge": {
          const dir = msg.dataDir;
          if (typeof dir !== "string" || !/^[A-Za-z0-9_.-]+$/.test(dir) || /^\.+$/.test(dir)) {
            throw new TypeError(
              `Cannot purge a data dir: bad name ${JSON.stringify(dir)}`,
            );
          }
          const user = [...this.#tasks.values()].find((t) => t.spec.dataDir === dir);
          if (user) throw new Error(`Cannot purge data dir "${dir}": task "${user.id}" uses it`);
          await Deno.remove(`${this.#dataRoot}/${dir}`, { recursive: true }).catch((error) => {
            if (!(error instanceof Deno.errors.NotFound)) throw error;
          });
          this.#log(`Removed data dir ${this.#dataRoot}/${dir}`);
          reply(true);
          return;
        }
        case "logs": {
          // The tail of the log in the data dir (its task may have ended): log_tail.ts.
          // The process writing it holds its newest lines a moment: out with them first.
          for (const t of this.#tasks.values()) {
            if (t.spec.dataDir === msg.dataDir) t.proc?.flushLog();
          }
          const tail = await readTaskLog(this.#dataRoot, msg.dataDir, msg.lines);
          reply(true, {
            lines: tail.lines.map((l) => redactSecrets(l, task?.spec.auth)),
            truncated: tail.truncated,
          });
          return;
        }
        case "fence": {
          const drainMs = msg.drainMs;
          if (
            drainMs !== undefined &&
            (typeof drainMs !== "number" || !Number.isInteger(drainMs) || drainMs < 0 ||
              drainMs > MAX_DRAIN_MS)
          ) {
            throw new TypeError(
              `Cannot fence task "${msg.taskId}": drainMs must be a whole number of ms from 0 to ${MAX_DRAIN_MS}, but got ${
                JSON.stringify(drainMs)
              }`,
            );
          }
          if (live && drainMs) {
            task.draining ??= this.#drainWrites(task, drainMs);
            await task.draining;
          }
          if (task && task.phase !== "done") {
            await this.#stopTask(task, {
              graceful: false,
              state: "TASK_KILLED",
              message: "Fenced by the scheduler",
              cause: "fenced",
            });
            await task.proc?.exited;
          }
          reply(true);
          return;
        }
        default:
          throw new TypeError(
            `Cannot run command: unknown kind "${(msg as { kind: string }).kind}"`,
          );
      }
    } catch (error) {
      this.#log(errorText(error));
      reply(false, { error: errorText(error) });
    }
  }

  /**
   * The drain of a planned fence: after a short wait for every replica to
   * take the stream (writes still taken), the master refuses new writes
   * (`min-replicas-to-write` MAX_MIN_REPLICAS, kept until it stops), then
   * waits up to `ms` for a replica to acknowledge its whole replication
   * stream (`WAIT 1`). Once one has, every write the master acknowledged is
   * on the replica the failover will pick (the highest offset). A replica
   * that synced a moment ago may get no stream until its first ACK (up to a
   * second), hence a wait, not a check. Never throws: past the deadline, or
   * on an error, the fence goes on.
   */
  async #drainWrites(task: Task, ms: number): Promise<void> {
    const proc = task.proc;
    if (!proc || task.info?.role !== "master") return;
    const started = Date.now();
    // Its own connection: the monitor's checks go on meanwhile. WAIT waits
    // for the offset of the connection's own last replicated command: a
    // PUBLISH (replicated, and not a write that the fence refuses) puts it
    // after every write the master took so far.
    const client = proc.client.detached();
    const waitAll = async (replicas: number, budget: number) => {
      await client.call("PUBLISH", [FENCE_CHANNEL, task.id]);
      return Number(
        await client.call("WAIT", [replicas, budget], budget + this.#opts.commandTimeoutMs),
      );
    };
    try {
      // While writes still flow, the replicas are given a moment to take the
      // stream up to now: one that synced just before gets none until its
      // first ACK (up to a second), better waited for here than with writes
      // refused.
      const replicas = (await client.info()).connectedSlaves;
      if (replicas > 0) await waitAll(replicas, Math.min(Math.floor(ms / 2), PRE_DRAIN_MS));
      task.fenced = true;
      await this.#guardWrites(task, true);
      const stopped = Date.now();
      const acked = await waitAll(1, ms);
      this.#log(
        acked >= 1
          ? `Task ${task.id}: writes stopped ${
            stopped - started
          } ms into the drain; a replica had every write ${Date.now() - stopped} ms later`
          : `Task ${task.id}: writes stopped; no replica caught up within ${ms} ms`,
      );
    } catch (error) {
      task.fenced = true;
      this.#log(`Task ${task.id}: cannot drain before the fence: ${errorText(error)}`);
    } finally {
      client.close();
    }
  }

  /** Renews the agent lease; writes are allowed again if it had run out. */
  #renewLease(): void {
    this.#lastContact = Date.now();
    if (!this.#leaseLost) return;
    this.#leaseLost = false;
    this.#log("Agent lease renewed; masters take writes again");
    for (const task of this.#tasks.values()) this.#track(this.#guardWrites(task));
  }

  /** Ends the lease when the agent has been silent too long; re-applies the guards. */
  #checkLease(): void {
    if (this.#closed || this.#opts.leaseMs === 0 || this.#tasks.size === 0) return;
    const silentMs = Date.now() - this.#lastContact;
    if (!this.#leaseLost && silentMs > this.#opts.leaseMs) {
      this.#leaseLost = true;
      this.#log(
        `No contact with the agent for ${silentMs} ms (lease ${this.#opts.leaseMs} ms); masters refuse writes`,
      );
    }
    // Also retries a CONFIG SET that failed (redis busy): the guard is re-checked every tick.
    for (const task of this.#tasks.values()) {
      if (task.guard !== this.#wantedGuard(task)) this.#track(this.#guardWrites(task));
    }
  }

  #wantedGuard(task: Task): number {
    return this.#leaseLost || task.fenced ? MAX_MIN_REPLICAS : task.minReplicas;
  }

  /**
   * Gives the process the `min-replicas-to-write` it should have now (the
   * wanted value is read when its turn comes, so the last change wins). With
   * `strict`, a failure is thrown, else logged (the lease tick retries).
   */
  #guardWrites(task: Task, strict = false): Promise<void> {
    const run = task.guarding.then(async () => {
      const want = this.#wantedGuard(task);
      const proc = task.proc;
      if (!proc || task.phase === "stopping" || task.phase === "done") return;
      if (task.guard === want && !strict) return;
      try {
        await proc.client.setMinReplicas(want, task.maxLagSeconds, this.#opts.commandTimeoutMs);
        if (task.guard !== want) {
          this.#log(`Task ${task.id}: min-replicas-to-write ${want}`);
        }
        task.guard = want;
      } catch (error) {
        const text = `Task ${task.id}: cannot set min-replicas-to-write ${want}: ${
          errorText(error)
        }`;
        if (strict) throw new Error(text, { cause: error });
        this.#log(text);
      }
    });
    task.guarding = run.catch(() => {});
    return run;
  }

  /** The deadline of a check of `task` now: its monitor's (adapted to answer times). */
  #checkTimeout(task: Task): number {
    return task.monitor?.timeoutMs ?? this.#opts.checkTimeoutMs;
  }

  #noteEpoch(instance: string, epoch: number): void {
    if (epoch > (this.#epochs.get(instance) ?? 0)) this.#epochs.set(instance, epoch);
  }

  /** Re-reads INFO of `task` after a role change and sends stats at once. */
  async #refresh(task: Task): Promise<void> {
    try {
      task.info = await task.proc!.client.info(this.#checkTimeout(task));
    } catch {
      // The monitor will tell.
    }
    this.#sendStats(true);
  }
}
