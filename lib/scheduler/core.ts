/**
 * The scheduler core: the one owner of the instance state. Everything that
 * changes it — API requests, Mesos events, timer ticks — goes through one
 * queue and runs to completion before the next. Decisions come from the pure
 * `plan` and `match`; this file is the thin driver that persists each change
 * (compare-and-set) before acting on Mesos.
 *
 * @module
 */
import type { BatchWrite, Store } from "../store/store.ts";
import {
  type ExecutorInfo,
  type Offer,
  type Resource,
  type SchedulerEvent,
  type TaskInfo,
  type TaskStatus,
  TERMINAL_TASK_STATES,
} from "../mesos/types.ts";
import type { InstanceRecord, InstanceType, ProcessRecord, ProxyRecord } from "../model.ts";
import type { ProxyTaskSpec } from "../proxy/task_spec.ts";
import { processCount } from "../model.ts";
import type { ClusterOp } from "../redis/cluster.ts";
import { shardGroup, shardMastersOf, shardOfProcess } from "./cluster_plan.ts";
import {
  decodeMessage,
  encodeMessage,
  type ExecutorToScheduler,
  type RedisStats,
  type RedisTaskSpec,
  type SchedulerToExecutor,
  statusStats,
} from "../executor_messages.ts";
import {
  DEFAULT_PORT_QUARANTINE_MS,
  DEFAULT_RESOURCES,
  type Launch,
  markPortsInUse,
  match,
  notePortsInUse,
  type PlacedTask,
  type PortInUse,
  type TaskResources,
} from "./match.ts";
import { type Action, addressOf, isLive, type ObservedStats, plan } from "./plan.ts";
import { carveResources, isReserved } from "./offer_resources.ts";
import {
  buildProxyTaskInfo,
  buildTaskInfo,
  dataDirOf,
  EXECUTOR_ID,
  parseTaskId,
  taskIdOf,
} from "./tasks.ts";
import {
  defaultProxies,
  planProxies,
  PROXY_RESOURCES,
  type ProxyAction,
  proxyGroup,
  proxyMaster,
  proxyMasterVersion,
  type TellProxyAction,
  type ToldMaster,
} from "./proxy_plan.ts";
import { type DetectionOptions, hasOtherCopy, judgeLiveness, type Liveness } from "./detection.ts";
import { noteOfferRound, type SeenAgent, SPREAD_REFUSE_SECONDS, spreadPeers } from "./spread.ts";
import { LivenessChecks, type Prober } from "./liveness_checks.ts";
import type { ProbeTarget } from "../redis/probe.ts";
import { ADMIN_USER, randomSecret } from "../redis/auth.ts";
import { type InstanceView, instanceView, type StatusHead, statusHead } from "./status_view.ts";
import {
  createdEvent,
  deletedEvent,
  EventHistory,
  eventWrites,
  failoverOf,
  fencedEvent,
  type InstanceEvent,
  launchedEvent,
  lostEvent,
  type NewEvent,
  promotedEvent,
  type PromotionStart,
  type RecordedEvent,
  resizedEvent,
  runningEvent,
  scaledEvent,
} from "./events.ts";
import { type LogAnswer, LogRequests } from "./log_requests.ts";
import {
  capacityOf,
  launchSpecOf,
  minReplicasOf,
  replacesProcesses,
  type UpdateAction,
} from "./update_plan.ts";
import {
  type AgentResources,
  type AgentSize,
  infeasibleReason,
  observeAgent,
} from "./feasibility.ts";

/** The Mesos calls the scheduler makes (a `SchedulerClient` behind an adapter). */
export interface MesosPort {
  /** Launches `tasks` on one offer; unused resources are declined for `refuseSeconds`. */
  launch(offerId: string, tasks: TaskInfo[], refuseSeconds: number): Promise<void>;
  decline(offerIds: string[], refuseSeconds: number): Promise<void>;
  revive(): Promise<void>;
  suppress(): Promise<void>;
  kill(taskId: string, agentId?: string): Promise<void>;
  acknowledge(agentId: string, taskId: string, uuid: Uint8Array): Promise<void>;
  reconcile(tasks: { taskId: string; agentId?: string }[]): Promise<void>;
  message(agentId: string, executorId: string, data: Uint8Array): Promise<void>;
}

/** A CREATE request, already validated. */
export interface CreateRequest {
  name: string;
  capacityMB: number;
  masters: number;
  slaves: number;
  distribution: number;
  /** The clients' password; absent: a random one. */
  password?: string;
  /** Proxy endpoints; absent: `defaultProxies` of the instance type. */
  proxies?: number;
}

/** An UPDATE request, already validated: the fields to change (absent: unchanged). */
export interface UpdateRequest {
  name: string;
  capacityMB?: number;
  slaves?: number;
  distribution?: number;
  /** Proxy endpoints wanted (see {@linkcode Scheduler.setProxies}). */
  proxies?: number;
}

/**
 * What {@linkcode Scheduler.update} answers: `"updating"` (accepted),
 * `"unchanged"` (nothing to do), `"unknown"`, or a refusal with its reason
 * (`conflict`: the instance's state, `refused`: the agents cannot hold it).
 */
export type UpdateOutcome =
  | "updating"
  | "unchanged"
  | "unknown"
  | { conflict: string }
  | { refused: string };

/** Options of {@linkcode Scheduler}. */
export interface SchedulerOptions {
  store: Store;
  /** Key prefix, e.g. `/mr-redis`. */
  prefix: string;
  /** The ExecutorInfo put in every task. */
  executorInfo: ExecutorInfo;
  resources?: TaskResources;
  /**
   * How long a port an instance's process used on an agent is kept from other
   * instances' processes (as long as offers leave a choice), ms. Default 10 minutes.
   */
  portQuarantineMs?: number;
  /**
   * How long the store batch at the end of a burst of Mesos events given to
   * {@linkcode Scheduler.queueEvent} may wait for more events to share it, ms
   * (their acknowledgements wait for it; a Mesos call, an API request or a
   * timer pass commits at once). Default 50; 0 commits at once.
   */
  groupCommitMs?: number;
  /**
   * How long the planning pass after a routine Mesos event given to
   * {@linkcode Scheduler.queueEvent} (a TASK_RUNNING, an executor's stats)
   * or after a CREATE may wait for more of them to share it, ms. A loss, a
   * doubt or a command's answer is planned at once. Default 0 (every pass at
   * once); `sched` uses {@linkcode SCHED_PASS_DELAY_MS}.
   */
  passDelayMs?: number;
  /** Log sink (one line per call). */
  log?: (line: string) => void;
  /** Clock (ms since the epoch). */
  now?: () => number;
  /** Period of the timer tick, ms (default 1000; 0 disables it). */
  tickMs?: number;
  /** How long a failover waits for the slaves' current offsets, ms (default 300). */
  offsetQueryMs?: number;
  /** No stats from a RUNNING task for this long: in doubt, ask Mesos and check it (default 3000 ms). */
  statsSilenceMs?: number;
  /**
   * Time-outs alone (stats silence, unanswered checks) must last this long
   * before a process that does not answer the scheduler either is lost
   * (default 10000 ms).
   */
  statsLostMs?: number;
  /**
   * CREATEs that no agent could ever hold are refused only once the set of
   * known agents has not changed for this long (default 3000 ms), so that a
   * scheduler that has just subscribed, and seen only some agents, refuses
   * nothing it could place.
   */
  agentsSettleMs?: number;
  /** Other detection thresholds (see `detection.ts`). */
  detection?: Partial<DetectionOptions>;
  /** The direct check of a process in doubt (default: `probeRedis`, PING + ROLE). */
  prober?: Prober;
  /**
   * Removes the data dirs (names as in the task specs) of a deleted
   * instance, once its tasks are gone, where the scheduler can reach them
   * (the local cluster's data root on this host). Executors are asked to do
   * it as well.
   */
  removeDataDirs?: (dataDirs: string[]) => Promise<void>;
  /**
   * How long a connection to a proxy task waits for a usable master before
   * it gets an `-ERR` line, ms (default 2000).
   */
  proxyWaitMs?: number;
}

/** What {@linkcode Scheduler.snapshot} answers. */
export interface CoreSnapshot {
  /** Whether the core is subscribed to Mesos now. */
  subscribed: boolean;
  instances: {
    view: InstanceView;
    /** Process id → the executor's latest stats of its current task. */
    stats: Record<string, RedisStats>;
    /** The last `promoted` event of the history, when there is one. */
    lastPromotion?: InstanceEvent;
  }[];
  /** Every agent known from offers or holding our tasks, by id. */
  agents: {
    agentId: string;
    /** Live processes of this framework there. */
    processes: number;
    /** Memory the agent makes available to this framework (offered + what it holds), MB. */
    memOfferedMB: number;
    /** Memory this framework's tasks and executor hold there, MB. */
    memUsedMB: number;
  }[];
}

/** What {@linkcode Scheduler.logs} answers. */
export type LogsOutcome =
  | (LogAnswer & { taskId: string; agentId: string })
  | { missing: "instance" }
  | { missing: "process"; known: string[] }
  /** `retry`: it may work in a moment (503), else never for this process (409). */
  | { unavailable: string; retry: boolean };

/** What {@linkcode Scheduler.create} answers. */
export type CreateOutcome = "created" | "exists" | "deleting" | { refused: string };

interface ProcState {
  rec: ProcessRecord;
  version: string | null;
}

interface ProxyState {
  rec: ProxyRecord;
  version: string | null;
}

interface InstState {
  rec: InstanceRecord;
  version: string | null;
  procs: Map<string, ProcState>;
  /** Its proxy endpoints (`proxy_plan.ts`). */
  proxies: Map<string, ProxyState>;
  /** While the batch that creates it is not committed: that batch's end. */
  durable?: Promise<void>;
}

/**
 * Ports that processes left (relaunched elsewhere, or their instance deleted)
 * and that stay kept for their instance until `until`: stored, so a restarted
 * scheduler keeps the quarantine that process records no longer show. One
 * record per agent and block of {@linkcode RETIRED_BLOCK_PORTS} ports, each
 * port at most once: a record stays small however many ports are retired
 * (a single record of every agent grew with churn past what ZooKeeper or
 * etcd take in one value), and a retirement rewrites only its own block.
 */
interface RetiredPorts {
  ports: { port: number; instance: string; until: number }[];
}

/** The single record of every agent's retired ports that older versions stored (read, then deleted). */
interface LegacyRetiredPorts {
  ports: { agentId: string; port: number; instance: string; until: number }[];
}

/** Ports per stored block of retired ports: a record is at most about 110 KiB (64-character names). */
const RETIRED_BLOCK_PORTS = 1024;

/**
 * The resources of the executor running on one agent, when they are not the
 * default unreserved ones (taken from resources reserved for the role): every
 * later task there must carry the same ExecutorInfo.
 */
interface AgentExecutor {
  resources: Resource[];
}

type StoredRecord =
  | InstanceRecord
  | ProcessRecord
  | ProxyRecord
  | RetiredPorts
  | AgentExecutor;

/** What holds a stored record in memory: the record and its store version. */
interface Holder {
  rec: StoredRecord;
  version: string | null;
}

/** A record write waiting for the next flush. */
interface Staged {
  key: string;
  holder: Holder;
  /** The record before this batch (put back if the batch fails). */
  before: StoredRecord;
  /** The record to write. */
  rec: StoredRecord;
  /** Written without comparing versions (a leftover key may be overwritten). */
  unconditional: boolean;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A failed batch is reported where it is flushed; waiters decide for themselves.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

interface OffsetQuery {
  deadline: number;
  /** commandId → process id, for the answers still awaited. */
  pending: Map<string, string>;
  /** Process id → offset answered. */
  offsets: Record<string, number>;
  /** Processes whose executor answered with an error. */
  failed: string[];
}

interface Inflight {
  commandId: string;
  kind: SchedulerToExecutor["kind"];
  instance: string;
  procId: string;
  sentAt: number;
}

/** Raised when a compare-and-set write lost against another writer. */
export class ConflictError extends Error {
  /** The version found in the store (`null` when the key is gone). */
  readonly current: string | null;
  /** The key another writer changed (empty when not known). */
  readonly key: string;
  /** Creates the error. */
  constructor(message: string, current: string | null, options?: ErrorOptions & { key?: string }) {
    super(message, options);
    this.name = "ConflictError";
    this.current = current;
    this.key = options?.key ?? "";
  }
}

/** Terminal states, and the two after which the task may be gone as far as we know. */
const TERMINAL_OR_LOST: ReadonlySet<string> = new Set([
  ...TERMINAL_TASK_STATES,
  "TASK_UNREACHABLE",
  "TASK_UNKNOWN",
]);
const MAYBE_ALIVE = new Set(["TASK_UNREACHABLE", "TASK_UNKNOWN", "TASK_LOST"]);
const COMMAND_TIMEOUT_MS = 5_000;
/** REVIVEs are spaced at least this much (new work waits at most this long for offers). */
const REVIVE_MIN_INTERVAL_MS = 100;
const IMPLICIT_RECONCILE_MS = 10 * 60_000;
/** How often the histories of deleted instances are checked for expiry. */
const HISTORY_SWEEP_MS = 10 * 60_000;
/** How long a lost process waits for an offer from its own agent (to keep its data). */
const PIN_AGENT_MS = 10_000;
/**
 * How long after a TASK_RUNNING that brought stats a stats message read
 * before them is kept from replacing them (messages and updates travel apart).
 */
const RUNNING_STATS_WINDOW_MS = 5_000;
/** Proxy tasks told their master in one `proxy-masters` message at most. */
const MAX_TELLS_PER_MESSAGE = 500;
/**
 * How much longer than `offsetQueryMs` the failover of a master retired by an
 * UPDATE waits for every slave to tell its offset.
 */
const PLANNED_OFFSET_WAIT_MS = 10_000;
/**
 * How long the master an UPDATE retires refuses writes while waiting for a
 * slave to acknowledge all it took, before it is killed anyway (after up to
 * 1.5 s with writes still taken, for its slaves to take the stream).
 */
const PLANNED_DRAIN_MS = 5_000;
/**
 * How much longer than `offsetQueryMs` an ordinary failover waits for slaves
 * that have not told their offset yet (a slow executor under load). Past it,
 * their last reported offsets count: a stale one could elect a slave missing
 * writes another slave acknowledged, so this is not cut short.
 */
const UNPLANNED_OFFSET_WAIT_MS = 1_700;
/** After subscribing (or a refusal), offers are not suppressed until some arrive or this passes. */
const AGENT_LEARN_MS = 5_000;
/**
 * Most queued jobs in a row before the planning pass and the store batch
 * owed to them run, even with more jobs waiting: a steady stream of events
 * must not hold back acknowledgements (they wait for the batch).
 */
const MAX_BURST_JOBS = 64;
const DEFAULT_GROUP_COMMIT_MS = 50;
/**
 * The `passDelayMs` of `sched`: a burst of creates or of TASK_RUNNINGs (70
 * singles: 140 of them, spread over two seconds) reaches the scheduler one
 * event at a time, and a pass looks at every instance. 5 ms cut the passes
 * of such a create from about 160 to 30–50 and the scheduler's CPU by a third.
 */
export const SCHED_PASS_DELAY_MS = 5;

/** Relaunch delay after `failures` consecutive failures: 0.5 s doubling, capped at 30 s. */
export function backoffMs(failures: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, failures - 1));
}

function describeStatus(s: TaskStatus): string {
  const parts: string[] = [s.state];
  if (s.reason) parts.push(s.reason);
  if (s.source) parts.push(`from ${s.source}`);
  return `${parts.join(" ")}${s.message ? `: ${s.message}` : ""}`;
}

/** `100 MB, 2 slaves, Distribution 1`. */
function describeShape(s: { capacityMB: number; slaves: number; distribution: number }): string {
  return `${s.capacityMB} MB, ${s.slaves} slave${
    s.slaves === 1 ? "" : "s"
  }, Distribution ${s.distribution}`;
}

/** The scheduler core. See the module doc. */
export class Scheduler {
  readonly #store: Store;
  readonly #prefix: string;
  readonly #executorInfo: ExecutorInfo;
  readonly #resources: TaskResources;
  readonly #portQuarantineMs: number;
  /** Ports lately used on each agent and the instance they are kept for ({@linkcode notePortsInUse}). */
  #portQuarantine: Map<string, { instance: string; until: number }> = new Map();
  /**
   * Agent id → port → until when (ms): ports a task could not start on (a
   * process Mesos does not know holds it, say). Placed last, and a relaunch
   * does not prefer it.
   */
  readonly #failedPorts = new Map<string, Map<number, number>>();
  /**
   * The stored part of the quarantine, ports no process record holds any
   * more: store key (`#retiredKey`, one per agent and block) → its record.
   */
  readonly #retired = new Map<string, Holder>();
  /** Keys to delete with the next commit (the legacy retired-ports record). */
  readonly #stagedDeletes = new Set<string>();
  /** Instances created since the last commit began: the next batch creates them. */
  #creating = new Map<string, InstState>();
  /** API requests (CREATE, DELETE) answered once the next batch is stored. */
  #requestsWaiting = 0;
  /** Agent id → its executor's record, when its resources are not the default ones. */
  readonly #agentExecutors = new Map<string, Holder>();
  readonly #log: (line: string) => void;
  readonly #now: () => number;
  readonly #tickMs: number;
  readonly #offsetQueryMs: number;
  readonly #agentsSettleMs: number;
  /** Failure detection: direct checks of processes in doubt (rules in `detection.ts`). */
  readonly #liveness: LivenessChecks;
  readonly #removeDataDirs: ((dataDirs: string[]) => Promise<void>) | undefined;
  readonly #proxyWaitMs: number;
  /** Proxy task id → the master it was last told (`proxy_plan.ts`). */
  readonly #proxyTold = new Map<string, ToldMaster>();
  /** `proxy-master(s)` command id → the proxy tasks it went to. */
  readonly #proxyCommands = new Map<string, string[]>();
  /** `proxy-masters` command id → the executor it went to (`agentId\nexecutorId`). */
  readonly #batchTells = new Map<string, string>();
  /** Executors that answered that they do not know `proxy-masters`. */
  readonly #singleTells = new Set<string>();

  readonly #instances = new Map<string, InstState>();
  readonly #stats = new Map<string, RedisStats>();
  readonly #inflight = new Map<string, Inflight>();
  /** Instance name → the offset query of its ongoing failover. */
  readonly #offsetQueries = new Map<string, OffsetQuery>();
  /** Task id → when its last stats (or its TASK_RUNNING) arrived. */
  readonly #statsSeenAt = new Map<string, number>();
  /**
   * Task id → the executor's time (`at`) of the stats held in `#stats`, and
   * when they came with its TASK_RUNNING, our time then. A stats message read
   * before that update but delivered after it (within RUNNING_STATS_WINDOW_MS)
   * must not take back the sync it reported; a retried TASK_RUNNING must not
   * bring back stats older than a message's.
   */
  readonly #statsAt = new Map<string, { at: number; runningSeen?: number }>();
  /** Task id → when Mesos was last asked about it for stats silence. */
  readonly #silenceAskedAt = new Map<string, number>();
  /** Task id → when an unknown task reporting itself master was last killed. */
  readonly #strayKilledAt = new Map<string, number>();
  #subscribedAt = 0;
  /** When the last Mesos event arrived (proof that the event stream flows). */
  #lastEventAt = 0;
  #version = 0;
  #placementReasons: Record<string, string> = {};
  #mesos: MesosPort | undefined;
  #subscribed = false;
  #suppressed = false;
  #lastLaunchable = new Set<string>();
  #needRevive = false;
  #lastReviveAt = 0;
  /** A deferred REVIVE is scheduled. */
  #reviveTimer: ReturnType<typeof setTimeout> | undefined;
  /** A reconcile pass is queued and has not started yet. */
  #kickQueued = false;
  /** Acknowledgements sent and not answered yet. */
  readonly #acks = new Set<Promise<boolean>>();
  #lastImplicitReconcile = 0;
  /** Tasks asked about in the explicit reconciliation and not answered yet. */
  #unanswered = new Map<string, string | undefined>();
  #reconcileRound = 0;
  #reconcileNextAt = 0;
  /** Agents' last offers: what they left and when (see spread.ts). */
  #seenAgents: ReadonlyMap<string, SeenAgent> = new Map();
  /** Agents seen in offers since subscribing, with their estimated size (see feasibility.ts). */
  readonly #agents = new Map<string, AgentSize>();
  /** When an agent was last added to or removed from `#agents` (or the subscription began). */
  #agentSetChangedAt = 0;
  /** Offers arrived since the agents were last to be learned. */
  #offersSeen = false;
  /** Until then offers are not suppressed while none have arrived (to learn the agents). */
  #learnAgentsUntil = 0;
  /** When a refusal last asked for offers again. */
  #refusalReviveAt = -Infinity;
  #frameworkId: string | undefined;
  #frameworkIdVersion: string | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #timer: ReturnType<typeof setInterval> | undefined;
  #commandSeq = 0;
  #stopped = false;
  /** Record writes staged for the next batch, by key. */
  readonly #staged = new Map<string, Staged>();
  /** Settles when the staged writes are committed (or failed). */
  #pending: Deferred | undefined;
  /** The batch being committed now. */
  #committing: Promise<void> | undefined;
  #flushChain: Promise<void> = Promise.resolve();
  #commits = 0;
  /** Jobs queued and not started yet (see `#enqueue`). */
  #waiting = 0;
  /** Called after every job (see `onChange`). */
  readonly #changeListeners = new Set<() => void>();
  /** Jobs run since the last planning pass and batch owed to a burst (see `#enqueue`). */
  #burst = 0;
  readonly #groupCommitMs: number;
  readonly #passDelayMs: number;
  /** A coalesced planning pass is due when it fires (see `passDelayMs`). */
  #passTimer: ReturnType<typeof setTimeout> | undefined;
  /** The event being handled came from `queueEvent` (the event stream). */
  #streamed = false;
  /** The group commit waiting for more events (see `queueEvent`). */
  #groupTimer: ReturnType<typeof setTimeout> | undefined;
  /** When the group commit of `#groupTimer` is due (`performance.now()`). */
  #groupDue = 0;
  /** An event's planning pass was left to the last job of its burst. */
  #reconcileOwed = false;
  /** Every instance's last events (events.ts); written with the batch of their change. */
  readonly #history: EventHistory;
  /** Events recorded since the last flush. */
  #stagedEvents: RecordedEvent[] = [];
  /** Instance name → when its current promotion was first sent, and in place of whom. */
  readonly #promoteStartedAt = new Map<string, PromotionStart>();
  /** LOGS requests waiting for their executor's answer (log_requests.ts). */
  readonly #logRequests = new LogRequests();
  /** When the histories of deleted instances were last looked at. */
  #historySweptAt = 0;

  /** Creates a core; call {@linkcode Scheduler.load} before anything else. */
  constructor(options: SchedulerOptions) {
    this.#store = options.store;
    this.#prefix = options.prefix.replace(/\/+$/, "");
    this.#executorInfo = options.executorInfo;
    this.#resources = options.resources ?? DEFAULT_RESOURCES;
    this.#portQuarantineMs = options.portQuarantineMs ?? DEFAULT_PORT_QUARANTINE_MS;
    this.#groupCommitMs = options.groupCommitMs ?? DEFAULT_GROUP_COMMIT_MS;
    this.#passDelayMs = options.passDelayMs ?? 0;
    this.#log = options.log ?? (() => {});
    this.#now = options.now ?? Date.now;
    this.#tickMs = options.tickMs ?? 1000;
    this.#offsetQueryMs = options.offsetQueryMs ?? 300;
    this.#agentsSettleMs = options.agentsSettleMs ?? 3_000;
    this.#liveness = new LivenessChecks(
      {
        ...options.detection,
        ...(options.statsSilenceMs !== undefined ? { statsSilenceMs: options.statsSilenceMs } : {}),
        ...(options.statsLostMs !== undefined ? { lostAfterMs: options.statsLostMs } : {}),
      },
      options.prober,
      this.#now,
    );
    this.#removeDataDirs = options.removeDataDirs;
    this.#history = new EventHistory({ prefix: this.#prefix });
    this.#proxyWaitMs = options.proxyWaitMs ?? 2000;
  }

  // ---- store layout ----

  #instKey(name: string): string {
    return `${this.#prefix}/instances/${name}`;
  }
  #procKey(name: string, procId: string): string {
    return `${this.#instKey(name)}/procs/${procId}`;
  }
  #proxyKey(name: string, proxyId: string): string {
    return `${this.#instKey(name)}/proxies/${proxyId}`;
  }
  #fwKey(): string {
    return `${this.#prefix}/framework_id`;
  }
  #retiredPrefix(): string {
    return `${this.#prefix}/port_quarantine`;
  }
  #retiredKey(agentId: string, port: number): string {
    return `${this.#retiredPrefix()}/${encodeURIComponent(agentId)}/${
      Math.floor(port / RETIRED_BLOCK_PORTS)
    }`;
  }
  /** Where older versions kept every agent's retired ports in one record. */
  #legacyRetiredKey(): string {
    return `${this.#prefix}/retired_ports`;
  }
  #executorKey(agentId: string): string {
    return `${this.#prefix}/executors/${encodeURIComponent(agentId)}`;
  }

  /** The FrameworkID loaded from the store (or set by SUBSCRIBED). */
  get frameworkId(): string | undefined {
    return this.#frameworkId;
  }

  /**
   * Loads the framework id and every instance with its processes from the
   * store, eagerly, so STATUS lists them at once. Starts the timer tick.
   */
  async load(options: { readOnly?: boolean } = {}): Promise<void> {
    const fw = await this.#store.get(this.#fwKey());
    if (fw) {
      this.#frameworkId = fw.value || undefined;
      this.#frameworkIdVersion = fw.version;
    }
    await this.#loadRetiredPorts(options.readOnly ?? false);
    await this.#loadAgentExecutors();
    const base = `${this.#prefix}/instances/`;
    const entries = await this.#store.list(`${this.#prefix}/instances`);
    const procs: {
      name: string;
      id: string;
      rec: ProcessRecord | ProxyRecord;
      version: string;
      proxy: boolean;
    }[] = [];
    for (const e of entries) {
      if (!e.key.startsWith(base)) continue;
      const rest = e.key.slice(base.length).split("/");
      try {
        if (rest.length === 1 && rest[0]) {
          const rec = JSON.parse(e.value) as InstanceRecord;
          this.#instances.set(rec.name, {
            rec,
            version: e.version,
            procs: new Map(),
            proxies: new Map(),
          });
        } else if (rest.length === 3 && (rest[1] === "procs" || rest[1] === "proxies")) {
          procs.push({
            name: rest[0]!,
            id: rest[2]!,
            rec: JSON.parse(e.value),
            version: e.version,
            proxy: rest[1] === "proxies",
          });
        }
      } catch (error) {
        this.#log(`Skipping unreadable store key "${e.key}": ${(error as Error).message}`);
      }
    }
    for (const p of procs) {
      const inst = this.#instances.get(p.name);
      if (inst && p.proxy) {
        inst.proxies.set(p.id, { rec: p.rec as ProxyRecord, version: p.version });
      } else if (inst) inst.procs.set(p.id, { rec: p.rec as ProcessRecord, version: p.version });
      else if (!options.readOnly) {
        this.#log(`Removing orphan process key of unknown instance "${p.name}"`);
        const key = p.proxy ? this.#proxyKey(p.name, p.id) : this.#procKey(p.name, p.id);
        await this.#store.delete(key).catch(() => {});
      }
    }
    // A read-only snapshot (a standby's STATUS) skips the histories: a
    // standby reads one from the store when EVENTS asks (events.ts, readHistory).
    if (!options.readOnly) {
      const extra = this.#history.load(await this.#store.list(this.#history.keyPrefix), this.#log);
      await this.#store.batch(extra).catch((e) =>
        this.#log(`Cannot trim the event histories: ${(e as Error).message}`)
      );
    }
    this.#log(`Loaded ${this.#instances.size} instance(s) from ${this.#store.description}`);
    if (this.#tickMs > 0 && !options.readOnly) {
      this.#timer = setInterval(() => {
        this.tick().catch(() => {});
      }, this.#tickMs);
    }
  }

  async #loadAgentExecutors(): Promise<void> {
    const base = `${this.#prefix}/executors/`;
    for (const e of await this.#store.list(`${this.#prefix}/executors`)) {
      if (!e.key.startsWith(base)) continue;
      try {
        const rec = JSON.parse(e.value) as AgentExecutor;
        if (!Array.isArray(rec?.resources)) throw new TypeError("no resources list");
        this.#agentExecutors.set(decodeURIComponent(e.key.slice(base.length)), {
          rec,
          version: e.version,
        });
      } catch (error) {
        this.#log(`Ignoring unreadable store key "${e.key}": ${(error as Error).message}`);
      }
    }
  }

  /**
   * The ExecutorInfo for a launch on `agentId`: a new executor takes its own
   * carved resources (stored when they are not the default unreserved ones);
   * a running one keeps what it was launched with.
   */
  #executorFor(agentId: string, carved: Resource[] | undefined): ExecutorInfo {
    const holder = this.#agentExecutors.get(agentId);
    const known = (holder?.rec as AgentExecutor | undefined)?.resources ?? [];
    if (carved === undefined) {
      return known.length > 0 ? { ...this.#executorInfo, resources: known } : this.#executorInfo;
    }
    // Default resources are stored as an empty list (when something else was stored before).
    const resources = carved.some(isReserved) ? carved : [];
    if (holder || resources.length > 0) {
      const h = holder ?? { rec: { resources: [] } as AgentExecutor, version: null };
      this.#agentExecutors.set(agentId, h);
      this.#stage(this.#executorKey(agentId), h, { resources }, true);
    }
    return resources.length > 0 ? { ...this.#executorInfo, resources } : this.#executorInfo;
  }

  async #loadRetiredPorts(readOnly: boolean): Promise<void> {
    const now = this.#now();
    const next = new Map(this.#portQuarantine);
    const valid = (e: { port?: unknown; instance?: unknown; until?: unknown } | undefined) =>
      Number.isInteger(e?.port) && typeof e?.instance === "string" &&
      typeof e.until === "number";
    const prefix = `${this.#retiredPrefix()}/`;
    for (const kv of await this.#store.list(this.#retiredPrefix())) {
      if (!kv.key.startsWith(prefix)) continue;
      const agentId = decodeURIComponent(kv.key.slice(prefix.length).split("/")[0] ?? "");
      try {
        const rec = JSON.parse(kv.value) as RetiredPorts;
        if (!Array.isArray(rec?.ports)) throw new TypeError("no ports list");
        const live = rec.ports.filter((e) => valid(e) && e.until > now);
        // Known with its version even when nothing in it is live: the next write is a compare-and-set.
        this.#retired.set(kv.key, { rec: { ports: live } as RetiredPorts, version: kv.version });
        for (const e of live) {
          next.set(`${agentId}:${e.port}`, { instance: e.instance, until: e.until });
        }
      } catch (error) {
        this.#log(`Ignoring unreadable store key "${kv.key}": ${(error as Error).message}`);
      }
    }
    this.#portQuarantine = next;
    const legacy = await this.#store.get(this.#legacyRetiredKey());
    if (!legacy) return;
    try {
      const rec = JSON.parse(legacy.value) as LegacyRetiredPorts;
      if (!Array.isArray(rec?.ports)) throw new TypeError("no ports list");
      const live = rec.ports.filter((e) =>
        valid(e) && typeof e.agentId === "string" && e.until > now
      );
      for (const e of live) {
        const key = `${e.agentId}:${e.port}`;
        const held = this.#portQuarantine.get(key);
        if (!held || held.until < e.until) {
          this.#portQuarantine.set(key, { instance: e.instance, until: e.until });
        }
      }
      // Moved to the per-agent records with the next commit, and the old record deleted.
      if (!readOnly) this.#storeRetired(live, now);
    } catch (error) {
      this.#log(
        `Ignoring unreadable store key "${this.#legacyRetiredKey()}": ${(error as Error).message}`,
      );
    }
    if (!readOnly) {
      this.#stagedDeletes.add(this.#legacyRetiredKey());
      this.#pending ??= deferred();
    }
  }

  /** Runs one reconcile pass (what the timer does every `tickMs`). */
  tick(): Promise<void> {
    return this.#enqueue(() => this.#reconcile());
  }

  /** Connects the core to Mesos (before the client starts delivering events). */
  attach(mesos: MesosPort): void {
    this.#mesos = mesos;
  }

  /** Stops the timer and waits for the queue to drain. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#reviveTimer);
    this.#reviveTimer = undefined;
    clearTimeout(this.#passTimer);
    this.#passTimer = undefined;
    if (this.#groupTimer !== undefined) {
      // The writes a group commit was gathering: stored now (acknowledgements wait for them).
      clearTimeout(this.#groupTimer);
      this.#groupTimer = undefined;
      await this.#enqueue(() => this.#flush()).catch(() => {});
    }
    await this.#queue.catch(() => {});
    await Promise.allSettled([...this.#acks]);
    await this.#liveness.settled();
    this.#logRequests.cancelAll("The scheduler stopped");
  }

  /**
   * Runs `fn` after everything queued before it; the single writer of the
   * state. `groupCommit`: when this job ends a burst, its writes may wait
   * `groupCommitMs` for later events to share their batch (see `queueEvent`).
   */
  #enqueue<T>(fn: () => Promise<T>, groupCommit = false): Promise<T> {
    // Every change of state happens inside a queued job: bumping the version
    // as a job starts and ends tells readers (the STATUS list cache) that
    // what they rendered may be out of date.
    this.#waiting++;
    const run = this.#queue.then(async () => {
      this.#waiting--;
      this.#version++;
      try {
        return await fn();
      } finally {
        // A burst of queued jobs (events arriving together) ends with one
        // planning pass and one store batch: the last job of the burst does
        // both for the jobs before it (an acknowledgement waits for the batch),
        // or the job that makes the burst MAX_BURST_JOBS long.
        if (this.#waiting === 0 || ++this.#burst >= MAX_BURST_JOBS) {
          this.#burst = 0;
          if (this.#reconcileOwed) {
            this.#reconcileOwed = false;
            await this.#reconcile().catch((e) =>
              this.#log(`Reconcile failed: ${(e as Error).message}`)
            );
          }
          // The writes not flushed yet (no Mesos call followed them): one batch.
          // With new instances in it, after one turn of the event loop: the
          // CREATEs whose requests are read by then join it (else each one
          // would end a burst of its own, and the next request would be read
          // only after its commit).
          if (!this.#stopped && this.#requestsWaiting > 0) this.#groupCommit(0);
          else if (groupCommit && this.#groupCommitMs > 0 && !this.#stopped) this.#groupCommit();
          else {
            await this.#flush().catch((e) =>
              this.#log(`Store write failed: ${(e as Error).message}`)
            );
          }
        }
        this.#version++;
        for (const listener of this.#changeListeners) {
          try {
            listener();
          } catch (error) {
            this.#log(`A change listener failed: ${(error as Error).message}`);
          }
        }
      }
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * The planning pass after an event: now when no other job waits in the
   * queue, else once by the last job of the burst (see `#enqueue`). A
   * `routine` event from the stream (see `passDelayMs`) leaves it to a pass
   * `passDelayMs` later, which the events arriving meanwhile share: a burst
   * of creates or TASK_RUNNINGs reaches the scheduler spread over time, one
   * at a time, and each pass looks at every instance.
   */
  async #reconcileAfterEvent(routine = false): Promise<void> {
    if (this.#waiting > 0) {
      this.#reconcileOwed = true;
      return;
    }
    if (routine && this.#streamed && this.#passDelayMs > 0) {
      this.#passSoon();
      return;
    }
    this.#reconcileOwed = false;
    await this.#reconcile();
  }

  /** A planning pass `passDelayMs` from now, unless one runs before (see `#reconcileAfterEvent`). */
  #passSoon(): void {
    if (this.#passDelayMs <= 0) return this.#kick();
    if (this.#passTimer !== undefined || this.#stopped) return;
    this.#passTimer = setTimeout(() => {
      this.#passTimer = undefined;
      this.#kick();
    }, this.#passDelayMs);
  }

  // ---- reads (synchronous snapshots of the state) ----

  /** Changes whenever the state may have changed (see `#enqueue`). */
  version(): number {
    return this.#version;
  }

  /** The STATUS view of one instance, or `undefined`. */
  status(name: string): InstanceView | undefined {
    const inst = this.#instances.get(name);
    if (!inst) return undefined;
    return instanceView(
      inst.rec,
      [...inst.procs.values()].map((p) => p.rec),
      this.#stats,
      this.#placementReasons[name],
      [...inst.proxies.values()].map((p) => p.rec),
    );
  }

  /**
   * Calls `listener` after every change of state (the end of every queued
   * job; keep it cheap) until the returned function is called: what a STATUS
   * long poll waits on instead of polling.
   */
  onChange(listener: () => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** What a STATUS long poll compares (see `statusHead`), or `undefined`. */
  statusHead(name: string): StatusHead | undefined {
    const inst = this.#instances.get(name);
    if (!inst) return undefined;
    return statusHead(inst.rec, [...inst.procs.values()].map((p) => p.rec), this.#stats);
  }

  /**
   * The clients' password of an instance: `undefined` when the instance is
   * unknown, `null` when it was made before passwords (it has none).
   */
  credentials(name: string): { password: string | null } | undefined {
    const inst = this.#instances.get(name);
    if (!inst) return undefined;
    return { password: inst.rec.password ?? null };
  }

  /**
   * The event history of `name`, oldest first (at most 100 events, see
   * events.ts); `undefined` when the name has none (never existed, or was
   * deleted more than a day ago). A deleted instance keeps its history.
   */
  events(name: string): readonly InstanceEvent[] | undefined {
    return this.#history.events(name);
  }

  /**
   * A consistent snapshot of what `/metrics` shows (lib/api/metrics.ts),
   * taken at one moment: every instance's STATUS view with the latest stats
   * of its processes and its last promotion, and the agents with what this
   * framework holds there.
   */
  snapshot(): CoreSnapshot {
    const held = this.#heldPerAgent();
    const counts = new Map<string, number>();
    const instances = this.list().map((view) => {
      const inst = this.#instances.get(view.Name)!;
      const stats: Record<string, RedisStats> = {};
      for (const { rec } of inst.procs.values()) {
        const s = this.#stats.get(rec.taskId);
        if (s) stats[rec.id] = s;
        if (rec.agentId && isLive(rec)) counts.set(rec.agentId, (counts.get(rec.agentId) ?? 0) + 1);
      }
      const lastPromotion = this.#history.last(view.Name, (e) => e.kind === "promoted");
      return { view, stats, ...(lastPromotion ? { lastPromotion } : {}) };
    });
    const ids = new Set([...this.#agents.keys(), ...held.keys()]);
    const agents = [...ids].sort().map((agentId) => {
      const h = held.get(agentId) ?? { cpus: 0, memMB: 0 };
      const processes = counts.get(agentId) ?? 0;
      // Our executor holds its share where our tasks run.
      const usedMB = h.memMB + (processes > 0 ? this.#resources.executorMemMB : 0);
      return {
        agentId,
        processes,
        memOfferedMB: this.#agents.get(agentId)?.memMB ?? usedMB,
        memUsedMB: usedMB,
      };
    });
    return { subscribed: this.#subscribed, instances, agents };
  }

  /**
   * The last `lines` lines of the redis-server log of process `procId` of
   * `name`, read by the executor on its agent (a `logs` command and its
   * result, log_requests.ts). `{missing}` names what is unknown;
   * `{unavailable}` says why no executor can be asked; a `LogRequestError`
   * when it refused or did not answer in time.
   */
  async logs(name: string, procId: string, lines: number): Promise<LogsOutcome> {
    type Sent = { commandId: string; agentId: string; taskId: string };
    const sent = await this.#enqueue(async (): Promise<LogsOutcome | Sent> => {
      const inst = this.#instances.get(name);
      if (!inst) return { missing: "instance" as const };
      const p = inst.procs.get(procId);
      if (!p) return { missing: "process" as const, known: [...inst.procs.keys()] };
      if (!p.rec.agentId || !p.rec.taskId) {
        return {
          unavailable: `Process "${procId}" of instance "${name}" was never placed on an agent`,
          retry: false,
        };
      }
      if (!this.#mesos || !this.#subscribed) {
        return {
          unavailable: "The scheduler is not subscribed to Mesos; try again in a moment",
          retry: true,
        };
      }
      const dataDir = dataDirOf(name, inst.rec.createdAt, procId);
      const commandId = await this.#command(inst, p, {
        kind: "logs",
        taskId: p.rec.taskId,
        dataDir,
        lines,
      });
      return { commandId: commandId!, agentId: p.rec.agentId, taskId: p.rec.taskId };
    });
    if (!("commandId" in sent)) return sent;
    const answer = await this.#logRequests.wait(
      sent.commandId,
      `The executor of ${procId} on agent ${sent.agentId}`,
    );
    return { ...answer, taskId: sent.taskId, agentId: sent.agentId };
  }

  /** The STATUS view of every instance, oldest first. */
  list(): InstanceView[] {
    return [...this.#instances.values()]
      .sort((a, b) => a.rec.createdAt - b.rec.createdAt || (a.rec.name < b.rec.name ? -1 : 1))
      .map((i) => this.status(i.rec.name)!);
  }

  // ---- API requests ----

  /**
   * Creates an instance; `"exists"` when the name is taken, `"deleting"`
   * while it is being deleted, `{refused}` when no agent registered now could
   * ever hold it (see feasibility.ts).
   */
  create(req: CreateRequest): Promise<CreateOutcome> {
    return this.#create(req, 1);
  }

  async #create(req: CreateRequest, attempt: number): Promise<CreateOutcome> {
    // The records are staged in the queue and stored with the batch at the
    // end of the burst: creates that arrive together (70 at once) share a
    // commit instead of holding the queue one fsync each. The answer waits
    // for that batch: "created" means stored.
    const staged = await this.#enqueue(
      async (): Promise<
        CreateOutcome | { wait: Promise<void> } | { created: Promise<void>; type: InstanceType }
      > => {
        const old = this.#instances.get(req.name);
        // Created by a batch still on its way: answer once it is known whether it exists.
        if (old?.durable) return { wait: old.durable };
        if (old) return old.rec.status === "DELETING" ? "deleting" as const : "exists" as const;
        const refused = this.#infeasible(req);
        if (refused !== undefined) {
          this.#log(`CREATE ${req.name} refused: ${refused}`);
          await this.#learnAgents();
          return { refused };
        }
        // The name's last instance is forgotten in the batch being gathered:
        // its keys go first (the new record is written only where none is).
        if (this.#stagedDeletes.has(this.#instKey(req.name))) await this.#flush();
        const now = this.#now();
        const type: InstanceType = req.masters > 1 ? "RC" : req.slaves === 0 ? "S" : "MS";
        const total = processCount(req);
        const rec: InstanceRecord = {
          name: req.name,
          type,
          status: "CREATING",
          capacityMB: req.capacityMB,
          masters: req.masters,
          slaves: req.slaves,
          distribution: req.distribution,
          proxies: req.proxies ?? defaultProxies(type),
          password: req.password ?? randomSecret(),
          adminPassword: randomSecret(),
          ...(type === "RC"
            ? { shardMasters: Array.from({ length: req.masters }, (_, k) => `p${k + 1}`) }
            : { masterId: "p1" }),
          reason: `Waiting for ${total} of ${total} processes to be placed`,
          lastProcId: total,
          rev: 1,
          createdAt: now,
          updatedAt: now,
        };
        // The record and its processes go in one batch; the record only if its key is free.
        const inst: InstState = { rec, version: null, procs: new Map(), proxies: new Map() };
        this.#stage(this.#instKey(req.name), inst, rec);
        for (let i = 1; i <= total; i++) {
          const p: ProcessRecord = {
            id: `p${i}`,
            taskId: "",
            role: i <= req.masters ? "master" : "slave",
            ...(type === "RC" ? { shard: shardOfProcess(i, req.masters) } : {}),
            state: "PENDING",
            launchCount: 0,
            failures: 0,
            updatedAt: now,
          };
          const proc: ProcState = { rec: p, version: null };
          // A leftover key from an interrupted delete is overwritten.
          this.#stage(this.#procKey(req.name, p.id), proc, p, true);
          inst.procs.set(p.id, proc);
        }
        this.#instances.set(req.name, inst);
        this.#event(req.name, createdEvent({ type, ...req }));
        // Resolves with the batch that stores the records, which the end of
        // this burst commits (or a Mesos call before it); a failed batch
        // takes the instance back out (#commit).
        const durable = this.#durable();
        inst.durable = durable.catch(() => {});
        this.#creating.set(req.name, inst);
        this.#requestsWaiting++;
        this.#passSoon();
        return { created: durable, type };
      },
    );
    if (typeof staged === "string" || "refused" in staged) return staged;
    if ("wait" in staged) {
      await staged.wait;
      return await this.#create(req, attempt);
    }
    try {
      await staged.created;
    } catch (error) {
      if (error instanceof ConflictError) {
        // Its own key was written by someone else: the name is taken.
        if (error.key === this.#instKey(req.name)) return "exists" as const;
        // Another write of the batch met one: this create goes in the next batch.
        if (attempt < 3) return await this.#create(req, attempt + 1);
      }
      throw error;
    }
    this.#log(
      `Instance ${req.name} accepted: ${staged.type}, ${req.capacityMB} MB, ${
        staged.type === "RC"
          ? `${req.masters} shards × ${req.slaves} replica(s)`
          : `${req.slaves} slave(s)`
      }, Distribution ${req.distribution}`,
    );
    return "created" as const;
  }

  /**
   * Why `req` could never be placed on the agents registered now, or
   * `undefined` (also while the agents are not known well enough to say).
   */
  #infeasible(req: CreateRequest): string | undefined {
    if (!this.#subscribed || this.#agents.size === 0) return undefined;
    if (this.#now() - this.#agentSetChangedAt < this.#agentsSettleMs) return undefined;
    const held = this.#heldPerAgent();
    const sizes = new Map(this.#agents);
    for (const [agentId, h] of held) {
      // An agent our tasks fill makes no offers: it counts with what they hold.
      if (!sizes.has(agentId)) {
        sizes.set(agentId, observeAgent(undefined, agentId, h, this.#executorHeld()));
      }
    }
    return infeasibleReason(
      {
        name: req.name,
        capacityMB: req.capacityMB,
        processes: req.masters * (1 + req.slaves),
        distribution: req.distribution,
      },
      [...sizes.values()],
      this.#resources,
    );
  }

  /** The executor's resources. */
  #executorHeld(): AgentResources {
    return { cpus: this.#resources.executorCpus, memMB: this.#resources.executorMemMB };
  }

  /** Agent id → the resources our live tasks hold there (executors not counted). */
  #heldPerAgent(): Map<string, AgentResources> {
    const held = new Map<string, AgentResources>();
    for (const inst of this.#instances.values()) {
      for (const { rec } of inst.procs.values()) {
        if (!rec.agentId || !isLive(rec)) continue;
        const h = held.get(rec.agentId) ?? { cpus: 0, memMB: 0 };
        h.cpus += this.#resources.taskCpus;
        h.memMB += capacityOf(rec, inst.rec) + this.#resources.memOverheadMB;
        held.set(rec.agentId, h);
      }
      for (const { rec } of inst.proxies.values()) {
        if (!rec.agentId || !isLive(rec)) continue;
        const h = held.get(rec.agentId) ?? { cpus: 0, memMB: 0 };
        h.cpus += PROXY_RESOURCES.cpus;
        h.memMB += PROXY_RESOURCES.memMB;
        held.set(rec.agentId, h);
      }
    }
    return held;
  }

  /** Records the agents' sizes seen in `offers` (offered + what we hold there). */
  #observeAgents(offers: readonly Offer[]): void {
    this.#offersSeen = true;
    const held = this.#heldPerAgent();
    const offered = new Map<string, AgentResources & { executor: boolean }>();
    for (const o of offers) {
      const id = o.agent_id.value;
      const sum = offered.get(id) ?? { cpus: 0, memMB: 0, executor: false };
      for (const r of o.resources ?? []) {
        if (r.type !== "SCALAR" || !r.scalar) continue;
        if (r.name === "cpus") sum.cpus += r.scalar.value;
        if (r.name === "mem") sum.memMB += r.scalar.value;
      }
      sum.executor ||= (o.executor_ids ?? []).some((e) => e.value === EXECUTOR_ID);
      offered.set(id, sum);
    }
    for (const [id, sum] of offered) {
      const h = held.get(id) ?? { cpus: 0, memMB: 0 };
      const exec = sum.executor ? this.#executorHeld() : { cpus: 0, memMB: 0 };
      const known = this.#agents.get(id);
      if (!known) {
        this.#agentSetChangedAt = this.#now();
        this.#log(`Agent ${id} offers resources`);
      }
      this.#agents.set(
        id,
        observeAgent(known, id, sum, { cpus: h.cpus + exec.cpus, memMB: h.memMB + exec.memMB }),
      );
    }
  }

  /**
   * After a refusal: makes sure offers come again for a while (REVIVE when
   * suppressed, at most every AGENT_LEARN_MS), so that an agent added since
   * is known at the next try.
   */
  async #learnAgents(): Promise<void> {
    const now = this.#now();
    if (!this.#mesos || !this.#subscribed || now - this.#refusalReviveAt < AGENT_LEARN_MS) return;
    this.#refusalReviveAt = now;
    this.#learnAgentsUntil = now + AGENT_LEARN_MS;
    this.#offersSeen = false;
    if (this.#suppressed && await this.#call("revive", () => this.#mesos!.revive())) {
      this.#suppressed = false;
      this.#lastReviveAt = now;
    }
  }

  /** Starts deleting an instance; `false` when unknown. */
  delete(name: string): Promise<boolean> {
    return this.#delete(name, 1);
  }

  async #delete(name: string, attempt: number): Promise<boolean> {
    // As for CREATE: DELETEs that arrive together share the batch that stores them.
    const staged = await this.#enqueue(async () => {
      const inst = this.#instances.get(name);
      if (!inst) return false;
      let durable: Promise<void> | undefined;
      if (inst.rec.status !== "DELETING") {
        await this.#saveInstance(inst, { status: "DELETING", reason: "Deleting every process" });
        durable = this.#durable();
        this.#requestsWaiting++;
      }
      this.#kick();
      return { durable };
    });
    if (staged === false) return false;
    if (staged.durable) {
      try {
        await staged.durable;
      } catch (error) {
        // Another write of the batch met one (its version is read back): again, in the next batch.
        if (error instanceof ConflictError && attempt < 3) {
          return await this.#delete(name, attempt + 1);
        }
        throw error;
      }
      this.#log(`Instance ${name} is being deleted`);
    }
    return true;
  }

  /**
   * Starts changing an instance's capacity, slave count or Distribution
   * (steps in `update_plan.ts`). One change at a time; refused while the
   * instance is created or deleted, when the new capacity is below the data
   * it holds, or when no agents registered now could hold the result.
   */
  update(req: UpdateRequest): Promise<UpdateOutcome> {
    return this.#enqueue(async (): Promise<UpdateOutcome> => {
      const inst = this.#instances.get(req.name);
      if (!inst) return "unknown";
      const rec = inst.rec;
      const name = `Instance "${req.name}"`;
      if (rec.status === "DELETING") return { conflict: `${name} is being deleted` };
      if (rec.type === "RC") {
        return { conflict: `${name} is a Redis Cluster; UPDATE does not change clusters yet` };
      }
      const proxies = req.proxies !== undefined && req.proxies !== (rec.proxies ?? 0)
        ? req.proxies
        : undefined;
      if (
        req.capacityMB === undefined && req.slaves === undefined && req.distribution === undefined
      ) {
        // The proxy count alone changes no redis process: allowed at any time.
        if (proxies === undefined) return "unchanged";
        await this.#setProxyCount(inst, proxies);
        this.#kick();
        return "updating";
      }
      if (rec.update) {
        return {
          conflict:
            `${name} is already being updated (${rec.update.phase}); one change at a time: ` +
            `try again once it is done`,
        };
      }
      if (rec.status === "CREATING") {
        return { conflict: `${name} is still being created; update it once it is RUNNING` };
      }
      const from = {
        capacityMB: rec.capacityMB,
        slaves: rec.slaves,
        distribution: rec.distribution,
      };
      const target = {
        capacityMB: req.capacityMB ?? from.capacityMB,
        slaves: req.slaves ?? from.slaves,
        distribution: req.distribution ?? from.distribution,
      };
      if (
        target.capacityMB === from.capacityMB && target.slaves === from.slaves &&
        target.distribution === from.distribution
      ) {
        if (proxies === undefined) return "unchanged";
        await this.#setProxyCount(inst, proxies);
        this.#kick();
        return "updating";
      }
      if (target.capacityMB < from.capacityMB) {
        // The data must fit: the master's used_memory (or the largest reported).
        const procs = [...inst.procs.values()].map((p) => p.rec).filter(isLive);
        const master = procs.find((p) => p.id === rec.masterId);
        const used = this.#stats.get(master?.taskId ?? "")?.memoryUsed ??
          Math.max(0, ...procs.map((p) => this.#stats.get(p.taskId)?.memoryUsed ?? 0));
        if (used > target.capacityMB * 1024 * 1024) {
          return {
            conflict: `Cannot resize instance "${req.name}" to ${target.capacityMB} MB: it holds ${
              (used / 1024 / 1024).toFixed(1)
            } MB of data (used_memory ${used} bytes)`,
          };
        }
      }
      // A lower Distribution may replace processes too (those in excess on an agent).
      const replaces = replacesProcesses(from, target) ||
        target.distribution < from.distribution;
      const refused = this.#infeasible({
        name: req.name,
        capacityMB: target.capacityMB,
        masters: 1,
        // A replacement holds one process more than the instance for a while.
        slaves: target.slaves + (replaces ? 1 : 0),
        distribution: target.distribution,
      });
      if (refused !== undefined) {
        this.#log(`UPDATE ${req.name} refused: ${refused}`);
        await this.#learnAgents();
        return {
          refused: `Cannot update instance "${req.name}": ${
            refused.replace(/^Cannot create instance "[^"]*": /, "")
          }`,
        };
      }
      // Every process records the spec it runs with, so that the planner
      // tells stale ones from fresh ones whatever the instance becomes.
      for (const p of inst.procs.values()) {
        if (p.rec.capacityMB === undefined || p.rec.minReplicas === undefined) {
          await this.#saveProc(inst, p, {
            capacityMB: capacityOf(p.rec, rec),
            minReplicas: minReplicasOf(p.rec, rec),
          });
        }
      }
      const now = this.#now();
      if (proxies !== undefined) await this.#setProxyCount(inst, proxies);
      await this.#saveInstance(inst, {
        distribution: target.distribution,
        update: { target, from, phase: "starting", startedAt: now, startEpoch: rec.epoch ?? 0 },
      });
      await this.#flush();
      this.#log(
        `Instance ${req.name} is being updated: ${describeShape(from)} → ${describeShape(target)}${
          replaces ? " (rolling replacement)" : ""
        }`,
      );
      this.#kick();
      return "updating";
    });
  }

  /**
   * Sets how many proxy endpoints instance `name` wants (the desired proxy
   * count changed: CREATE's default, an UPDATE): the proxy planner then adds
   * or kills proxies to match. `false` when the instance is unknown or being
   * deleted. `count` must be checked by the caller (`parseProxies`).
   */
  setProxies(name: string, count: number): Promise<boolean> {
    return this.#enqueue(async () => {
      const inst = this.#instances.get(name);
      if (!inst || inst.rec.status === "DELETING") return false;
      if ((inst.rec.proxies ?? 0) !== count) await this.#setProxyCount(inst, count);
      this.#kick();
      return true;
    });
  }

  async #setProxyCount(inst: InstState, count: number): Promise<void> {
    await this.#saveInstance(inst, { proxies: count });
    await this.#flush();
    this.#log(`Instance ${inst.rec.name} wants ${count} prox${count === 1 ? "y" : "ies"}`);
  }

  /**
   * Queues a reconcile pass without waiting for it. Requests arriving
   * together share one pass: a kick while one is queued (not yet started)
   * adds nothing.
   */
  #kick(): void {
    if (this.#stopped || this.#kickQueued) return;
    this.#kickQueued = true;
    this.#enqueue(() => {
      this.#kickQueued = false;
      return this.#reconcile();
    }).catch((e) => this.#log(`Reconcile failed: ${(e as Error).message}`));
  }

  // ---- Mesos events ----

  /** Handles one Mesos event (call in the order received; resolves once handled). */
  handleEvent(event: SchedulerEvent): Promise<void> {
    return this.#enqueue(() => this.#handleQueued(event));
  }

  /**
   * Queues one Mesos event behind the ones before it (call in the order
   * received) and resolves once it starts being handled, not once handled:
   * the event stream reads the next event meanwhile, so events that arrive
   * together form a burst that ends with one planning pass and one store
   * batch (see `#enqueue`) instead of one each. At most one event waits in
   * the queue this way.
   */
  queueEvent(event: SchedulerEvent): Promise<void> {
    const started = deferred();
    this.#enqueue(async () => {
      started.resolve();
      this.#streamed = true;
      try {
        return await this.#handleQueued(event);
      } finally {
        this.#streamed = false;
      }
    }, true).catch(() => {});
    return started.promise;
  }

  /**
   * Commits what is staged `groupCommitMs` from now, in a job of its own
   * (so no other job is cut in two), unless an earlier flush takes it.
   */
  #groupCommit(delayMs = this.#groupCommitMs): void {
    if (this.#groupTimer !== undefined) {
      if (this.#groupDue <= performance.now() + delayMs) return;
      // Sooner than the one waiting (CREATEs wait for this batch).
      clearTimeout(this.#groupTimer);
      this.#groupTimer = undefined;
    }
    if (this.#staged.size === 0 && this.#stagedEvents.length === 0) {
      // Nothing to write: release whoever waits for the (empty) batch now.
      this.#flush().catch(() => {});
      return;
    }
    this.#groupDue = performance.now() + delayMs;
    this.#groupTimer = setTimeout(() => {
      this.#groupTimer = undefined;
      // Flushes even when more jobs wait: a steady stream of events must not hold it back.
      this.#enqueue(() =>
        this.#flush().catch((e) => this.#log(`Store write failed: ${(e as Error).message}`))
      ).catch(() => {});
    }, delayMs);
  }

  async #handleQueued(event: SchedulerEvent): Promise<void> {
    this.#lastEventAt = this.#now();
    try {
      await this.#handleEvent(event);
    } catch (error) {
      this.#log(`Error handling ${event.type ?? "UNKNOWN"} event: ${(error as Error).stack}`);
    }
  }

  /** Marks the Mesos subscription as lost (offers void, calls refused). */
  disconnected(): Promise<void> {
    return this.#enqueue(() => {
      this.#subscribed = false;
      return Promise.resolve();
    });
  }

  async #handleEvent(event: SchedulerEvent): Promise<void> {
    switch (event.type) {
      case "SUBSCRIBED":
        return await this.#onSubscribed(event.subscribed!.framework_id.value);
      case "OFFERS":
        return await this.#onOffers(event.offers?.offers ?? []);
      case "UPDATE":
        return await this.#onUpdate(event.update!.status);
      case "MESSAGE":
        return await this.#onMessage(
          event.message!.agent_id.value,
          event.message!.data,
        );
      case "FAILURE": {
        const f = event.failure ?? {};
        if (f.agent_id && !f.executor_id && this.#agents.delete(f.agent_id.value)) {
          // The agent was removed: it no longer counts for what can be placed.
          this.#agentSetChangedAt = this.#now();
        }
        this.#log(
          `Mesos FAILURE: agent ${f.agent_id?.value ?? "?"}${
            f.executor_id ? ` executor ${f.executor_id.value} status ${f.status}` : ""
          }`,
        );
        return;
      }
      case "ERROR":
        this.#log(`Mesos ERROR: ${event.error?.message}`);
        if (/removed/i.test(event.error?.message ?? "")) {
          // The framework id is dead; the next subscription must register anew.
          await this.#store.delete(this.#fwKey()).catch(() => {});
          this.#frameworkId = undefined;
          this.#frameworkIdVersion = null;
        }
        this.#subscribed = false;
        return;
      default:
        return; // HEARTBEAT, RESCIND (we hold no offers), inverse offers...
    }
  }

  async #onSubscribed(frameworkId: string): Promise<void> {
    this.#subscribed = true;
    this.#subscribedAt = this.#now();
    // Agents are learned anew from this subscription's offers.
    this.#agents.clear();
    this.#agentSetChangedAt = this.#subscribedAt;
    this.#offersSeen = false;
    this.#learnAgentsUntil = this.#subscribedAt + AGENT_LEARN_MS;
    this.#suppressed = false;
    this.#lastLaunchable = new Set();
    if (frameworkId !== this.#frameworkId) {
      this.#frameworkIdVersion = await this.#store.put(this.#fwKey(), frameworkId);
      this.#frameworkId = frameworkId;
      this.#log(`Registered with Mesos as framework ${frameworkId}`);
    } else {
      this.#log(`Re-subscribed to Mesos as framework ${frameworkId}`);
    }
    const known: { taskId: string; agentId?: string }[] = [];
    for (const inst of this.#instances.values()) {
      for (const { rec } of [...inst.procs.values(), ...inst.proxies.values()]) {
        if (rec.taskId && (isLive(rec) || (rec.lastState && MAYBE_ALIVE.has(rec.lastState)))) {
          known.push({ taskId: rec.taskId, ...(rec.agentId ? { agentId: rec.agentId } : {}) });
        }
      }
    }
    this.#unanswered = new Map(known.map((t) => [t.taskId, t.agentId]));
    this.#reconcileRound = 0;
    this.#reconcileNextAt = this.#now() + 5_000;
    await this.#call("reconcile", () => this.#mesos!.reconcile(known));
    await this.#call("reconcile", () => this.#mesos!.reconcile([]));
    this.#lastImplicitReconcile = this.#now();
    await this.#reconcile();
  }

  async #onOffers(offers: Offer[]): Promise<void> {
    if (!this.#mesos || offers.length === 0) return;
    this.#observeAgents(offers);
    const { launchable } = this.#plan();
    const placements: Record<string, Record<string, number>> = {};
    const groupPlacements: Record<string, Record<string, number>> = {};
    const avoidPorts: Record<string, number[]> = {};
    const inUse: PortInUse[] = [];
    const load: Record<string, number> = {};
    const proxyLoad: Record<string, number> = {};
    for (const inst of this.#instances.values()) {
      const counts: Record<string, number> = {};
      for (const [procs, into] of [[inst.procs, load], [inst.proxies, proxyLoad]] as const) {
        for (const { rec } of procs.values()) {
          if (rec.agentId && isLive(rec)) into[rec.agentId] = (into[rec.agentId] ?? 0) + 1;
        }
      }
      for (const { rec } of inst.procs.values()) {
        if (rec.agentId && rec.port) (avoidPorts[rec.agentId] ??= []).push(rec.port);
        if (rec.agentId && rec.port) {
          inUse.push({ agentId: rec.agentId, port: rec.port, instance: inst.rec.name });
        }
        if (rec.agentId && isLive(rec)) counts[rec.agentId] = (counts[rec.agentId] ?? 0) + 1;
        if (rec.agentId && isLive(rec) && inst.rec.type === "RC") {
          const g = groupPlacements[shardGroup(inst.rec.name, rec.shard ?? 0)] ??= {};
          g[rec.agentId] = (g[rec.agentId] ?? 0) + 1;
        }
      }
      placements[inst.rec.name] = counts;
      const proxyCounts: Record<string, number> = {};
      for (const { rec } of inst.proxies.values()) {
        if (rec.agentId && rec.port) {
          (avoidPorts[rec.agentId] ??= []).push(rec.port);
          inUse.push({ agentId: rec.agentId, port: rec.port, instance: inst.rec.name });
        }
        if (rec.agentId && isLive(rec)) {
          proxyCounts[rec.agentId] = (proxyCounts[rec.agentId] ?? 0) + 1;
        }
        // Its executor there stopped answering: no proxy of the instance goes there for now.
        if (rec.avoidAgentId && !isLive(rec)) {
          proxyCounts[rec.avoidAgentId] = (proxyCounts[rec.avoidAgentId] ?? 0) + 1;
        }
      }
      placements[proxyGroup(inst.rec.name)] = proxyCounts;
    }
    const now = this.#now();
    for (const [agentId, ports] of this.#failedPorts) {
      for (const [port, until] of ports) {
        if (until <= now) ports.delete(port);
        else (avoidPorts[agentId] ??= []).push(port);
      }
      if (ports.size === 0) this.#failedPorts.delete(agentId);
    }
    this.#portQuarantine = notePortsInUse(
      this.#portQuarantine,
      inUse,
      this.#now(),
      this.#portQuarantineMs,
    );
    const result = match(launchable, offers, placements, {
      executorId: EXECUTOR_ID,
      resources: this.#resources,
      avoidPorts,
      quarantine: this.#portQuarantine,
      groupPlacements,
      spread: {
        load,
        proxyLoad,
        peers: spreadPeers(this.#seenAgents, offers, new Set(this.#agents.keys()), this.#now()),
      },
    });
    this.#seenAgents = noteOfferRound(
      this.#seenAgents,
      offers,
      result.launches,
      this.#resources,
      EXECUTOR_ID,
      this.#now(),
    );
    this.#placementReasons = result.unplaced;
    // Masters are recorded (and launched) before the slaves that point at them.
    const hasMaster = (l: Launch) => l.tasks.some((t) => t.role === "master");
    const launches = [
      ...result.launches.filter(hasMaster),
      ...result.launches.filter((l) => !hasMaster(l)),
    ];
    const tasksOf = new Map<Launch, PlacedTask[]>(
      launches.map((l) => [l, [
        ...l.tasks.filter((t) => t.role === "master"),
        ...l.tasks.filter((t) => t.role !== "master"),
      ]]),
    );
    // Each task's resources come from the offer's own entries (reserved for
    // our role first): see offer_resources.ts.
    const offerById = new Map(offers.map((o) => [o.id.value, o]));
    const carvedOf = new Map<
      Launch,
      { tasks: Map<PlacedTask, Resource[]>; executor: ExecutorInfo }
    >();
    for (const launch of [...launches]) {
      const tasks = tasksOf.get(launch)!;
      try {
        const carved = carveResources(
          offerById.get(launch.offerId.value)!,
          tasks.map((t) => ({
            cpus: t.cpus,
            memMB: t.memMB,
            // A cluster node's bus port is the task's too.
            ports: t.busPort !== undefined ? [t.port, t.busPort] : [t.port],
          })),
          launch.withExecutor
            ? { cpus: this.#resources.executorCpus, memMB: this.#resources.executorMemMB }
            : undefined,
        );
        carvedOf.set(launch, {
          tasks: new Map(tasks.map((t, i) => [t, carved.tasks[i]!])),
          executor: this.#executorFor(launch.agentId, carved.executor),
        });
      } catch (error) {
        this.#log(`Not launching on offer ${launch.offerId.value}: ${(error as Error).message}`);
        launches.splice(launches.indexOf(launch), 1);
        result.declines.push(launch.offerId);
      }
    }
    const built = new Map<Launch, { infos: TaskInfo[]; launched: InstState[]; ids: string[] }>();
    for (const launch of launches) {
      const infos: TaskInfo[] = [];
      const launched: InstState[] = [];
      const ids: string[] = [];
      built.set(launch, { infos, launched, ids });
    }
    // Two passes over every launch: the masters, then the slaves.
    for (const pass of ["master", "slave"] as const) {
      for (const launch of launches) {
        const { infos, launched, ids } = built.get(launch)!;
        for (const task of tasksOf.get(launch)!) {
          if ((task.role === "master") !== (pass === "master")) continue;
          const recorded = task.role === "proxy"
            ? this.#recordProxyLaunch(launch, task, carvedOf.get(launch)!)
            : await this.#recordLaunch(launch, task, carvedOf.get(launch)!);
          if (!recorded) continue;
          infos.push(recorded.info);
          launched.push(recorded.inst);
          ids.push(task.procId);
        }
      }
    }
    try {
      // Every launch of this round is recorded in one batch before any task
      // goes to Mesos; if that fails, nothing is launched and the offers go back.
      await this.#flush();
    } catch (error) {
      this.#log(`Not launching: ${(error as Error).message}`);
      const offerIds = [
        ...launches.map((l) => l.offerId.value),
        ...result.declines.map((o) => o.value),
      ];
      await this.#call("decline", () => this.#mesos!.decline(offerIds, 1));
      return;
    }
    for (const launch of launches) {
      const { infos, launched, ids } = built.get(launch)!;
      if (infos.length === 0) {
        await this.#call("decline", () => this.#mesos!.decline([launch.offerId.value], 1));
        continue;
      }
      // Leftovers come back at once: more work may be waiting for them.
      const ok = await this.#call(
        "launch",
        () => this.#mesos!.launch(launch.offerId.value, infos, 0),
      );
      if (!ok) {
        for (const [i, inst] of launched.entries()) {
          const p = inst.procs.get(ids[i]!);
          const px = inst.proxies.get(ids[i]!);
          if (p) {
            await this.#markLost(inst, p, "Launch call failed", "TASK_DROPPED").catch(() => {});
          } else if (px) this.#proxyLost(inst, px, "Launch call failed", "TASK_DROPPED");
        }
      }
    }
    if (result.declines.length) {
      // Work left over did not fit these offers: do not ask for them again at
      // once (a REVIVE clears the filter when new work appears).
      const placed = [...built.values()].reduce((n, b) => n + b.infos.length, 0);
      // Work left for a less loaded agent: back soon in case it does not offer.
      const refuse = result.deferred > 0
        ? SPREAD_REFUSE_SECONDS
        : launchable.length > placed
        ? 5
        : 30;
      await this.#call(
        "decline",
        () => this.#mesos!.decline(result.declines.map((o) => o.value), refuse),
      );
    }
    await this.#reconcile();
  }

  /**
   * Records the launch of one placed task (STAGING, staged for the round's
   * batch) and returns its TaskInfo; `undefined` when it must not go (a
   * slave whose master is unknown).
   */
  async #recordLaunch(
    launch: Launch,
    task: PlacedTask,
    carved: { tasks: Map<PlacedTask, Resource[]>; executor: ExecutorInfo },
  ): Promise<{ info: TaskInfo; inst: InstState } | undefined> {
    const inst = this.#instances.get(task.instance);
    const p = inst?.procs.get(task.procId);
    if (!inst || !p) return undefined;
    const n = (p.rec.launchCount ?? 0) + 1;
    const taskId = taskIdOf(task.instance, task.procId, n);
    const isSlave = task.role === "slave";
    if (task.role === "proxy") return undefined;
    const cluster = inst.rec.type === "RC";
    if (isSlave && !task.master && !cluster) {
      this.#log(`Not launching ${taskId}: its master was not launched`);
      return undefined;
    }
    // During an UPDATE every launch has the target's capacity and kind.
    const launchSpec = launchSpecOf(inst.rec);
    const spec: RedisTaskSpec = {
      instance: task.instance,
      procId: task.procId,
      role: task.role,
      port: task.port,
      capacityMB: launchSpec.capacityMB,
      dataDir: dataDirOf(task.instance, inst.rec.createdAt, task.procId),
      epoch: inst.rec.epoch ?? 0,
      // Self-fence: a master of an instance with slaves takes writes only
      // while a replica follows it, so an isolated old master cannot go on
      // as a second master (lib/scheduler/README.md, "Fencing").
      minReplicasToWrite: launchSpec.minReplicasToWrite,
      ...(isSlave && task.master ? { master: task.master } : {}),
      ...(inst.rec.password && inst.rec.adminPassword
        ? { auth: { password: inst.rec.password, adminPassword: inst.rec.adminPassword } }
        : {}),
      // A replica starts as a new node (its data comes from its master).
      ...(cluster && task.busPort ? { cluster: { busPort: task.busPort, fresh: isSlave } } : {}),
    };
    const movedFrom = p.rec.agentId !== undefined && p.rec.agentId !== launch.agentId &&
        !isSlave
      ? p.rec.agentId
      : undefined;
    if (movedFrom !== undefined && p.rec.launchCount) {
      await this.#saveInstance(inst, {
        lastEvent: `${
          new Date(this.#now()).toISOString()
        }: master ${task.procId} relaunched on agent ${launch.agentId}; its data on agent ${movedFrom} could not be kept`,
      });
    }
    await this.#saveProc(inst, p, {
      taskId,
      launchEpoch: inst.rec.epoch ?? 0,
      capacityMB: launchSpec.capacityMB,
      minReplicas: launchSpec.minReplicasToWrite,
      pinAgentUntil: undefined,
      launchCount: n,
      role: task.role,
      state: "STAGING",
      agentId: launch.agentId,
      host: launch.hostname,
      port: task.port,
      executorId: EXECUTOR_ID,
      replicaOf: isSlave && task.master ? `${task.master.host}:${task.master.port}` : undefined,
      ...(cluster ? { busPort: task.busPort } : {}),
      lastState: "TASK_STAGING",
      reason: undefined,
      killSentAt: undefined,
    });
    this.#event(
      task.instance,
      launchedEvent({
        procId: task.procId,
        taskId,
        role: task.role,
        address: `${launch.hostname}:${task.port}`,
        agentId: launch.agentId,
      }),
    );
    this.#log(
      `Launching ${taskId} (${task.role}) on ${launch.hostname}:${task.port}${
        task.busPort !== undefined ? ` (bus ${task.busPort})` : ""
      } agent ${launch.agentId}`,
    );
    return {
      info: buildTaskInfo(
        task,
        taskId,
        launch.agentId,
        carved.executor,
        spec,
        carved.tasks.get(task),
      ),
      inst,
    };
  }

  async #onUpdate(status: TaskStatus): Promise<void> {
    const taskId = status.task_id.value;
    const agentId = status.agent_id?.value;
    const ids = parseTaskId(taskId);
    const inst = ids ? this.#instances.get(ids.instance) : undefined;
    const p = ids ? inst?.procs.get(ids.procId) : undefined;
    const px = ids && !p ? inst?.proxies.get(ids.procId) : undefined;
    const state = status.state;
    this.#unanswered.delete(taskId);
    /** Nothing a plan acts on changed: no reconcile pass after it (the tick's comes soon). */
    let quiet = false;
    if (inst && px && px.rec.taskId === taskId) {
      this.#onProxyUpdate(inst, px, status);
    } else if (!inst || !p || p.rec.taskId !== taskId) {
      // Not a task we track (a deleted instance, an older launch): it must not run.
      if (!TERMINAL_OR_LOST.has(state)) {
        this.#log(`Killing unknown task ${taskId} (${state})`);
        await this.#call("kill", () => this.#mesos!.kill(taskId, agentId));
      }
    } else if (state === "TASK_RUNNING") {
      if (p.rec.state === "KILLING") {
        // keep killing
      } else if (p.rec.state !== "RUNNING" || p.rec.lastState !== state) {
        if (p.rec.state !== "RUNNING") {
          this.#event(
            inst.rec.name,
            runningEvent({ procId: p.rec.id, taskId, address: addressOf(p.rec) }),
          );
        }
        await this.#saveProc(inst, p, {
          state: "RUNNING",
          lastState: state,
          failures: 0,
          retryAt: undefined,
          reason: undefined,
          ...(agentId ? { agentId } : {}),
        });
        this.#log(`Task ${taskId} is RUNNING`);
      }
      // A reconciliation answer only repeats what the master last heard; it
      // says nothing about the executor being alive, so it must not reset the
      // stats-silence clock (a frozen executor would never be declared lost).
      if (status.reason !== "REASON_RECONCILIATION") {
        const now = this.#now();
        this.#statsSeenAt.set(taskId, now);
        // The stats that made it RUNNING (a slave in sync): planning counts
        // them now, not at the next stats message. A retried update's stats
        // are older than those a stats message since brought: kept out.
        const carried = p.rec.state === "RUNNING" ? statusStats(taskId, status.data) : undefined;
        if (carried && carried.at > (this.#statsAt.get(taskId)?.at ?? -Infinity)) {
          this.#takeStats(carried.stats);
          this.#statsAt.set(taskId, { at: carried.at, runningSeen: now });
        }
      }
    } else if (
      MAYBE_ALIVE.has(state) && p.rec.state === "RUNNING" && inst.rec.status !== "DELETING"
    ) {
      // The agent is out of touch, not necessarily the process: a doubt, which
      // the detection confirms with a check of its own before acting.
      if (p.rec.lastState !== state) {
        await this.#saveProc(inst, p, { lastState: state });
        this.#log(`Task ${taskId} of ${inst.rec.name}: ${describeStatus(status)}; checking it`);
      }
    } else if (TERMINAL_OR_LOST.has(state)) {
      this.#forgetTask(taskId);
      if (inst.rec.status === "DELETING") {
        await this.#saveProc(inst, p, { state: "DONE", lastState: state });
      } else if (p.rec.state === "KILLING") {
        // We killed it on purpose (fenced): relaunch at once.
        this.#event(
          inst.rec.name,
          lostEvent({
            procId: p.rec.id,
            taskId,
            reason: `killed by the scheduler (${state})`,
            master: false,
          }),
        );
        await this.#saveProc(inst, p, {
          state: "LOST",
          lastState: state,
          retryAt: this.#now(),
          reason: `Killed by the scheduler (${state})`,
        });
      } else if (p.rec.state === "STAGING" || p.rec.state === "RUNNING") {
        // The agent still runs (it or the executor reported the end): restart
        // there, from the same data dir, when that agent offers soon enough.
        // TASK_GONE: the agent is registered and does not run the task (an
        // agent restarted with its id, or the local cluster started again).
        const agentAlive = state === "TASK_GONE" ||
          (!MAYBE_ALIVE.has(state) && status.source !== "SOURCE_MASTER");
        let reason = describeStatus(status);
        if (!agentAlive && inst.rec.type === "S") {
          reason += `; its agent is lost, so the data of ${p.rec.id} cannot be kept`;
        }
        await this.#markLost(
          inst,
          p,
          reason,
          state,
          agentAlive,
          this.#noteStartFailure(p.rec, status),
        );
      } else if (p.rec.lastState !== state) {
        // Already given up (LOST, or PENDING for a relaunch): just note the news.
        await this.#saveProc(inst, p, { lastState: state });
      }
    } else {
      // STAGING/STARTING/KILLING: no decision hangs on it. A burst's hundred
      // TASK_STARTINGs would otherwise cost a hundred passes over every instance.
      if (p.rec.lastState !== state) p.rec = { ...p.rec, lastState: state };
      quiet = state === "TASK_STAGING" || state === "TASK_STARTING";
    }
    if (status.uuid && agentId) {
      // Acknowledged once its effect is stored (with the rest of this event's
      // writes), without holding the queue for the round trip. When the batch
      // fails there is no acknowledgement: the agent sends the update again.
      const ack = this.#durable().then(
        () =>
          this.#call(
            "acknowledge",
            () => this.#mesos!.acknowledge(agentId, taskId, status.uuid!),
            false,
          ),
        (error) => {
          this.#log(`Not acknowledging ${state} of ${taskId}: ${(error as Error).message}`);
          return false;
        },
      );
      this.#acks.add(ack);
      ack.finally(() => this.#acks.delete(ack));
    }
    if (!quiet) await this.#reconcileAfterEvent(state === "TASK_RUNNING");
  }

  /**
   * A task that failed to start (`REASON_CONTAINER_LAUNCH_FAILED`: redis or
   * the proxy could not listen, say): its port on that agent is avoided for
   * the quarantine time, and the patch returned drops the port from the
   * record so the relaunch does not insist on it.
   */
  #noteStartFailure(
    rec: { agentId?: string; port?: number },
    status: TaskStatus,
  ): { port?: undefined } {
    if (status.reason !== "REASON_CONTAINER_LAUNCH_FAILED" || !rec.agentId || !rec.port) return {};
    const ports = this.#failedPorts.get(rec.agentId) ?? new Map<number, number>();
    ports.set(rec.port, this.#now() + this.#portQuarantineMs);
    this.#failedPorts.set(rec.agentId, ports);
    return { port: undefined };
  }

  async #markLost(
    inst: InstState,
    p: ProcState,
    reason: string,
    state: string,
    agentAlive = false,
    patch: Partial<ProcessRecord> = {},
  ): Promise<void> {
    const failures = (p.rec.failures ?? 0) + 1;
    const delay = backoffMs(failures);
    const now = this.#now();
    await this.#saveProc(inst, p, {
      ...patch,
      state: "LOST",
      lastState: state,
      failures,
      retryAt: now + delay,
      reason: `${reason} (attempt ${failures}, retrying in ${Math.ceil(delay / 1000)} s)`,
      // Only the first failure in a row pins: a process that cannot start
      // there again is not kept waiting for that agent forever.
      pinAgentUntil: agentAlive && p.rec.agentId && failures === 1
        ? now + delay + PIN_AGENT_MS
        : undefined,
    });
    this.#event(
      inst.rec.name,
      lostEvent({
        procId: p.rec.id,
        taskId: p.rec.taskId,
        reason,
        master: inst.rec.masterId === p.rec.id,
      }),
    );
    this.#log(`Task ${p.rec.taskId} of ${inst.rec.name} lost: ${reason}`);
  }

  // ---- proxies (decisions in proxy_plan.ts) ----

  /** Records the launch of one placed proxy task (STAGING) and returns its TaskInfo. */
  #recordProxyLaunch(
    launch: Launch,
    task: PlacedTask,
    carved: { tasks: Map<PlacedTask, Resource[]>; executor: ExecutorInfo },
  ): { info: TaskInfo; inst: InstState } | undefined {
    const inst = this.#instances.get(task.instance);
    const px = inst?.proxies.get(task.procId);
    if (!inst || !px) return undefined;
    const n = (px.rec.launchCount ?? 0) + 1;
    const taskId = taskIdOf(task.instance, task.procId, n);
    const master = proxyMaster(inst.rec, [...inst.procs.values()].map((p) => p.rec), this.#stats);
    const spec: ProxyTaskSpec = {
      kind: "proxy",
      instance: task.instance,
      proxyId: task.procId,
      port: task.port,
      waitMs: this.#proxyWaitMs,
      ...(master ? { master } : {}),
      ...(inst.rec.password ? { password: inst.rec.password } : {}),
    };
    this.#saveProxy(inst, px, {
      taskId,
      launchCount: n,
      state: "STAGING",
      agentId: launch.agentId,
      host: launch.hostname,
      port: task.port,
      executorId: EXECUTOR_ID,
      lastState: "TASK_STAGING",
      reason: undefined,
      killSentAt: undefined,
    });
    // The launch spec tells it the master: nothing to send until that changes.
    this.#proxyTold.set(taskId, {
      version: proxyMasterVersion(master),
      sentAt: this.#now(),
      confirmed: true,
    });
    this.#log(
      `Launching proxy ${taskId} on ${launch.hostname}:${task.port} agent ${launch.agentId}`,
    );
    return {
      info: buildProxyTaskInfo(
        task,
        taskId,
        launch.agentId,
        carved.executor,
        spec,
        carved.tasks.get(task),
      ),
      inst,
    };
  }

  /** A status update of a proxy task. A proxy holds no data: a lost one is relaunched anywhere. */
  #onProxyUpdate(inst: InstState, px: ProxyState, status: TaskStatus): void {
    const state = status.state;
    const agentId = status.agent_id?.value;
    if (state === "TASK_RUNNING") {
      if (px.rec.state === "KILLING" || px.rec.state === "RUNNING") return;
      this.#saveProxy(inst, px, {
        state: "RUNNING",
        lastState: state,
        failures: 0,
        retryAt: undefined,
        reason: undefined,
        avoidAgentId: undefined,
        ...(agentId ? { agentId } : {}),
      });
      this.#log(`Proxy task ${px.rec.taskId} is RUNNING`);
      if (status.reason !== "REASON_RECONCILIATION") {
        this.#statsSeenAt.set(px.rec.taskId, this.#now());
      }
    } else if (TERMINAL_OR_LOST.has(state)) {
      this.#forgetTask(px.rec.taskId);
      if (px.rec.state === "KILLING" || inst.rec.status === "DELETING") {
        this.#saveProxy(inst, px, { state: "DONE", lastState: state });
      } else if (px.rec.state === "STAGING" || px.rec.state === "RUNNING") {
        this.#proxyLost(
          inst,
          px,
          describeStatus(status),
          state,
          this.#noteStartFailure(px.rec, status),
        );
      } else if (px.rec.lastState !== state) {
        this.#saveProxy(inst, px, { lastState: state });
      }
    } else if (px.rec.lastState !== state) {
      px.rec = { ...px.rec, lastState: state };
    }
  }

  #proxyLost(
    inst: InstState,
    px: ProxyState,
    reason: string,
    state: string,
    patch: Partial<ProxyRecord> = {},
  ): void {
    const failures = (px.rec.failures ?? 0) + 1;
    const delay = backoffMs(failures);
    this.#saveProxy(inst, px, {
      ...patch,
      state: "LOST",
      lastState: state,
      failures,
      retryAt: this.#now() + delay,
      reason: `${reason} (attempt ${failures}, retrying in ${Math.ceil(delay / 1000)} s)`,
    });
    this.#log(`Proxy task ${px.rec.taskId} of ${inst.rec.name} lost: ${reason}`);
  }

  async #performProxy(action: Exclude<ProxyAction, TellProxyAction>): Promise<void> {
    const inst = this.#instances.get(action.instance);
    if (!inst) return;
    const px = inst.proxies.get(action.proxyId);
    const name = inst.rec.name;
    switch (action.type) {
      case "add-proxy": {
        if (px) return;
        const rec: ProxyRecord = {
          id: action.proxyId,
          taskId: "",
          state: "PENDING",
          launchCount: 0,
          failures: 0,
          updatedAt: this.#now(),
        };
        const holder: ProxyState = { rec, version: null };
        inst.proxies.set(rec.id, holder);
        // A leftover key from an interrupted delete is overwritten.
        this.#stage(this.#proxyKey(name, rec.id), holder, rec, true);
        return;
      }
      case "drop-proxy":
        if (!px) return;
        await this.#flush();
        await this.#store.batch([{ key: this.#proxyKey(name, px.rec.id), delete: true }]);
        inst.proxies.delete(px.rec.id);
        this.#log(`Instance ${name}: proxy ${px.rec.id} removed`);
        return;
      case "kill-proxy":
        if (!px) return;
        this.#saveProxy(inst, px, { state: "KILLING", killSentAt: this.#now() });
        await this.#call("kill", () => this.#mesos!.kill(action.taskId, action.agentId));
        return;
      case "relaunch-proxy":
        if (!px) return;
        if (px.rec.lastState && MAYBE_ALIVE.has(px.rec.lastState) && px.rec.taskId) {
          // Its agent may come back with the old task: it must not.
          await this.#call("kill", () => this.#mesos!.kill(px.rec.taskId, px.rec.agentId));
        }
        this.#saveProxy(inst, px, { state: "PENDING", retryAt: undefined });
        return;
    }
  }

  /**
   * Sends running proxy tasks their instance's master: one message per
   * executor, `proxy-masters` when it has several (the masters of a create's
   * instances become RUNNING at about the same time), `proxy-master` for one,
   * and for an executor that said it does not know `proxy-masters` (an older
   * one). Each tell counts as confirmed once its executor answers.
   */
  async #tellProxies(tells: TellProxyAction[]): Promise<void> {
    const byExecutor = new Map<
      string,
      { agentId: string; executorId: string; taskIds: string[] }
    >();
    const spec = new Map<string, { taskId: string; host: string; port: number; epoch: number }>();
    for (const action of tells) {
      const px = this.#instances.get(action.instance)?.proxies.get(action.proxyId);
      const agentId = px?.rec.agentId;
      if (!px || !agentId) continue;
      const executorId = px.rec.executorId ?? EXECUTOR_ID;
      const key = `${agentId}\n${executorId}`;
      const group = byExecutor.get(key) ?? { agentId, executorId, taskIds: [] };
      group.taskIds.push(action.taskId);
      byExecutor.set(key, group);
      this.#proxyTold.set(action.taskId, {
        version: proxyMasterVersion(action.master),
        sentAt: this.#now(),
        confirmed: false,
      });
      const { host, port, epoch } = action.master;
      spec.set(action.taskId, { taskId: action.taskId, host, port, epoch });
      this.#log(`Telling proxy ${action.taskId}: master ${host}:${port} (epoch ${epoch})`);
    }
    // An earlier command's answer no longer counts for the proxies told anew
    // (a command with none left is forgotten).
    for (const [id, taskIds] of this.#proxyCommands) {
      const left = taskIds.filter((t) => !spec.has(t));
      if (left.length === 0) {
        this.#proxyCommands.delete(id);
        this.#batchTells.delete(id);
      } else if (left.length < taskIds.length) this.#proxyCommands.set(id, left);
    }
    for (const [key, group] of byExecutor) {
      const one = group.taskIds.length === 1 || this.#singleTells.has(key);
      const messages: { commandId: string; taskIds: string[]; msg: SchedulerToExecutor }[] = [];
      if (one) {
        for (const taskId of group.taskIds) {
          const commandId = `c${++this.#commandSeq}-${this.#now()}`;
          messages.push({
            commandId,
            taskIds: [taskId],
            msg: { kind: "proxy-master", commandId, ...spec.get(taskId)! },
          });
        }
      } else {
        // Bounded messages (about 100 bytes an entry) however many proxies an agent holds.
        for (let at = 0; at < group.taskIds.length; at += MAX_TELLS_PER_MESSAGE) {
          const taskIds = group.taskIds.slice(at, at + MAX_TELLS_PER_MESSAGE);
          const commandId = `c${++this.#commandSeq}-${this.#now()}`;
          messages.push({
            commandId,
            taskIds,
            msg: {
              kind: "proxy-masters",
              commandId,
              proxies: taskIds.map((taskId) => spec.get(taskId)!),
            },
          });
          this.#batchTells.set(commandId, key);
        }
      }
      for (const { commandId, taskIds, msg } of messages) {
        this.#proxyCommands.set(commandId, taskIds);
        await this.#call(
          "message",
          () => this.#mesos!.message(group.agentId, group.executorId, encodeMessage(msg)),
        );
      }
    }
  }

  /** Stages a new proxy record (see {@linkcode Scheduler.#saveInstance}). */
  #saveProxy(inst: InstState, px: ProxyState, patch: Partial<ProxyRecord>): void {
    this.#quarantinePorts(inst.rec.name, [px.rec]);
    const rec: ProxyRecord = { ...px.rec, ...patch, updatedAt: this.#now() };
    this.#stage(this.#proxyKey(inst.rec.name, rec.id), px, rec);
  }

  /** Holds `s` as the task's stats; planning reads them as they are (an absent count, not a null one). */
  #takeStats(s: RedisStats): void {
    if (typeof s.goodSlaves !== "number") delete s.goodSlaves;
    if (typeof s.streamingSlaves !== "number") delete s.streamingSlaves;
    if (!s.cluster) delete s.cluster;
    this.#stats.set(s.taskId, s);
  }

  async #onMessage(agentId: string, data: Uint8Array): Promise<void> {
    let msg: ExecutorToScheduler;
    try {
      msg = decodeMessage<ExecutorToScheduler>(data);
    } catch (error) {
      this.#log(`Ignoring message from agent ${agentId}: ${(error as Error).message}`);
      return;
    }
    // A LOGS answer changes nothing: it goes to its request.
    if (msg.kind === "result" && this.#logRequests.answer(msg)) return;
    const now = this.#now();
    /** Nothing a plan acts on changed: no planning pass after it (the tick's comes soon). */
    let quiet = false;
    if (msg.kind === "stats" && Array.isArray(msg.stats)) {
      if (Array.isArray(msg.proxies)) this.#noteProxyHeartbeat(msg.proxies, now);
      for (const s of msg.stats) {
        if (typeof s?.taskId !== "string") continue;
        const ids = parseTaskId(s.taskId);
        const p = ids && this.#instances.get(ids.instance)?.procs.get(ids.procId);
        if (p && p.rec.taskId === s.taskId) {
          if (isLive(p.rec)) {
            const held = this.#statsAt.get(s.taskId);
            const older = typeof msg.at === "number" && held?.runningSeen !== undefined &&
              now - held.runningSeen < RUNNING_STATS_WINDOW_MS && msg.at < held.at;
            if (!older) {
              this.#takeStats(s);
              if (typeof msg.at === "number") this.#statsAt.set(s.taskId, { at: msg.at });
              else this.#statsAt.delete(s.taskId);
            }
            this.#statsSeenAt.set(s.taskId, now);
            this.#liveness.noteStats(s, now);
          }
        } else if (
          s.role === "master" && now - (this.#strayKilledAt.get(s.taskId) ?? 0) > 5_000
        ) {
          // An old launch (or a deleted instance) answering as a master: never a second one.
          this.#strayKilledAt.set(s.taskId, now);
          this.#log(`Killing stray task ${s.taskId} that reports itself master`);
          await this.#call("kill", () => this.#mesos!.kill(s.taskId, agentId));
        }
      }
    } else if (msg.kind === "result") {
      const proxyTasks = this.#proxyCommands.get(msg.commandId);
      if (proxyTasks !== undefined) {
        // A tell's answer changes no decision (a failed one is told again
        // `retellMs` after it was sent, by a pass that time brings): no pass
        // after it, unless it also answers a command below.
        quiet = true;
        this.#proxyCommands.delete(msg.commandId);
        const batch = this.#batchTells.get(msg.commandId);
        this.#batchTells.delete(msg.commandId);
        if (batch !== undefined && !msg.ok && /unknown kind/.test(msg.error ?? "")) {
          // An older executor: one proxy-master each from now on (the retell).
          this.#singleTells.add(batch);
        }
        const failed = new Map(
          (Array.isArray(msg.failed) ? msg.failed : []).map((f) => [f.taskId, f.error]),
        );
        for (const taskId of proxyTasks) {
          const told = this.#proxyTold.get(taskId);
          const ok = msg.ok || (failed.size > 0 && !failed.has(taskId));
          if (ok && told) this.#proxyTold.set(taskId, { ...told, confirmed: true });
          if (!ok) {
            this.#log(
              `Command proxy-master for ${taskId} failed: ${failed.get(taskId) ?? msg.error}`,
            );
          }
        }
      }
      for (const [name, q] of this.#offsetQueries) {
        const procId = q.pending.get(msg.commandId);
        if (procId === undefined) continue;
        quiet = false;
        q.pending.delete(msg.commandId);
        if (msg.ok && typeof msg.replOffset === "number") q.offsets[procId] = msg.replOffset;
        else if (!msg.ok) q.failed.push(procId);
        this.#log(
          `Instance ${name}: ${procId} ${
            msg.ok ? `is at offset ${msg.replOffset}` : `did not tell its offset: ${msg.error}`
          }`,
        );
      }
      for (const [taskId, c] of this.#inflight) {
        if (c.commandId !== msg.commandId) continue;
        quiet = false;
        this.#inflight.delete(taskId);
        this.#log(
          `Command ${c.kind} ${c.instance}/${c.procId}: ${
            msg.ok ? "done" : `failed: ${msg.error}`
          }`,
        );
        if (msg.ok && c.kind === "promote") {
          // Writable now: STATUS shows it as the master at once.
          const old = this.#stats.get(taskId);
          this.#stats.set(taskId, {
            ...(old ?? {
              taskId,
              memoryUsed: 0,
              maxMemory: 0,
              uptime: 0,
              clients: 0,
              lastIoSeconds: 0,
              connectedSlaves: 0,
            }),
            role: "master",
            inSync: true,
            replOffset: msg.replOffset ?? old?.replOffset ?? 0,
            // Its slaves attach again after the REPLICAOFs: its own stats tell when.
            goodSlaves: 0,
          });
        }
        if (!msg.ok && c.kind === "replicaof") {
          const inst = this.#instances.get(c.instance);
          const p = inst?.procs.get(c.procId);
          if (inst && p) await this.#saveProc(inst, p, { replicaOf: undefined });
        }
      }
    }
    if (!quiet) await this.#reconcileAfterEvent(msg.kind === "stats");
  }

  // ---- the reconcile pass ----

  #plan() {
    const now = this.#now();
    const processes: Record<string, ProcessRecord[]> = {};
    for (const [name, inst] of this.#instances) {
      processes[name] = [...inst.procs.values()].map((p) => p.rec);
    }
    // The executors' stats hold every field planning reads (a RedisStats is an
    // ObservedStats): passed as they are, not copied for every pass.
    const stats: ReadonlyMap<string, ObservedStats> = this.#stats;
    const instances = [...this.#instances.values()].map((i) => i.rec);
    const main = plan({
      instances,
      processes,
      stats,
      inflight: new Set(this.#inflight.keys()),
      unconfirmed: new Set(this.#unanswered.keys()),
      now,
      offsetQueries: new Map(
        [...this.#offsetQueries].map(([name, q]) => [name, {
          // A master an UPDATE retires was stopped on purpose: every slave's
          // own answer is waited for (a stale offset could elect a slave
          // missing acknowledged writes), up to PLANNED_OFFSET_WAIT_MS more.
          done: q.pending.size === 0 ||
            now >= q.deadline +
                (this.#masterRetiring(name) ? PLANNED_OFFSET_WAIT_MS : UNPLANNED_OFFSET_WAIT_MS),
          offsets: q.offsets,
          failed: q.failed,
        }]),
      ),
    });
    const proxies: Record<string, ProxyRecord[]> = {};
    for (const [name, inst] of this.#instances) {
      proxies[name] = [...inst.proxies.values()].map((p) => p.rec);
    }
    const px = planProxies({ instances, processes, proxies, stats, told: this.#proxyTold, now });
    return {
      // An instance is forgotten only once its proxies are gone too.
      actions: main.actions.filter((a) => a.type !== "forget" || !px.holdForget.has(a.instance)),
      proxyActions: px.actions,
      launchable: [...main.launchable, ...px.launchable],
    };
  }

  /** Whether the master of instance `name` is being retired by an UPDATE. */
  #masterRetiring(name: string): boolean {
    const inst = this.#instances.get(name);
    return inst?.procs.get(inst.rec.masterId ?? "")?.rec.retiring === true;
  }

  async #reconcile(): Promise<void> {
    if (this.#stopped) return;
    // This pass is the one a coalescing timer waited for.
    clearTimeout(this.#passTimer);
    this.#passTimer = undefined;
    const now = this.#now();
    for (const [taskId, c] of this.#inflight) {
      if (now - c.sentAt > COMMAND_TIMEOUT_MS) {
        this.#log(`Command ${c.kind} for ${taskId} timed out`);
        this.#inflight.delete(taskId);
      }
    }
    // An offset query lives only while its instance's master (an RC: a shard's) is lost.
    for (const name of [...this.#offsetQueries.keys()]) {
      const inst = this.#instances.get(name);
      const masters = inst?.rec.type === "RC"
        ? shardMastersOf(inst.rec)
        : [inst?.rec.masterId ?? ""];
      if (!inst || !masters.some((id) => inst.procs.get(id)?.rec.state === "LOST")) {
        this.#offsetQueries.delete(name);
      }
    }
    await this.#checkLiveness(now);
    const { actions, proxyActions, launchable } = this.#plan();
    const stored = await this.#storeKills(actions);
    const tells: TellProxyAction[] = [];
    for (const action of [...actions, ...proxyActions]) {
      try {
        if (action.type === "tell-proxy") tells.push(action as TellProxyAction);
        else if (action.type.endsWith("-proxy")) {
          await this.#performProxy(action as Exclude<ProxyAction, TellProxyAction>);
        } else if (action.type === "kill" && !stored.has(action as Action)) continue;
        else await this.#perform(action as Action, stored.has(action as Action));
      } catch (error) {
        this.#log(
          `Action ${action.type} on ${action.instance} failed: ${(error as Error).message}`,
        );
      }
    }
    try {
      await this.#tellProxies(tells);
    } catch (error) {
      this.#log(`Action tell-proxy failed: ${(error as Error).message}`);
    }
    await this.#offerControl(launchable.map((p) => `${p.instance}/${p.procId}`));
    if (this.#subscribed && this.#unanswered.size > 0 && now >= this.#reconcileNextAt) {
      // The master may not answer while agents re-register: ask again, backing off.
      this.#reconcileRound++;
      this.#reconcileNextAt = now + Math.min(60_000, 5_000 * 2 ** this.#reconcileRound);
      const tasks = [...this.#unanswered].map(([taskId, agentId]) => ({
        taskId,
        ...(agentId ? { agentId } : {}),
      }));
      this.#log(`Reconciling ${tasks.length} unanswered task(s) again`);
      await this.#call("reconcile", () => this.#mesos!.reconcile(tasks));
    }
    if (now - this.#historySweptAt >= HISTORY_SWEEP_MS) {
      this.#historySweptAt = now;
      await this.#sweepHistories(now);
    }
    if (this.#subscribed && now - this.#lastImplicitReconcile > IMPLICIT_RECONCILE_MS) {
      this.#lastImplicitReconcile = now;
      await this.#call("reconcile", () => this.#mesos!.reconcile([]));
    }
  }

  /**
   * Failure detection of RUNNING processes (rules and table in
   * `detection.ts`): a process in doubt (stats silence, Mesos' doubt, its
   * executor's unanswered checks) is checked directly and kept while it
   * answers; a confirmed one is treated as lost (fenced and killed before
   * anything replaces it), except on time-outs alone when it holds the only
   * copy of the data. Stats silence also asks Mesos (explicit reconciliation).
   */
  async #checkLiveness(now: number): Promise<void> {
    if (!this.#subscribed || !this.#mesos) return;
    const ask: { taskId: string; agentId?: string }[] = [];
    const opts = this.#liveness.options;
    for (const inst of this.#instances.values()) {
      if (inst.rec.status === "DELETING") continue;
      const running = [...inst.procs.values()].filter((p) =>
        p.rec.state === "RUNNING" && p.rec.taskId
      );
      const inputs = running.map((p) => this.#livenessInput(p.rec, now));
      // A process with no doubt is alive whatever `otherCopy` is: judged once.
      const first = inputs.map((input) => judgeLiveness({ ...input, otherCopy: true }, opts));
      const doubted = new Set(
        running.filter((_, i) => first[i]!.verdict !== "alive").map((p) => p.rec.taskId),
      );
      const recs = doubted.size > 0 ? [...inst.procs.values()].map((p) => p.rec) : [];
      for (const [i, p] of running.entries()) {
        let verdict = first[i]!;
        if (verdict.verdict === "alive") {
          this.#noteAlive(p.rec.taskId, inst.rec.name);
          continue;
        }
        // A cluster node's copies are in its own shard.
        const rc = inst.rec.type === "RC";
        const shard = p.rec.shard ?? 0;
        const otherCopy = hasOtherCopy(
          p.rec,
          rc ? recs.filter((r) => (r.shard ?? 0) === shard) : recs,
          rc ? shardMastersOf(inst.rec)[shard] : inst.rec.masterId,
          this.#stats,
          doubted,
        );
        verdict = judgeLiveness({ ...inputs[i]!, otherCopy }, opts);
        this.#askMesosOnSilence(ask, p.rec, verdict, now);
        await this.#onLiveness(inst, p, verdict).catch((e) =>
          this.#log(`Cannot act on the health of ${p.rec.taskId}: ${(e as Error).message}`)
        );
      }
    }
    for (const inst of this.#instances.values()) {
      if (inst.rec.status === "DELETING") continue;
      for (const px of inst.proxies.values()) {
        if (px.rec.state !== "RUNNING" || !px.rec.taskId) continue;
        // A proxy holds no data: time-outs alone may end it.
        const verdict = judgeLiveness(
          { ...this.#livenessInput(px.rec, now), otherCopy: true },
          opts,
        );
        this.#askMesosOnSilence(ask, px.rec, verdict, now);
        await this.#onProxyLiveness(inst, px, verdict).catch((e) =>
          this.#log(`Cannot act on the health of ${px.rec.taskId}: ${(e as Error).message}`)
        );
      }
    }
    if (ask.length > 0) {
      this.#log(`No stats lately from ${ask.map((t) => t.taskId).join(", ")}: asking Mesos`);
      await this.#call("reconcile", () => this.#mesos!.reconcile(ask));
    }
  }

  /**
   * A task in doubt for stats silence is asked about (explicit
   * reconciliation) at most once per silence period: adds it to `ask`.
   */
  #askMesosOnSilence(
    ask: { taskId: string; agentId?: string }[],
    rec: { taskId: string; agentId?: string },
    verdict: Liveness,
    now: number,
  ): void {
    if (verdict.verdict !== "suspect" || !verdict.askMesos) return;
    const asked = this.#silenceAskedAt.get(rec.taskId) ?? 0;
    if (now - asked < this.#liveness.options.statsSilenceMs) return;
    this.#silenceAskedAt.set(rec.taskId, now);
    ask.push({ taskId: rec.taskId, ...(rec.agentId ? { agentId: rec.agentId } : {}) });
  }

  /**
   * What detection looks at for a RUNNING task (a redis process or a proxy;
   * the executor reports unanswered checks for redis processes only).
   */
  #livenessInput(rec: ProcessRecord | ProxyRecord, now: number) {
    const taskId = rec.taskId;
    const statsAt = Math.max(this.#statsSeenAt.get(taskId) ?? 0, this.#subscribedAt);
    const unanswered = this.#liveness.unanswered(taskId);
    return {
      now,
      statsAt,
      streamFlowing: this.#lastEventAt > statsAt,
      mesosState: rec.lastState,
      unansweredSince: unanswered?.since,
      procState: unanswered?.state,
      probe: this.#liveness.history(taskId),
      probeable: Boolean(rec.host && rec.port),
    };
  }

  /**
   * Starts a direct check of `taskId` when one is due; its result is
   * recorded from the core's queue, then a planning pass runs.
   */
  #probeIfDue(taskId: string, target: Omit<ProbeTarget, "timeoutMs">): void {
    this.#liveness.probeIfDue(taskId, target, (record) => {
      if (this.#stopped) return;
      this.#enqueue(() => {
        record();
        return this.#reconcile();
      }).catch((e) => this.#log(`Reconcile failed: ${(e as Error).message}`));
    });
  }

  /**
   * The executor's stats name the proxy tasks it hosts: each one named that
   * is still ours has been heard from (the proxies' stats-silence clock).
   */
  #noteProxyHeartbeat(taskIds: unknown[], now: number): void {
    for (const taskId of taskIds) {
      if (typeof taskId !== "string") continue;
      const ids = parseTaskId(taskId);
      const px = ids && this.#instances.get(ids.instance)?.proxies.get(ids.procId);
      if (px && px.rec.taskId === taskId && px.rec.state === "RUNNING") {
        this.#statsSeenAt.set(taskId, now);
      }
    }
  }

  /**
   * Performs one verdict about a proxy. A proxy whose executor is silent and
   * which does not answer a PING itself (a stopped executor holds its
   * listening socket, so clients connect and hang) is killed and launched
   * again elsewhere; its agent is avoided until the new one runs.
   */
  async #onProxyLiveness(inst: InstState, px: ProxyState, verdict: Liveness): Promise<void> {
    const taskId = px.rec.taskId;
    const before = this.#liveness.note(taskId, verdict.verdict);
    switch (verdict.verdict) {
      case "alive":
        this.#liveness.clear(taskId);
        if (before) this.#log(`Proxy task ${taskId} of ${inst.rec.name}: out of doubt`);
        return;
      case "lost": {
        const agentId = px.rec.agentId;
        this.#forgetTask(taskId);
        this.#proxyLost(inst, px, verdict.reason, verdict.state, {
          ...(agentId ? { avoidAgentId: agentId } : {}),
        });
        await this.#call("kill", () => this.#mesos!.kill(taskId, agentId));
        return;
      }
      case "suspect":
      case "kept":
        if (!px.rec.host || !px.rec.port) return;
        // Any reply (PONG, NOAUTH, the proxy's own -ERR) proves it serves.
        this.#probeIfDue(taskId, { host: px.rec.host, port: px.rec.port });
        if (before !== undefined && verdict.verdict === "suspect") {
          this.#log(
            `Proxy task ${taskId} of ${inst.rec.name} in doubt (${verdict.doubt}): checking it directly`,
          );
        }
        return;
    }
  }

  /** Performs one verdict of the detection. */
  /** A RUNNING process with no doubt (see `#onLiveness`); synchronous, for the common case. */
  #noteAlive(taskId: string, name: string): void {
    const before = this.#liveness.note(taskId, "alive");
    this.#liveness.clear(taskId);
    if (before) this.#log(`Task ${taskId} of ${name}: out of doubt`);
  }

  async #onLiveness(inst: InstState, p: ProcState, verdict: Liveness): Promise<void> {
    const taskId = p.rec.taskId;
    const name = inst.rec.name;
    if (verdict.verdict === "alive") return this.#noteAlive(taskId, name);
    const before = this.#liveness.note(taskId, verdict.verdict);
    switch (verdict.verdict) {
      case "lost":
        this.#forgetTask(taskId);
        await this.#markLost(inst, p, verdict.reason, verdict.state);
        return;
      case "suspect":
      case "kept": {
        if (!p.rec.host || !p.rec.port) return;
        this.#probeIfDue(taskId, {
          host: p.rec.host,
          port: p.rec.port,
          // The executor's own user: the probe's ROLE works whatever the tenant's ACL.
          ...(inst.rec.adminPassword
            ? { username: ADMIN_USER, password: inst.rec.adminPassword }
            : {}),
        });
        if (before === undefined) return;
        if (verdict.verdict === "suspect") {
          this.#log(`Task ${taskId} of ${name} in doubt (${verdict.doubt}): checking it directly`);
          return;
        }
        this.#log(`Task ${taskId} of ${name}: ${verdict.reason}`);
        await this.#saveInstance(inst, {
          lastEvent: `${new Date(this.#now()).toISOString()}: ${p.rec.id}: ${verdict.reason}`,
        });
        return;
      }
    }
  }

  /** Removes the histories of instances deleted more than a day ago (events.ts). */
  async #sweepHistories(now: number): Promise<void> {
    for (const name of this.#history.expired(now, (n) => this.#instances.has(n))) {
      try {
        await this.#store.deletePrefix(this.#history.historyPrefix(name));
        this.#history.forget(name);
        this.#log(`Removed the event history of ${name} (deleted a day ago)`);
      } catch (error) {
        this.#log(`Cannot remove the event history of ${name}: ${(error as Error).message}`);
      }
    }
  }

  /** Drops what is kept in memory about a task that ended. */
  #forgetTask(taskId: string): void {
    this.#proxyTold.delete(taskId);
    this.#stats.delete(taskId);
    this.#inflight.delete(taskId);
    this.#statsSeenAt.delete(taskId);
    this.#statsAt.delete(taskId);
    this.#silenceAskedAt.delete(taskId);
    this.#liveness.forget(taskId);
  }

  /** REVIVE when new work waits (at most every 100 ms), SUPPRESS when none does. */
  async #offerControl(keys: string[]): Promise<void> {
    if (!this.#mesos || !this.#subscribed) return;
    const now = this.#now();
    if (keys.length === 0) {
      this.#needRevive = false;
      // Offers keep coming until they have shown the agents (or a while passed).
      const learning = !this.#offersSeen && now < this.#learnAgentsUntil;
      if (!this.#suppressed && !learning) {
        if (await this.#call("suppress", () => this.#mesos!.suppress())) this.#suppressed = true;
      }
    } else {
      if (this.#suppressed || keys.some((k) => !this.#lastLaunchable.has(k))) {
        this.#needRevive = true;
      }
      const wait = REVIVE_MIN_INTERVAL_MS - (now - this.#lastReviveAt);
      if (this.#needRevive && wait <= 0) {
        if (await this.#call("revive", () => this.#mesos!.revive())) {
          this.#suppressed = false;
          this.#needRevive = false;
          this.#lastReviveAt = now;
        }
      } else if (this.#needRevive && this.#reviveTimer === undefined && !this.#stopped) {
        // Too soon after the last one: revive as soon as allowed, not on the next tick.
        this.#reviveTimer = setTimeout(() => {
          this.#reviveTimer = undefined;
          this.#kick();
        }, wait);
        Deno.unrefTimer(this.#reviveTimer);
      }
    }
    this.#lastLaunchable = new Set(keys);
  }

  /**
   * Stores the KILLING state of every process `actions` kill, in one batch,
   * before any of those kills goes to Mesos (a DELETE of 51 processes is one
   * commit, not 51). Returns the kill actions whose state is stored; none
   * when the batch failed (logged), and this pass sends none of them: the
   * next pass plans them again.
   */
  async #storeKills(actions: readonly Action[]): Promise<Set<Action>> {
    const kills = new Set<Action>();
    const now = this.#now();
    for (const action of actions) {
      if (action.type !== "kill") continue;
      const inst = this.#instances.get(action.instance);
      const proc = inst?.procs.get(action.procId);
      if (!inst || !proc) continue;
      await this.#saveProc(inst, proc, { state: "KILLING", killSentAt: now });
      kills.add(action);
    }
    if (kills.size === 0) return kills;
    try {
      await this.#flush();
      return kills;
    } catch (error) {
      this.#log(`Cannot store ${kills.size} kill(s): ${(error as Error).message}`);
      return new Set();
    }
  }

  async #perform(action: Action, killStored = false): Promise<void> {
    const inst = this.#instances.get(action.instance);
    if (!inst) return;
    const proc = "procId" in action ? inst.procs.get(action.procId) : undefined;
    switch (action.type) {
      case "status":
        if (action.status === inst.rec.status) {
          // The reason alone is derived (the plan computes it again after a
          // restart): it goes to the store with the next write of the record.
          inst.rec = { ...inst.rec, reason: action.reason };
        } else {
          await this.#saveInstance(inst, {
            status: action.status,
            reason: action.reason,
          });
        }
        this.#log(
          `Instance ${inst.rec.name} is ${action.status}${
            action.reason ? ` (${action.reason})` : ""
          }`,
        );
        return;
      case "kill":
        if (!proc) return;
        if (!killStored) {
          await this.#saveProc(inst, proc, { state: "KILLING", killSentAt: this.#now() });
        }
        await this.#call("kill", () => this.#mesos!.kill(action.taskId, action.agentId));
        return;
      case "relaunch":
        if (!proc) return;
        if (proc.rec.lastState && MAYBE_ALIVE.has(proc.rec.lastState) && proc.rec.taskId) {
          // The old task may come back; make sure it does not.
          await this.#call("kill", () => this.#mesos!.kill(proc.rec.taskId, proc.rec.agentId));
        }
        await this.#saveProc(inst, proc, { state: "PENDING", retryAt: undefined });
        return;
      case "forget":
        await this.#forget(inst);
        return;
      case "query-offsets": {
        const query: OffsetQuery = {
          deadline: this.#now() + this.#offsetQueryMs,
          pending: new Map(),
          offsets: {},
          failed: [],
        };
        this.#offsetQueries.set(inst.rec.name, query);
        for (const procId of action.procIds) {
          const p = inst.procs.get(procId);
          if (!p) continue;
          const commandId = await this.#command(inst, p, { kind: "offset", taskId: p.rec.taskId });
          if (commandId) query.pending.set(commandId, procId);
        }
        this.#log(
          `Instance ${inst.rec.name}: master lost; asking ${
            action.procIds.join(", ")
          } for their offsets`,
        );
        // Passes at the deadline and at the end of the extra wait (answers kick on their own).
        for (
          const after of [
            this.#offsetQueryMs + 10,
            this.#offsetQueryMs + UNPLANNED_OFFSET_WAIT_MS + 10,
          ]
        ) {
          Deno.unrefTimer(setTimeout(() => this.#kick(), after));
        }
        return;
      }
      case "promote": {
        if (!proc) return;
        const old = action.oldMasterId ? inst.procs.get(action.oldMasterId) : undefined;
        this.#offsetQueries.delete(inst.rec.name);
        if (inst.rec.masterId !== proc.rec.id || inst.rec.promotingId !== proc.rec.id) {
          const newMaster = inst.rec.masterId !== proc.rec.id;
          this.#promoteStartedAt.set(inst.rec.name, {
            at: this.#now(),
            ...(old ? { oldMaster: old.rec.id } : {}),
          });
          const epoch = (inst.rec.epoch ?? 0) + (newMaster ? 1 : 0);
          // Persisted before the promote is sent: a restart resumes this very promotion.
          await this.#saveInstance(inst, {
            masterId: proc.rec.id,
            promotingId: proc.rec.id,
            promotedFrom: newMaster ? old?.rec.id : inst.rec.promotedFrom,
            epoch,
            status: inst.rec.status === "CREATING" ? "CREATING" : "FAILING_OVER",
            reason: `Promoting ${proc.rec.id} to master`,
            ...(newMaster
              ? {
                lastEvent: `${
                  new Date(this.#now()).toISOString()
                }: ${proc.rec.id} promoted to master${
                  old ? ` in place of ${old.rec.id}` : ""
                } (epoch ${epoch})`,
              }
              : {}),
          });
          this.#log(
            `Instance ${inst.rec.name}: promoting ${proc.rec.id} (${addressOf(proc.rec)})${
              old ? ` in place of ${old.rec.id}` : ""
            }`,
          );
        }
        if (proc.rec.role !== "master" || proc.rec.replicaOf !== undefined) {
          await this.#saveProc(inst, proc, { role: "master", replicaOf: undefined });
        }
        if (old && old.rec.role !== "slave") await this.#saveProc(inst, old, { role: "slave" });
        await this.#command(inst, proc, { kind: "promote", taskId: proc.rec.taskId });
        return;
      }
      case "promoted":
        this.#event(
          inst.rec.name,
          promotedEvent({
            ...failoverOf(
              this.#history,
              inst.rec.name,
              this.#promoteStartedAt.get(inst.rec.name),
              this.#now(),
            ),
            newMaster: action.procId,
            epoch: inst.rec.epoch ?? 0,
          }),
        );
        this.#promoteStartedAt.delete(inst.rec.name);
        await this.#saveInstance(inst, { promotingId: undefined, promotedFrom: undefined });
        this.#log(`Instance ${inst.rec.name}: ${action.procId} is the master`);
        return;
      case "unpromote": {
        if (!proc) return;
        const lost = inst.procs.get(action.lostId);
        const epoch = (inst.rec.epoch ?? 0) + 1;
        this.#promoteStartedAt.delete(inst.rec.name);
        await this.#saveInstance(inst, {
          masterId: proc.rec.id,
          promotingId: undefined,
          promotedFrom: undefined,
          epoch,
          lastEvent: `${
            new Date(this.#now()).toISOString()
          }: ${action.lostId} lost while being promoted; ${proc.rec.id}, the master before it, is master again from its data (epoch ${epoch})`,
        });
        await this.#saveProc(inst, proc, { role: "master", replicaOf: undefined });
        if (lost && lost.rec.role !== "slave") await this.#saveProc(inst, lost, { role: "slave" });
        this.#log(
          `Instance ${inst.rec.name}: ${action.lostId} lost while being promoted; ${proc.rec.id} is master again`,
        );
        return;
      }
      case "fence":
        if (!proc) return;
        this.#event(
          inst.rec.name,
          fencedEvent({
            procId: proc.rec.id,
            taskId: proc.rec.taskId,
            reason: `lost master out of touch (${proc.rec.lastState}): no writes, then killed`,
          }),
        );
        await this.#command(inst, proc, { kind: "fence", taskId: proc.rec.taskId });
        await this.#call("kill", () => this.#mesos!.kill(proc.rec.taskId, proc.rec.agentId));
        return;
      case "cluster":
        if (!proc) return;
        this.#log(
          `Instance ${inst.rec.name}: ${proc.rec.id} runs ${
            action.ops.map((o) => o.op).join(", ")
          }`,
        );
        await this.#command(inst, proc, {
          kind: "cluster",
          taskId: proc.rec.taskId,
          ops: action.ops,
        });
        return;
      case "node-id": {
        if (!proc) return;
        const old = proc.rec.nodeId;
        if (old && old !== action.nodeId && !(inst.rec.ghosts ?? []).includes(old)) {
          await this.#saveInstance(inst, { ghosts: [...(inst.rec.ghosts ?? []), old] });
        }
        await this.#saveProc(inst, proc, { nodeId: action.nodeId });
        return;
      }
      case "ghosts":
        await this.#saveInstance(inst, { ghosts: action.ghosts });
        return;
      case "shard-failover": {
        const old = inst.procs.get(action.oldMasterId);
        if (!proc || !old) return;
        this.#offsetQueries.delete(inst.rec.name);
        // Its end ("promoted") is recorded with the failover's timing, as for MS.
        this.#promoteStartedAt.set(inst.rec.name, { at: this.#now(), oldMaster: old.rec.id });
        const masters = [...shardMastersOf(inst.rec)];
        masters[action.shard] = proc.rec.id;
        const epoch = (inst.rec.epoch ?? 0) + 1;
        const ghost = old.rec.nodeId;
        // Persisted before the takeover is sent: a restart resumes this very failover.
        await this.#saveInstance(inst, {
          shardMasters: masters,
          promotingId: proc.rec.id,
          epoch,
          status: "FAILING_OVER",
          reason: `Promoting ${proc.rec.id} to master of shard ${action.shard}`,
          ...(ghost && !(inst.rec.ghosts ?? []).includes(ghost)
            ? { ghosts: [...(inst.rec.ghosts ?? []), ghost] }
            : {}),
          lastEvent: `${
            new Date(this.#now()).toISOString()
          }: ${proc.rec.id} promoted to master of shard ${action.shard} in place of ${old.rec.id} (epoch ${epoch})`,
        });
        await this.#saveProc(inst, proc, { role: "master" });
        // The old master comes back as a new replica (a new node id).
        await this.#saveProc(inst, old, {
          role: "slave",
          nodeId: undefined,
          pinAgentUntil: undefined,
        });
        this.#log(
          `Instance ${inst.rec.name}: shard ${action.shard}: promoting ${proc.rec.id} (${
            addressOf(proc.rec)
          }) in place of ${old.rec.id}`,
        );
        await this.#command(inst, proc, {
          kind: "cluster",
          taskId: proc.rec.taskId,
          ops: [{ op: "takeover" }],
        });
        return;
      }
      case "replicaof":
        if (!proc) return;
        await this.#saveProc(inst, proc, { replicaOf: `${action.host}:${action.port}` });
        await this.#command(inst, proc, {
          kind: "replicaof",
          taskId: proc.rec.taskId,
          host: action.host,
          port: action.port,
        });
        return;
      default:
        await this.#performUpdate(inst, action);
    }
  }

  /** Performs one step of an UPDATE (`update_plan.ts`). */
  async #performUpdate(inst: InstState, action: UpdateAction): Promise<void> {
    const name = inst.rec.name;
    const u = inst.rec.update;
    const proc = "procId" in action ? inst.procs.get(action.procId) : undefined;
    switch (action.type) {
      case "add-slave": {
        const spec = launchSpecOf(inst.rec);
        const rec: ProcessRecord = {
          id: action.procId,
          taskId: "",
          role: "slave",
          state: "PENDING",
          launchCount: 0,
          failures: 0,
          updatedAt: this.#now(),
          joining: true,
          capacityMB: spec.capacityMB,
          minReplicas: spec.minReplicasToWrite,
        };
        const p: ProcState = { rec, version: null };
        this.#stage(this.#procKey(name, rec.id), p, rec, true);
        inst.procs.set(rec.id, p);
        const n = Number(/^p(\d+)$/.exec(rec.id)?.[1] ?? 0);
        await this.#saveInstance(inst, { lastProcId: Math.max(inst.rec.lastProcId ?? 0, n) });
        this.#log(`Instance ${name}: adding slave ${rec.id} (${spec.capacityMB} MB)`);
        return;
      }
      case "joined":
        if (!proc) return;
        await this.#saveProc(inst, proc, { joining: undefined });
        await this.#saveInstance(inst, { slaves: action.slaves });
        this.#log(`Instance ${name}: slave ${action.procId} is in sync and counts now`);
        return;
      case "retire": {
        if (!proc) return;
        await this.#saveInstance(inst, { slaves: action.slaves });
        if (!isLive(proc.rec)) {
          // Never launched or already ended: its record goes on the next pass.
          await this.#saveProc(inst, proc, { retiring: true });
          return;
        }
        await this.#saveProc(inst, proc, {
          retiring: true,
          state: "KILLING",
          killSentAt: this.#now(),
        });
        this.#log(
          `Instance ${name}: removing ${action.master ? "master" : "slave"} ${action.procId}${
            action.master ? " (fenced; a new slave takes its place)" : ""
          }`,
        );
        // The master is fenced and killed; the plan's failover then promotes
        // the most advanced slave. The master is alive, so its executor first
        // stops its writes and waits for a slave to take all of them: a slave
        // that synced a moment ago may not get the stream for up to a second,
        // and the slaves that had it may just have been retired.
        if (action.master) {
          await this.#command(inst, proc, {
            kind: "fence",
            taskId: proc.rec.taskId,
            drainMs: PLANNED_DRAIN_MS,
          });
        }
        await this.#call("kill", () => this.#mesos!.kill(proc.rec.taskId, proc.rec.agentId));
        return;
      }
      case "remove":
        if (proc) await this.#removeProcess(inst, proc);
        return;
      case "update-phase":
        if (!u) return;
        await this.#saveInstance(inst, { update: { ...u, phase: action.phase } });
        this.#log(`Instance ${name} update: ${action.phase}`);
        return;
      case "update-done": {
        if (!u) return;
        const t = u.target;
        const promotions = (inst.rec.epoch ?? 0) - u.startEpoch;
        const what = replacesProcesses(u.from, t) ? "resized" : "scaled";
        const detail = `${describeShape(u.from)} → ${describeShape(t)} in ${
          ((this.#now() - u.startedAt) / 1000).toFixed(1)
        } s, ${promotions} promotion${promotions === 1 ? "" : "s"}`;
        const event = `${name} ${what}: ${detail}`;
        if (t.capacityMB !== u.from.capacityMB) {
          this.#event(
            name,
            resizedEvent({ fromMB: u.from.capacityMB, toMB: t.capacityMB, detail }),
          );
        }
        if (t.slaves !== u.from.slaves || t.capacityMB === u.from.capacityMB) {
          this.#event(
            name,
            scaledEvent({ fromSlaves: u.from.slaves, toSlaves: t.slaves, detail }),
          );
        }
        await this.#saveInstance(inst, {
          update: undefined,
          capacityMB: t.capacityMB,
          slaves: t.slaves,
          distribution: t.distribution,
          type: t.slaves > 0 ? "MS" : "S",
          lastEvent: `${new Date(this.#now()).toISOString()}: ${event}`,
        });
        this.#log(`Instance ${event}`);
        return;
      }
    }
  }

  /** Deletes the record of a retired process whose task has ended, and its data dir. */
  async #removeProcess(inst: InstState, p: ProcState): Promise<void> {
    const name = inst.rec.name;
    this.#forgetTask(p.rec.taskId);
    // No record holds its port after this: the quarantine is stored.
    this.#quarantinePorts(name, [p.rec], true);
    await this.#flush();
    await this.#store.batch([{ key: this.#procKey(name, p.rec.id), delete: true }]);
    inst.procs.delete(p.rec.id);
    this.#log(`Instance ${name}: process ${p.rec.id} removed`);
    if (!p.rec.agentId || !p.rec.taskId) return;
    const dataDir = dataDirOf(name, inst.rec.createdAt, p.rec.id);
    await this.#command(inst, p, { kind: "purge", taskId: p.rec.taskId, dataDir });
    await this.#removeDataDirs?.([dataDir]).catch((error) =>
      this.#log(`Cannot remove the data dir of ${name}/${p.rec.id}: ${(error as Error).message}`)
    );
  }

  /**
   * Sends a command (with the instance's epoch) to the executor of `p`;
   * returns its id, or `undefined` when `p` has no agent. All but `offset`
   * are tracked as in flight.
   */
  async #command(
    inst: InstState,
    p: ProcState,
    cmd:
      | { kind: "promote"; taskId: string }
      | { kind: "fence"; taskId: string; drainMs?: number }
      | { kind: "offset"; taskId: string }
      | { kind: "purge"; taskId: string; dataDir: string }
      | { kind: "logs"; taskId: string; dataDir: string; lines: number }
      | { kind: "replicaof"; taskId: string; host: string; port: number }
      | { kind: "cluster"; taskId: string; ops: ClusterOp[] },
    flush = true,
  ): Promise<string | undefined> {
    if (!p.rec.agentId) return undefined;
    const commandId = `c${++this.#commandSeq}-${this.#now()}`;
    const msg = { ...cmd, commandId, epoch: inst.rec.epoch ?? 0 } as SchedulerToExecutor;
    if (cmd.kind !== "offset" && cmd.kind !== "purge" && cmd.kind !== "logs") {
      this.#inflight.set(p.rec.taskId, {
        commandId,
        kind: cmd.kind,
        instance: inst.rec.name,
        procId: p.rec.id,
        sentAt: this.#now(),
      });
    }
    const agentId = p.rec.agentId;
    await this.#call(
      "message",
      () => this.#mesos!.message(agentId, p.rec.executorId ?? EXECUTOR_ID, encodeMessage(msg)),
      flush,
    );
    return commandId;
  }

  async #forget(inst: InstState): Promise<void> {
    const name = inst.rec.name;
    for (const p of [...inst.procs.values(), ...inst.proxies.values()]) {
      if (p.rec.taskId && p.rec.lastState && MAYBE_ALIVE.has(p.rec.lastState)) {
        await this.#call("kill", () => this.#mesos!.kill(p.rec.taskId, p.rec.agentId));
      }
      this.#forgetTask(p.rec.taskId);
    }
    this.#offsetQueries.delete(name);
    this.#quarantinePorts(
      name,
      [...inst.procs.values(), ...inst.proxies.values()].map((p) => p.rec),
      true,
    );
    // Every task is gone: the executors remove the data dirs (best effort; an
    // agent whose executor has exited keeps the dir). Nothing of it needs to
    // be stored first: a scheduler that stops before the batch below finds
    // the instance DELETING and forgets it again.
    for (const p of inst.procs.values()) {
      if (!p.rec.agentId || !p.rec.taskId) continue;
      await this.#command(inst, p, {
        kind: "purge",
        taskId: p.rec.taskId,
        dataDir: dataDirOf(name, inst.rec.createdAt, p.rec.id),
      }, false);
    }
    // Every key of the instance goes with the batch at the end of this
    // burst, shared by the instances forgotten together (70 singles deleted
    // at once were two commits each): the processes and the record, with the
    // last event of its history (which stays a day). A failed batch keeps
    // the deletes for the next one.
    const keys = [
      ...[...inst.procs.values()].map((p) => this.#procKey(name, p.rec.id)),
      ...[...inst.proxies.values()].map((p) => this.#proxyKey(name, p.rec.id)),
      this.#instKey(name),
    ];
    for (const key of keys) {
      this.#staged.delete(key);
      this.#stagedDeletes.add(key);
    }
    this.#creating.delete(name);
    this.#stagedEvents.push(this.#history.record(name, deletedEvent(), this.#now()));
    this.#pending ??= deferred();
    if (this.#removeDataDirs) {
      const dirs = [...inst.procs.values()].map((p) =>
        dataDirOf(name, inst.rec.createdAt, p.rec.id)
      );
      await this.#removeDataDirs(dirs).catch((error) =>
        this.#log(`Cannot remove the data dirs of ${name}: ${(error as Error).message}`)
      );
    }
    this.#instances.delete(name);
    delete this.#placementReasons[name];
    this.#log(`Instance ${name} deleted`);
  }

  /**
   * Makes a Mesos call after flushing the staged writes (unless `flush` is
   * false); logs and returns false when the call fails (the plan retries later).
   */
  async #call(what: string, fn: () => Promise<void>, flush = true): Promise<boolean> {
    if (!this.#mesos) return false;
    // Persist before acting on Mesos: what is staged is committed first (a
    // failed commit throws, and the call is not made).
    if (flush) await this.#flush();
    try {
      await fn();
      return true;
    } catch (error) {
      this.#log(`Mesos ${what} failed: ${(error as Error).message}`);
      return false;
    }
  }

  // ---- persistence (one batch per event, compare-and-set per key) ----

  /**
   * Stages a new instance record: memory changes at once, the store with the
   * next {@linkcode Scheduler.#flush} (before any Mesos call, and at the end
   * of the event at the latest).
   */
  #saveInstance(inst: InstState, patch: Partial<InstanceRecord>): Promise<void> {
    const rec: InstanceRecord = {
      ...inst.rec,
      ...patch,
      rev: inst.rec.rev + 1,
      updatedAt: this.#now(),
    };
    this.#stage(this.#instKey(rec.name), inst, rec);
    return Promise.resolve();
  }

  /**
   * Records an event in the history of instance `name` (build it with the
   * `*Event` functions of events.ts, e.g. `scaledEvent`, `resizedEvent`).
   * Memory changes at once; the store write goes in the same batch as the
   * record writes staged around it, so the event is stored exactly when the
   * change it describes is. Call it from inside a queued job, next to the
   * `#saveInstance`/`#saveProc` of the change.
   */
  #event(name: string, event: NewEvent): void {
    this.#stagedEvents.push(this.#history.record(name, event, this.#now()));
    this.#pending ??= deferred();
  }

  /** Keeps the ports `recs` of `instance` hold (or held) from other instances for a while. */
  #quarantinePorts(
    instance: string,
    recs: Iterable<ProcessRecord | ProxyRecord>,
    retire = false,
  ): void {
    const used: PortInUse[] = [];
    for (const r of recs) {
      if (r.agentId && r.port) used.push({ agentId: r.agentId, port: r.port, instance });
    }
    if (used.length === 0) return;
    const now = this.#now();
    markPortsInUse(this.#portQuarantine, used, now, this.#portQuarantineMs);
    if (!retire || this.#portQuarantineMs <= 0) return;
    // No process record will show these ports after this: store them.
    const until = now + this.#portQuarantineMs;
    this.#storeRetired(used.map((u) => ({ ...u, until })), now);
  }

  /**
   * Stages the records of the blocks the ports `used` fall in: each with its
   * ports of `used` (kept until their `until`), without what expired by `now`.
   */
  #storeRetired(used: (PortInUse & { until: number })[], now: number): void {
    const byKey = new Map<string, (PortInUse & { until: number })[]>();
    for (const u of used) {
      const key = this.#retiredKey(u.agentId, u.port);
      const list = byKey.get(key) ?? [];
      list.push(u);
      byKey.set(key, list);
    }
    for (const [key, list] of byKey) {
      let holder = this.#retired.get(key);
      if (!holder) {
        holder = { rec: { ports: [] } as RetiredPorts, version: null };
        this.#retired.set(key, holder);
      }
      // Each port once: the newest retirement of it wins.
      const fresh = new Map<number, RetiredPorts["ports"][number]>();
      for (const u of list) {
        if (u.until >= (fresh.get(u.port)?.until ?? 0)) {
          fresh.set(u.port, { port: u.port, instance: u.instance, until: u.until });
        }
      }
      const ports = (holder.rec as RetiredPorts).ports.filter((e) =>
        e.until > now && !fresh.has(e.port)
      );
      ports.push(...fresh.values());
      this.#stage(key, holder, { ports });
    }
  }

  /** Stages a new process record (see {@linkcode Scheduler.#saveInstance}). */
  #saveProc(inst: InstState, p: ProcState, patch: Partial<ProcessRecord>): Promise<void> {
    // The port this process held (before a relaunch elsewhere or its end) stays its instance's.
    const moves = ("agentId" in patch && patch.agentId !== p.rec.agentId) ||
      ("port" in patch && patch.port !== p.rec.port);
    this.#quarantinePorts(inst.rec.name, [p.rec], moves);
    const rec: ProcessRecord = { ...p.rec, ...patch, updatedAt: this.#now() };
    this.#stage(this.#procKey(inst.rec.name, rec.id), p, rec);
    return Promise.resolve();
  }

  /**
   * Puts `rec` in memory and stages its write. A key staged twice before a
   * flush is written once, with its last record, compared against the
   * version it had before the first.
   */
  #stage(
    key: string,
    holder: Holder,
    rec: StoredRecord,
    unconditional = false,
  ): void {
    // Written again after a delete was staged (a name created anew): the put supersedes it.
    this.#stagedDeletes.delete(key);
    const staged = this.#staged.get(key);
    if (staged && staged.holder === holder) {
      staged.rec = rec;
    } else {
      this.#staged.set(key, { key, holder, before: holder.rec, rec, unconditional });
    }
    holder.rec = rec;
    this.#pending ??= deferred();
  }

  /**
   * Resolves once every write staged so far is in the store (what an
   * acknowledgement waits for); rejects when their batch failed.
   */
  #durable(): Promise<void> {
    return this.#pending?.promise ?? this.#committing ?? Promise.resolve();
  }

  /**
   * Writes every staged record in one store batch (flushes run one at a
   * time). On failure the records go back to what they were in memory, and
   * the error is thrown: a {@linkcode ConflictError} when another writer
   * changed one of the keys (its current version is taken for the next
   * write), else the store's error.
   */
  #flush(): Promise<void> {
    const run = this.#flushChain.then(() => this.#commit());
    this.#flushChain = run.catch(() => {});
    return run;
  }

  async #commit(): Promise<void> {
    const pending = this.#pending;
    this.#pending = undefined;
    if (
      this.#staged.size === 0 && this.#stagedEvents.length === 0 && this.#stagedDeletes.size === 0
    ) {
      pending?.resolve();
      return;
    }
    const entries = [...this.#staged.values()];
    this.#staged.clear();
    const events = this.#stagedEvents;
    this.#stagedEvents = [];
    const deletes = [...this.#stagedDeletes];
    this.#stagedDeletes.clear();
    const created = this.#creating;
    this.#creating = new Map();
    this.#requestsWaiting = 0;
    this.#committing = pending?.promise;
    const writes: BatchWrite[] = entries.map((e) => ({
      key: e.key,
      value: JSON.stringify(e.rec),
      ...(e.unconditional ? {} : { version: e.holder.version }),
    }));
    // The events and deletes after the records (a conflict index is always a record's).
    writes.push(...eventWrites(events));
    writes.push(...deletes.map((key) => ({ key, delete: true as const })));
    try {
      const result = await this.#store.batch(writes);
      if (result.ok) {
        entries.forEach((e, i) => e.holder.version = result.versions[i] ?? e.holder.version);
        for (const inst of created.values()) inst.durable = undefined;
        this.#commits++;
        pending?.resolve();
        return;
      }
      for (const e of entries) if (e.holder.rec === e.rec) e.holder.rec = e.before;
      // Someone else wrote the key. We are the only writer by design: fail this
      // batch (the plan retries it) and take the current version for the next one.
      const bad = entries[result.conflict]!;
      const now = await this.#store.get(bad.key).catch(() => undefined);
      bad.holder.version = now?.version ?? null;
      throw new ConflictError(
        `Store key "${bad.key}" was changed by another writer (expected version ${
          (writes[result.conflict] as { version?: string | null }).version ?? "none"
        }, found ${now?.version ?? "none"})`,
        now?.version ?? null,
        { key: bad.key },
      );
    } catch (error) {
      for (const e of entries) if (e.holder.rec === e.rec) e.holder.rec = e.before;
      this.#history.undo(events);
      for (const key of deletes) this.#stagedDeletes.add(key);
      // Instances this batch was to create do not exist: before any other job sees them again.
      for (const [name, inst] of created) {
        if (this.#instances.get(name) !== inst) continue;
        this.#instances.delete(name);
        delete this.#placementReasons[name];
      }
      pending?.reject(error);
      throw error;
    } finally {
      if (this.#committing === pending?.promise) this.#committing = undefined;
    }
  }

  /** Store batches committed so far (one per event that changed something). */
  get commits(): number {
    return this.#commits;
  }
}
