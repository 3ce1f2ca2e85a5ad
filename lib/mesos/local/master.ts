/**
 * The local Mesos master: `LocalCluster` runs one master and N agents in
 * this process and serves the real Mesos v1 scheduler API
 * (`/api/v1/scheduler`, also `/master/api/v1/scheduler`) with the checks
 * listed in section 6 of `shared/mesos-v1-protocol.md`: offers, launches,
 * reliable status updates, reconciliation, framework failover, agent loss
 * and agent restarts with checkpointing.
 *
 * @module
 */

import type { ContentType } from "../codec.ts";
import { join } from "node:path";
import { Agent, type AgentMaster, type AgentOptions } from "./agent.ts";
import {
  EventStream,
  LOCAL_HTTP_LIMITS,
  negotiateStream,
  parseCall,
  textResponse,
} from "./http.ts";
import {
  type LocalRequest,
  type LocalResponse,
  type LocalServer,
  serveLocal,
} from "./http_server.ts";
import { commandExecutorArgv, commandExecutorInfo } from "./command_executor.ts";
import { basicPrincipal, type Credential, unauthorized } from "./auth.ts";
import {
  type ExecutorInfo,
  type FrameworkInfo,
  hasCapability,
  type Id,
  isTerminal,
  nowSeconds,
  type Resource,
  type TaskInfo,
  type TaskStatus,
} from "./messages.ts";
import {
  allocatable,
  checkOfferIds,
  OfferFilters,
  type OfferRecord,
  refuseSeconds,
} from "./offers.ts";
import {
  addPools,
  emptyPool,
  isEmptyPool,
  type Pool,
  poolForRole,
  poolFromResources,
  resourcesFromPool,
  shortfall,
  subtractPools,
  sumPools,
} from "./resources.ts";
import { agentTotal, parseAgentResources } from "./agent_resources.ts";
import { frameworkRoles, validateSubscription, validateTask } from "./validation.ts";
import { ZooKeeperMembership } from "./membership.ts";
import { collectSandboxes } from "./sandbox_gc.ts";
import {
  agentAddress,
  agentNamespace,
  createHostNetwork,
  hostAnswers,
  type HostNetwork,
  parseHostNetwork,
  removeHostNetwork,
} from "./host_network.ts";

/** Options of {@link LocalCluster}. */
export interface LocalClusterOptions {
  /** Number of agents (default 3). */
  agents?: number;
  /**
   * The command line of the command executor that runs command tasks
   * (default: `mesos_local --command-executor` of this install).
   */
  commandExecutor?: string[];
  /**
   * Framework credentials: when given, every scheduler call must
   * authenticate with HTTP Basic as one of them (401 otherwise), and the
   * agents authenticate executors with a token of their own each (Mesos
   * `--authenticate_http_frameworks`, `--authenticate_http_executors`).
   */
  credentials?: Credential[];
  /** Master HTTP port on 127.0.0.1, or on the bridge address with `network` (0 or absent = any free port). */
  port?: number;
  /** Folder for sandboxes (`<workDir>/agents/<agentId>/frameworks/...`). */
  workDir: string;
  /** CPUs per agent (default 4). */
  cpus?: number;
  /** Memory per agent in MB (default 4096). */
  mem?: number;
  /**
   * Static reservations per agent (index i for agent i; absent or `""`:
   * none), written like a Mesos agent's `--resources`:
   * `cpus(redis):2;mem(redis):2048;ports(redis):[31000-31099]`. They are
   * carved out of the agent's `cpus`, `mem` and ports range (see
   * `agent_resources.ts`); only frameworks in that role are offered them.
   */
  reserved?: readonly (string | undefined)[];
  /** First port of agent 0's range (default 31000); agent i gets `portsBase + i*portsPerAgent` onwards. */
  portsBase?: number;
  /** Size of each agent's ports range (default 1000). */
  portsPerAgent?: number;
  /** Hostname the agents report (default "127.0.0.1"). */
  hostname?: string;
  /** Decline filter when a call gives none (default 5 s). */
  offerRefuseDefaultSeconds?: number;
  /** Scheduler heartbeat interval (default 15 s). */
  heartbeatIntervalSeconds?: number;
  /** Time after a stopped agent is declared unreachable (default 5000 ms). */
  agentPingTimeoutMs?: number;
  /** Period of the allocation cycle (default 1000 ms). */
  allocationIntervalMs?: number;
  /** Executor registration timeout (default 60000 ms). */
  executorRegistrationTimeoutMs?: number;
  /**
   * How long a restarted agent waits for each live executor to re-subscribe
   * before destroying it (Mesos `--executor_reregistration_timeout`; default
   * 2000 ms).
   */
  executorReregistrationTimeoutMs?: number;
  /** MESOS_RECOVERY_TIMEOUT given to executors of checkpointing frameworks (default 900000 ms). */
  recoveryTimeoutMs?: number;
  /** MESOS_SUBSCRIPTION_BACKOFF_MAX given to executors of checkpointing frameworks (default 2000 ms). */
  subscriptionBackoffMaxMs?: number;
  /** Default executor shutdown grace period (default 5000 ms). */
  executorShutdownGracePeriodMs?: number;
  /** First status update retry interval (default 10000 ms). */
  statusUpdateRetryMs?: number;
  /** Largest status update retry interval (default 600000 ms). */
  statusUpdateMaxRetryMs?: number;
  /**
   * Run as a non-leading master: `"host:port"` of the leader (scheduler
   * calls are answered 307 with `Location: //host:port/<path>`), or `null`
   * for a standby that knows no leader (503). Absent: this master leads.
   * With `zk`, ZooKeeper decides instead.
   */
  leader?: string | null;
  /**
   * `zk://host:port[,host:port]/path`: register in that masters' group like
   * Mesos (an EPHEMERAL_SEQUENTIAL `json.info_` node with the MasterInfo
   * JSON, removed by {@link LocalCluster.stop}); the member with the
   * smallest node leads, the others redirect to it.
   */
  zk?: string;
  /**
   * AgentIDs of the agent slots, in order (a cluster started again with the
   * ids it had keeps its agents' identities); a slot without one gets a new
   * id. Agents started again by {@link LocalCluster.startAgent} always get a
   * new id.
   */
  agentIds?: readonly string[];
  /**
   * How long the sandbox of an ended executor is kept before it is removed,
   * in ms (Mesos `--gc_delay`; default one day). Sandboxes older than this
   * found at start are removed as well.
   */
  gcDelayMs?: number;
  /**
   * Run each agent as a host of its own (Linux, root): an IPv4 /24 such as
   * `198.18.7.0/24`. The bridge in this process's namespace takes `.1`
   * (where the master and the agents' executor APIs listen), agent
   * i its own network namespace with `.(10+i)` (its hostname), and its
   * executors run in a root of their own holding the system directories and
   * only that agent's `<workDir>/agents/<id>` and `<workDir>/data/<id>`
   * (see `host_network.ts`). The master pings each host every second and
   * declares one unreachable after `agentPingTimeoutMs` without an answer
   * (re-registered when it answers again). Everything is removed by
   * {@link LocalCluster.stop}.
   */
  network?: string;
  /** Log sink (default: nothing). */
  log?: (line: string) => void;
}

/** What tests and operators can see of one agent. */
export interface AgentView {
  /** AgentID. */
  id: string;
  /** Position in the cluster. */
  index: number;
  /** Executor API port. */
  port: number;
  /** `ip:port` where executors reach it (`127.0.0.1:port`, or the bridge address). */
  endpoint: string;
  /** Its hostname: `127.0.0.1`, or its own address on a multi-host cluster. */
  hostname: string;
  /** True while serving. */
  running: boolean;
  /** Resources the agent offers in total. */
  cpus: number;
  /** Memory in MB. */
  mem: number;
  /** Ports range. */
  ports: { begin: number; end: number };
}

interface StatusExtra {
  agentId?: string;
  executorId?: string;
  message?: string;
  unreachableTime?: number;
}

interface MasterTask {
  taskId: string;
  agentId: string;
  executorId?: string;
  pool: Pool;
  /** The task's resources as launched (allocation_info filled in). */
  resources?: Resource[];
  state: string;
  freed: boolean;
  unreachableTime?: number;
}

interface Framework {
  id: string;
  info: FrameworkInfo;
  suppressed: Set<string>;
  stream?: EventStream;
  streamId?: string;
  connected: boolean;
  failoverTimer?: ReturnType<typeof setTimeout>;
  heartbeatTimer?: ReturnType<typeof setInterval>;
  tasks: Map<string, MasterTask>;
  unreachable: Map<string, MasterTask>;
  filters: OfferFilters;
}

// deno-lint-ignore no-explicit-any
type Call = Record<string, any> & { type?: string; framework_id?: Id };

const MAX_TIMER_MS = 2_147_483_647;

function optionInt(name: string, value: number | undefined, fallback: number, min: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < min) {
    throw new RangeError(`Option "${name}" must be a number of at least ${min}, but got ${value}`);
  }
  return v;
}

/** IPv4 dotted string as MasterInfo.ip wants it (network byte order read as a host integer). */
function packIp(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) return 0;
  return ((parts[3]! << 24) >>> 0) + (parts[2]! << 16) + (parts[1]! << 8) + parts[0]!;
}

/**
 * A Mesos master with N agents on this machine, speaking the Mesos v1 HTTP
 * APIs. Start it, point a scheduler at {@link LocalCluster.url}, stop it.
 */
export class LocalCluster implements AgentMaster {
  /** The master id (a UUID). */
  readonly masterId: string = crypto.randomUUID();
  readonly #opt:
    & Required<
      Omit<LocalClusterOptions, "log" | "leader" | "zk" | "agentIds" | "network" | "reserved">
    >
    & {
      log: (line: string) => void;
      zk: string | undefined;
      agentIds: readonly string[];
      reserved: (Pool | undefined)[];
    };
  /** `undefined`: this master leads; a `host:port`: redirect there; `null`: no leader known. */
  #leader: string | null | undefined;
  #membership?: ZooKeeperMembership;
  #server?: LocalServer;
  #port = 0;
  #agents: Agent[] = [];
  #agentsById = new Map<string, Agent>();
  #unreachableAgents = new Map<string, number>();
  #pingTimers = new Map<number, ReturnType<typeof setTimeout>>();
  #agentCounter = 0;
  #frameworkCounter = 0;
  #offerCounter = 0;
  #frameworks = new Map<string, Framework>();
  #completed = new Set<string>();
  #offers = new Map<string, OfferRecord>();
  #allocationTimer?: ReturnType<typeof setInterval>;
  #allocateScheduled?: ReturnType<typeof setTimeout>;
  #rotation = 0;
  #started = false;
  #stopped = false;
  /** The multi-host network, when agents are hosts of their own. */
  readonly #net?: HostNetwork;
  /** This cluster made the network (and removes it when it stops). */
  #netMade = false;
  #probeTimer?: ReturnType<typeof setInterval>;
  #probing = false;
  /** Per agent slot: when its host last answered, and failed pings since. */
  #pings = new Map<number, { answered: number; failures: number }>();
  /** Agents declared unreachable because their host stopped answering. */
  #silentHosts = new Set<string>();

  /** Validates the options; nothing runs until {@link start}. */
  constructor(options: LocalClusterOptions) {
    if (typeof options?.workDir !== "string" || options.workDir === "") {
      throw new TypeError('Option "workDir" must be a non-empty path');
    }
    const agents = optionInt("agents", options.agents, 3, 0);
    if (!Number.isInteger(agents)) {
      throw new RangeError(`Option "agents" must be a whole number, but got ${agents}`);
    }
    const portsBase = optionInt("portsBase", options.portsBase, 31000, 1);
    const portsPerAgent = optionInt("portsPerAgent", options.portsPerAgent, 1000, 1);
    if (portsBase + agents * portsPerAgent - 1 > 65535) {
      throw new RangeError(
        `Options "portsBase" ${portsBase} and "portsPerAgent" ${portsPerAgent} give ports above 65535 for ${agents} agents`,
      );
    }
    const ids = options.agentIds ?? [];
    if (new Set(ids).size !== ids.length || ids.some((id) => typeof id !== "string" || id === "")) {
      throw new TypeError(
        `Option "agentIds" must hold distinct non-empty ids, but got ${JSON.stringify(ids)}`,
      );
    }
    const leader = options.leader;
    if (leader !== undefined && leader !== null && !/^[^\s/:]+:\d+$/.test(leader)) {
      throw new TypeError(`Option "leader" must be "host:port" or null, but got "${leader}"`);
    }
    if (options.zk !== undefined && !options.zk.startsWith("zk://")) {
      throw new TypeError(`Option "zk" must be a zk://host:port/path URL, but got "${options.zk}"`);
    }
    if (options.network !== undefined) {
      this.#net = parseHostNetwork(options.network, 'Option "network"');
      if (agents > 240) {
        throw new RangeError(
          `Option "network" holds at most 240 agents, but ${agents} are asked for`,
        );
      }
    }
    const reserved = (options.reserved ?? []).map((text, i) => {
      if (text === undefined || text.trim() === "") return undefined;
      if (i >= agents) {
        throw new RangeError(
          `Option "reserved" names agent ${i}, but the cluster has ${agents} agent(s)`,
        );
      }
      try {
        const pool = parseAgentResources(text);
        const base = portsBase + i * portsPerAgent;
        agentTotal({
          cpus: optionInt("cpus", options.cpus, 4, 0),
          mem: optionInt("mem", options.mem, 4096, 0),
          ports: { begin: base, end: base + portsPerAgent - 1 },
        }, pool);
        return pool;
      } catch (error) {
        throw new RangeError(`Option "reserved" of agent ${i}: ${(error as Error).message}`);
      }
    });
    // With ZooKeeper nobody leads until the group has been read.
    this.#leader = options.zk !== undefined ? null : leader;
    this.#opt = {
      zk: options.zk,
      agents,
      reserved,
      commandExecutor: options.commandExecutor ?? commandExecutorArgv(),
      credentials: options.credentials ?? [],
      port: optionInt("port", options.port, 0, 0),
      workDir: options.workDir,
      cpus: optionInt("cpus", options.cpus, 4, 0),
      mem: optionInt("mem", options.mem, 4096, 0),
      portsBase,
      portsPerAgent,
      hostname: options.hostname ?? "127.0.0.1",
      offerRefuseDefaultSeconds: optionInt(
        "offerRefuseDefaultSeconds",
        options.offerRefuseDefaultSeconds,
        5,
        0,
      ),
      heartbeatIntervalSeconds: optionInt(
        "heartbeatIntervalSeconds",
        options.heartbeatIntervalSeconds,
        15,
        0.001,
      ),
      agentPingTimeoutMs: optionInt("agentPingTimeoutMs", options.agentPingTimeoutMs, 5000, 0),
      allocationIntervalMs: optionInt(
        "allocationIntervalMs",
        options.allocationIntervalMs,
        1000,
        1,
      ),
      executorRegistrationTimeoutMs: optionInt(
        "executorRegistrationTimeoutMs",
        options.executorRegistrationTimeoutMs,
        60_000,
        1,
      ),
      executorReregistrationTimeoutMs: optionInt(
        "executorReregistrationTimeoutMs",
        options.executorReregistrationTimeoutMs,
        2000,
        1,
      ),
      recoveryTimeoutMs: optionInt("recoveryTimeoutMs", options.recoveryTimeoutMs, 900_000, 1),
      subscriptionBackoffMaxMs: optionInt(
        "subscriptionBackoffMaxMs",
        options.subscriptionBackoffMaxMs,
        2000,
        1,
      ),
      executorShutdownGracePeriodMs: optionInt(
        "executorShutdownGracePeriodMs",
        options.executorShutdownGracePeriodMs,
        5000,
        0,
      ),
      statusUpdateRetryMs: optionInt("statusUpdateRetryMs", options.statusUpdateRetryMs, 10_000, 1),
      statusUpdateMaxRetryMs: optionInt(
        "statusUpdateMaxRetryMs",
        options.statusUpdateMaxRetryMs,
        600_000,
        1,
      ),
      agentIds: [...(options.agentIds ?? [])],
      gcDelayMs: optionInt("gcDelayMs", options.gcDelayMs, 24 * 3_600_000, 0),
      log: options.log ?? (() => {}),
    };
  }

  /** The address the master listens on: 127.0.0.1, or the bridge's with `network`. */
  get address(): string {
    return this.#net?.bridgeAddress ?? "127.0.0.1";
  }

  /**
   * The master's base URL, `http://127.0.0.1:<port>` (on a multi-host
   * cluster the bridge's address, where the hosts reach it) (after
   * {@link start}).
   */
  get url(): string {
    return `http://${this.address}:${this.#port}`;
  }

  /** The master's HTTP port (after {@link start}). */
  get port(): number {
    return this.#port;
  }

  /** True while this master leads (answers scheduler calls itself). */
  get leading(): boolean {
    return this.#leader === undefined;
  }

  /**
   * Changes leadership at run time: `undefined` = this master leads; a
   * `"host:port"` = another master leads (scheduler calls get 307 there);
   * `null` = no leader known (503). A master that stops leading closes every
   * scheduler stream (a real one would exit), so schedulers look again.
   */
  setLeader(leader: string | null | undefined): void {
    if (typeof leader === "string" && !/^[^\s/:]+:\d+$/.test(leader)) {
      throw new TypeError(`Leader must be "host:port", null or undefined, but got "${leader}"`);
    }
    const wasLeading = this.#leader === undefined;
    this.#leader = leader;
    if (wasLeading === (leader === undefined)) return;
    this.#opt.log(
      `master ${this.masterId}: ${
        leader === undefined ? "now leading" : `not leading (leader ${leader ?? "unknown"})`
      }`,
    );
    if (leader === undefined) {
      this.#allocateSoon();
      return;
    }
    for (const fw of [...this.#frameworks.values()]) fw.stream?.break();
  }

  /** Number of agent slots. */
  get agentCount(): number {
    return this.#agents.length;
  }

  /** Starts the master and every agent. */
  async start(): Promise<void> {
    if (this.#started) throw new Error("LocalCluster was already started");
    this.#started = true;
    await Deno.mkdir(this.#opt.workDir, { recursive: true });
    await collectSandboxes(this.#opt.workDir, this.#opt.gcDelayMs, this.#opt.log);
    if (this.#net) {
      await createHostNetwork(this.#net, this.#opt.agents);
      this.#netMade = true;
      this.#opt.log(
        `master: agents are hosts of their own on ${this.#net.subnet} (bridge ${this.#net.bridge} at ${this.#net.bridgeAddress})`,
      );
    }
    for (let i = 0; i < this.#opt.agents; i++) {
      const agent = this.#newAgent(i, this.#opt.agentIds[i]);
      this.#agents.push(agent);
      await agent.start();
    }
    this.#serve(this.#opt.port);
    this.#allocationTimer = setInterval(() => this.#allocate(), this.#opt.allocationIntervalMs);
    if (this.#net) this.#probeTimer = setInterval(() => this.#pingHosts(), 1000);
    this.#opt.log(
      `master ${this.masterId} listening at ${this.url} with ${this.#agents.length} agents`,
    );
    if (this.#opt.zk !== undefined) {
      this.#membership = new ZooKeeperMembership({
        zk: this.#opt.zk,
        info: this.#masterInfo(),
        log: this.#opt.log,
        onLeader: (leader) => {
          if (leader === true) return this.setLeader(undefined);
          if (leader === undefined) return this.setLeader(null);
          // Mesos redirects to the leader's hostname and port.
          const hostname = leader.info.hostname ?? leader.info.address?.hostname;
          const port = leader.info.port ?? leader.info.address?.port;
          this.setLeader(hostname && port ? `${hostname}:${port}` : new URL(leader.url).host);
        },
      });
      await this.#membership.start();
    }
  }

  #serve(port: number): void {
    this.#server = serveLocal({
      hostname: this.address,
      port,
      ...LOCAL_HTTP_LIMITS,
      onError: (error) => {
        this.#opt.log(`master: internal error: ${(error as Error)?.stack ?? error}`);
        return textResponse(500, "Internal server error");
      },
    }, (request) => this.#handle(request));
    this.#port = this.#server.addr.port;
  }

  /**
   * Restarts the master like a Mesos master failing over to a new process at
   * the same address, and resolves once it serves again. Scheduler streams
   * end and the scheduler API refuses connections for `downMs`; outstanding
   * offers and decline filters are gone. Agents and executors go on running:
   * executor messages meanwhile are lost (an agent with no master drops
   * them), status updates wait at the agents and are resent when they
   * re-register with the new master. A framework that subscribes again with
   * its id fails over as usual (the new master knows it from its agents, so
   * no failover timeout runs while the master is down).
   */
  async restartMaster(options: { downMs?: number } = {}): Promise<void> {
    const downMs = options.downMs ?? 0;
    if (!Number.isFinite(downMs) || downMs < 0) {
      throw new RangeError(`Option "downMs" must be a number of at least 0, but got ${downMs}`);
    }
    if (!this.#server || this.#stopped) {
      throw new Error("Cannot restart the master: it is not running");
    }
    clearInterval(this.#allocationTimer);
    clearTimeout(this.#allocateScheduled);
    const server = this.#server;
    this.#server = undefined;
    for (const fw of this.#frameworks.values()) {
      clearTimeout(fw.failoverTimer);
      clearInterval(fw.heartbeatTimer);
      fw.connected = false;
      const stream = fw.stream;
      fw.stream = undefined;
      stream?.break();
      this.#removeOffersOf(fw);
      fw.filters.clear();
    }
    this.#offers.clear();
    await server.shutdown();
    this.#opt.log(`master: down for a restart (${downMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, downMs));
    if (this.#stopped) return;
    this.#serve(this.#port);
    this.#allocationTimer = setInterval(() => this.#allocate(), this.#opt.allocationIntervalMs);
    this.#opt.log(`master: serving again after a restart at ${this.url}`);
    // Agents re-register with the new master and resend what it has not acknowledged.
    for (const agent of this.#agents) if (agent.running) agent.resendAllUpdates();
    this.#allocateSoon();
  }

  /**
   * Stops everything: scheduler streams closed, every executor process tree
   * killed, servers down. With `graceful`, every executor is first sent
   * SHUTDOWN and given its grace period to stop its tasks (nothing of it
   * reaches the schedulers, whose streams are closed first): what
   * `mesos_local` does on SIGTERM, so redis-servers flush their data.
   */
  async stop(options: { graceful?: boolean } = {}): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    // Leave the ZooKeeper group first, so schedulers see the leader move at once.
    await this.#membership?.close();
    clearInterval(this.#allocationTimer);
    clearInterval(this.#probeTimer);
    clearTimeout(this.#allocateScheduled);
    for (const t of this.#pingTimers.values()) clearTimeout(t);
    this.#pingTimers.clear();
    for (const fw of this.#frameworks.values()) {
      clearTimeout(fw.failoverTimer);
      clearInterval(fw.heartbeatTimer);
      fw.stream?.break();
    }
    await Promise.all(this.#agents.map((a) => options.graceful ? a.drain() : a.stop()));
    await this.#server?.shutdown();
    // Only its own: a cluster refused another's network leaves it alone.
    if (this.#net && this.#netMade) await removeHostNetwork(this.#net);
  }

  /**
   * Pings every running agent's host (multi-host clusters): one that has not
   * answered for `agentPingTimeoutMs` (and at least 3 pings in a row) is
   * declared unreachable; when it answers again it re-registers.
   */
  async #pingHosts(): Promise<void> {
    if (this.#probing || this.#stopped) return;
    this.#probing = true;
    try {
      await Promise.all(this.#agents.map(async (agent, index) => {
        if (!agent.running) return;
        const ok = await hostAnswers(agent.options.hostname, 2000);
        if (this.#stopped || this.#agents[index] !== agent || !agent.running) return;
        const now = Date.now();
        const ping = this.#pings.get(index) ?? { answered: now, failures: 0 };
        this.#pings.set(index, ping);
        if (ok) {
          ping.answered = now;
          ping.failures = 0;
          if (this.#silentHosts.delete(agent.id) && this.#unreachableAgents.has(agent.id)) {
            this.#opt.log(`master: the host of agent ${agent.id} answers again`);
            this.#reregister(agent);
            agent.resendAllUpdates();
            this.#allocateSoon();
          }
          return;
        }
        ping.failures++;
        if (
          ping.failures >= 3 && now - ping.answered >= this.#opt.agentPingTimeoutMs &&
          !this.#unreachableAgents.has(agent.id)
        ) {
          this.#opt.log(
            `master: the host of agent ${agent.id} (${agent.options.hostname}) has not answered for ${
              now - ping.answered
            } ms`,
          );
          this.#silentHosts.add(agent.id);
          this.#markUnreachable(agent);
        }
      }));
    } finally {
      this.#probing = false;
    }
  }

  #newAgent(index: number, givenId?: string): Agent {
    const base = this.#opt.portsBase + index * this.#opt.portsPerAgent;
    const id = givenId ?? `${this.masterId}-S${this.#agentCounter++}`;
    const net = this.#net;
    let host: AgentOptions["host"];
    if (net) {
      const root = join(this.#opt.workDir, "hosts", String(index));
      Deno.mkdirSync(root, { recursive: true });
      host = {
        namespace: agentNamespace(net, index),
        root,
        keep: [
          join(this.#opt.workDir, "agents", id),
          // Where the executor keeps redis data (MRR_DATA_ROOT/<agent id>).
          join(this.#opt.workDir, "data", id.replace(/[^A-Za-z0-9_.-]/g, "_")),
        ],
      };
    }
    const agent = new Agent({
      index,
      id,
      hostname: net ? agentAddress(net, index) : this.#opt.hostname,
      ...(net ? { listenAddress: net.bridgeAddress, host } : {}),
      commandExecutor: this.#opt.commandExecutor,
      cpus: this.#opt.cpus,
      mem: this.#opt.mem,
      ports: { begin: base, end: base + this.#opt.portsPerAgent - 1 },
      ...(this.#opt.reserved[index] ? { reserved: this.#opt.reserved[index] } : {}),
      workDir: this.#opt.workDir,
      executorRegistrationTimeoutMs: this.#opt.executorRegistrationTimeoutMs,
      executorReregistrationTimeoutMs: this.#opt.executorReregistrationTimeoutMs,
      recoveryTimeoutMs: this.#opt.recoveryTimeoutMs,
      subscriptionBackoffMaxMs: this.#opt.subscriptionBackoffMaxMs,
      executorShutdownGracePeriodMs: this.#opt.executorShutdownGracePeriodMs,
      statusUpdateRetryMs: this.#opt.statusUpdateRetryMs,
      statusUpdateMaxRetryMs: this.#opt.statusUpdateMaxRetryMs,
      authenticateExecutors: this.#opt.credentials.length > 0,
      gcDelayMs: this.#opt.gcDelayMs,
      log: this.#opt.log,
    }, this);
    this.#agentsById.set(agent.id, agent);
    return agent;
  }

  #agentAt(index: number): Agent {
    const agent = this.#agents[index];
    if (!agent) {
      throw new RangeError(`Agent index ${index} is out of range 0..${this.#agents.length - 1}`);
    }
    return agent;
  }

  /** What is known of agent `index` (its current incarnation). */
  agent(index: number): AgentView {
    const a = this.#agentAt(index);
    return {
      id: a.id,
      index,
      port: a.port,
      endpoint: a.endpoint,
      hostname: a.options.hostname,
      running: a.running,
      cpus: a.options.cpus,
      mem: a.options.mem,
      ports: { ...a.options.ports },
    };
  }

  /** Every agent slot, in order. */
  agents(): AgentView[] {
    return this.#agents.map((_, i) => this.agent(i));
  }

  /** Sandbox, pid and state of an executor on agent `index`, if it has one. */
  executor(
    index: number,
    frameworkId: string,
    executorId: string,
  ): { sandbox: string; pid?: number; state: string; subscribed: boolean } | undefined {
    return this.#agentAt(index).executorProcess(frameworkId, executorId);
  }

  /**
   * The master's view of a framework's tracked tasks: agent, latest state and
   * resources as launched (what Mesos shows in `/master/tasks`).
   */
  tasks(
    frameworkId: string,
  ): { taskId: string; agentId: string; state: string; resources: Resource[] }[] {
    const fw = this.#frameworks.get(frameworkId);
    return [...(fw?.tasks.values() ?? [])].map((t) => ({
      taskId: t.taskId,
      agentId: t.agentId,
      state: t.state,
      resources: structuredClone(t.resources ?? []),
    }));
  }

  /** Ids, names and roles of the frameworks the master knows. */
  frameworks(): { id: string; name: string; roles: string[] }[] {
    return [...this.#frameworks.values()].map((fw) => ({
      id: fw.id,
      name: fw.info.name,
      roles: frameworkRoles(fw.info),
    }));
  }

  /** The ExecutorInfo an executor of agent `index` was launched with (resources included). */
  executorInfo(index: number, frameworkId: string, executorId: string): ExecutorInfo | undefined {
    const info = this.#agentAt(index).executorInfo(frameworkId, executorId);
    return info && structuredClone(info);
  }

  /** The master's view of a task: its latest state, or undefined when it forgot the task. */
  taskState(frameworkId: string, taskId: string): string | undefined {
    const fw = this.#frameworks.get(frameworkId);
    return fw?.tasks.get(taskId)?.state ?? fw?.unreachable.get(taskId)?.state;
  }

  /** Number of the framework's status updates the agents still wait to have acknowledged. */
  pendingUpdates(frameworkId: string): number {
    return this.#agents.reduce((n, a) => n + a.pendingUpdates(frameworkId), 0);
  }

  /** True while the framework has a live subscription. */
  isConnected(frameworkId: string): boolean {
    return this.#frameworks.get(frameworkId)?.connected === true;
  }

  /** True when the master removed the framework (teardown or failover timeout). */
  isRemoved(frameworkId: string): boolean {
    return this.#completed.has(frameworkId);
  }

  /** Test hook: the framework's stream stays open but carries nothing more (no heartbeats). */
  freezeSchedulerStream(frameworkId: string): void {
    const stream = this.#frameworks.get(frameworkId)?.stream;
    if (stream) stream.frozen = true;
  }

  /** Test hook: the master ends the framework's stream as if the connection broke. */
  closeSchedulerStream(frameworkId: string): void {
    this.#frameworks.get(frameworkId)?.stream?.break();
  }

  /**
   * Stops agent `index` like a lost host: it stops serving and its executors
   * are SIGKILLed; after `agentPingTimeoutMs` the master declares it
   * unreachable (TASK_UNREACHABLE or TASK_LOST, RESCIND, FAILURE).
   */
  async stopAgent(index: number): Promise<void> {
    const agent = this.#agentAt(index);
    if (!agent.running && !agent.paused) return;
    await agent.stop();
    this.#pingTimers.set(
      index,
      setTimeout(() => {
        this.#pingTimers.delete(index);
        this.#markUnreachable(agent);
      }, this.#opt.agentPingTimeoutMs),
    );
  }

  /**
   * Starts agent `index` again: a rebooted host registers as a new agent
   * (new AgentID, same resources). If the old one was not yet declared
   * unreachable, that happens now.
   */
  async startAgent(index: number): Promise<void> {
    const old = this.#agentAt(index);
    if (old.running) return;
    if (old.paused) {
      throw new Error(`Cannot start agent ${index} "${old.id}": it is restarting`);
    }
    const timer = this.#pingTimers.get(index);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.#pingTimers.delete(index);
      this.#markUnreachable(old);
    }
    const agent = this.#newAgent(index);
    this.#agents[index] = agent;
    await agent.start();
    this.#allocateSoon();
  }

  /**
   * Restarts agent `index` like a Mesos agent process restarted with
   * checkpointing, and resolves once it serves again: it stops serving (its
   * executors' event streams end, their processes keep running, its offers
   * are rescinded), stays down `downMs`, then serves on the same port with
   * the same AgentID and state, waiting for its executors to re-subscribe
   * (see `Agent.resume`). If `downMs` exceeds `agentPingTimeoutMs`, the
   * agent is declared unreachable meanwhile and on return re-registers:
   * every task of it the master had given up gets an UPDATE with the state
   * the agent knows and REASON_AGENT_REREGISTERED.
   */
  async restartAgent(index: number, options: { downMs?: number } = {}): Promise<void> {
    const downMs = options.downMs ?? 0;
    if (!Number.isFinite(downMs) || downMs < 0) {
      throw new RangeError(`Option "downMs" must be a number of at least 0, but got ${downMs}`);
    }
    const agent = this.#agentAt(index);
    if (!agent.running) {
      throw new Error(`Cannot restart agent ${index} "${agent.id}": it is not running`);
    }
    this.#rescindOffersOn(agent);
    await agent.pause();
    this.#pingTimers.set(
      index,
      setTimeout(() => {
        this.#pingTimers.delete(index);
        this.#markUnreachable(agent);
      }, this.#opt.agentPingTimeoutMs),
    );
    await new Promise((resolve) => setTimeout(resolve, downMs));
    clearTimeout(this.#pingTimers.get(index));
    this.#pingTimers.delete(index);
    if (this.#stopped || this.#agents[index] !== agent || !agent.paused) return;
    await agent.resume();
    if (this.#unreachableAgents.has(agent.id)) this.#reregister(agent);
    agent.resendAllUpdates();
    this.#allocateSoon();
  }

  /** An unreachable agent is back: its tasks return with the state it reports. */
  #reregister(agent: Agent): void {
    this.#unreachableAgents.delete(agent.id);
    this.#opt.log(`master: agent ${agent.id} re-registered`);
    for (const fw of this.#frameworks.values()) {
      for (const task of [...fw.unreachable.values()]) {
        if (task.agentId !== agent.id) continue;
        const state = agent.taskState(fw.id, task.taskId);
        if (state === undefined) continue; // the agent does not know it either
        fw.unreachable.delete(task.taskId);
        task.state = state;
        task.freed = isTerminal(state);
        task.unreachableTime = undefined;
        fw.tasks.set(task.taskId, task);
        this.#send(fw, {
          type: "UPDATE",
          update: {
            status: this.#masterStatus(task.taskId, state, "REASON_AGENT_REREGISTERED", {
              agentId: agent.id,
              executorId: task.executorId,
              message: "Agent reregistered",
            }),
          },
        });
      }
    }
  }

  #rescindOffersOn(agent: Agent): void {
    for (const offer of [...this.#offers.values()]) {
      if (offer.agentId !== agent.id) continue;
      this.#offers.delete(offer.id);
      this.#send(this.#frameworks.get(offer.frameworkId), {
        type: "RESCIND",
        rescind: { offer_id: { value: offer.id } },
      });
    }
  }

  #registered(agent: Agent): boolean {
    return this.#agentsById.get(agent.id) === agent && !this.#unreachableAgents.has(agent.id);
  }

  #markUnreachable(agent: Agent): void {
    if (this.#unreachableAgents.has(agent.id)) return;
    const now = Date.now();
    this.#unreachableAgents.set(agent.id, now);
    this.#opt.log(`master: agent ${agent.id} is unreachable`);
    this.#rescindOffersOn(agent);
    for (const fw of this.#frameworks.values()) {
      const pa = hasCapability(fw.info, "PARTITION_AWARE");
      for (const task of [...fw.tasks.values()]) {
        if (task.agentId !== agent.id) continue;
        fw.tasks.delete(task.taskId);
        if (isTerminal(task.state)) continue;
        task.state = pa ? "TASK_UNREACHABLE" : "TASK_LOST";
        task.freed = true;
        task.unreachableTime = now;
        fw.unreachable.set(task.taskId, task);
        this.#send(fw, {
          type: "UPDATE",
          update: {
            status: this.#masterStatus(task.taskId, task.state, "REASON_AGENT_REMOVED", {
              agentId: agent.id,
              executorId: task.executorId,
              message: "Agent is unreachable",
              unreachableTime: now,
            }),
          },
        });
      }
      this.#send(fw, { type: "FAILURE", failure: { agent_id: { value: agent.id } } });
    }
  }

  // ---- AgentMaster ----

  /** @inheritdoc */
  forwardStatusUpdate(agent: Agent, frameworkId: string, status: TaskStatus): void {
    if (!this.#registered(agent)) return;
    const fw = this.#frameworks.get(frameworkId);
    if (!fw?.connected) return; // the agent retries
    this.#send(fw, { type: "UPDATE", update: { status } });
  }

  /** @inheritdoc */
  taskStateChanged(agent: Agent, frameworkId: string, taskId: string, state: string): void {
    const task = this.#frameworks.get(frameworkId)?.tasks.get(taskId);
    if (!task || task.agentId !== agent.id) return;
    task.state = state;
    if (isTerminal(state) && !task.freed) {
      task.freed = true;
      this.#allocateSoon();
    }
  }

  /** @inheritdoc */
  executorMessage(agent: Agent, frameworkId: string, executorId: string, data: Uint8Array): void {
    this.#send(this.#frameworks.get(frameworkId), {
      type: "MESSAGE",
      message: { agent_id: { value: agent.id }, executor_id: { value: executorId }, data },
    });
  }

  /** @inheritdoc */
  executorTerminated(agent: Agent, frameworkId: string, executorId: string, status?: number): void {
    this.#send(this.#frameworks.get(frameworkId), {
      type: "FAILURE",
      failure: {
        agent_id: { value: agent.id },
        executor_id: { value: executorId },
        ...(status === undefined ? {} : { status }),
      },
    });
    this.#allocateSoon();
  }

  // ---- events ----

  #send(fw: Framework | undefined, event: object): void {
    if (fw?.connected) fw.stream?.send(event);
  }

  #masterStatus(
    taskId: string,
    state: string,
    reason: string,
    extra: StatusExtra = {},
  ): TaskStatus {
    return {
      task_id: { value: taskId },
      state,
      source: "SOURCE_MASTER",
      reason,
      timestamp: nowSeconds(),
      ...(extra.message ? { message: extra.message } : {}),
      ...(extra.agentId ? { agent_id: { value: extra.agentId } } : {}),
      ...(extra.executorId ? { executor_id: { value: extra.executorId } } : {}),
      ...(extra.unreachableTime !== undefined
        ? { unreachable_time: { nanoseconds: extra.unreachableTime * 1e6 } }
        : {}),
    };
  }

  // ---- allocation ----

  #allocateSoon(): void {
    if (this.#allocateScheduled !== undefined || this.#stopped) return;
    this.#allocateScheduled = setTimeout(() => {
      this.#allocateScheduled = undefined;
      this.#allocate();
    }, 0);
  }

  /** What each agent holds for executors, live tasks and outstanding offers, in one pass. */
  #usedByAgent(): Map<string, Pool[]> {
    const used = new Map<string, Pool[]>();
    const add = (agentId: string, pool: Pool) => {
      const list = used.get(agentId);
      if (list) list.push(pool);
      else used.set(agentId, [pool]);
    };
    for (const fw of this.#frameworks.values()) {
      for (const task of fw.tasks.values()) if (!task.freed) add(task.agentId, task.pool);
    }
    for (const offer of this.#offers.values()) add(offer.agentId, offer.pool);
    return used;
  }

  #agentAvailable(agent: Agent, used: Pool[]): Pool {
    return subtractPools(agent.total, sumPools([...agent.executorPools(), ...used]));
  }

  #allocate(): void {
    if (this.#stopped || this.#leader !== undefined) return;
    const frameworks = [...this.#frameworks.values()].filter((fw) => fw.connected);
    if (frameworks.length === 0) return;
    const start = this.#rotation++ % frameworks.length;
    const order = [...frameworks.slice(start), ...frameworks.slice(0, start)];
    const batches = new Map<Framework, object[]>();
    const used = this.#usedByAgent();
    for (const agent of this.#agents) {
      if (!agent.running || !this.#registered(agent)) continue;
      let available = this.#agentAvailable(agent, used.get(agent.id) ?? []);
      // Each framework may get what is unreserved plus what is reserved for
      // its role; resources reserved for another role wait for that role.
      for (const fw of order) {
        if (!allocatable(available)) break;
        for (const role of frameworkRoles(fw.info)) {
          if (fw.suppressed.has(role)) continue;
          const offered = poolForRole(available, role);
          if (!allocatable(offered)) continue;
          if (fw.filters.blocks(agent.id, role, offered)) continue;
          const offer: OfferRecord = {
            id: `${this.masterId}-O${this.#offerCounter++}`,
            frameworkId: fw.id,
            agentId: agent.id,
            role,
            pool: offered,
          };
          this.#offers.set(offer.id, offer);
          const list = batches.get(fw) ?? [];
          list.push(this.#offerMessage(offer, agent));
          batches.set(fw, list);
          available = subtractPools(available, offered);
          break;
        }
      }
    }
    for (const [fw, offers] of batches) this.#send(fw, { type: "OFFERS", offers: { offers } });
  }

  /**
   * The OFFER as Mesos sends it: `allocation_info` (on the offer and on each
   * resource) only to frameworks with the MULTI_ROLE capability; static
   * reservations as a `reservations` stack to frameworks with
   * RESERVATION_REFINEMENT, else in the pre-refinement format (`role` on
   * every resource, `*` when unreserved).
   */
  #offerMessage(offer: OfferRecord, agent: Agent): object {
    const fw = this.#frameworks.get(offer.frameworkId);
    const multiRole = fw !== undefined && hasCapability(fw.info, "MULTI_ROLE");
    const refinement = fw !== undefined && hasCapability(fw.info, "RESERVATION_REFINEMENT");
    return {
      id: { value: offer.id },
      framework_id: { value: offer.frameworkId },
      agent_id: { value: agent.id },
      hostname: agent.options.hostname,
      url: {
        scheme: "http",
        address: { hostname: agent.options.hostname, ip: agent.options.hostname, port: agent.port },
        path: "/slave(1)",
      },
      resources: resourcesFromPool(
        offer.pool,
        multiRole ? offer.role : undefined,
        refinement ? "refinement" : "pre-refinement",
      ),
      executor_ids: agent.executorIds(offer.frameworkId).map((value) => ({ value })),
      ...(multiRole ? { allocation_info: { role: offer.role } } : {}),
    };
  }

  #removeOffersOf(fw: Framework): void {
    for (const offer of [...this.#offers.values()]) {
      if (offer.frameworkId === fw.id) this.#offers.delete(offer.id);
    }
  }

  // ---- HTTP ----

  #handle(request: LocalRequest): LocalResponse {
    const path = request.path;
    if (path === "/health" || path === "/master/health") return textResponse(200);
    if (path === "/redirect" || path === "/master/redirect") {
      if (this.#leader === null) return textResponse(503, "No leader elected");
      return {
        status: 307,
        headers: { Location: `//${this.#leader ?? `${this.#opt.hostname}:${this.#port}`}` },
      };
    }
    if (path !== "/api/v1/scheduler" && path !== "/master/api/v1/scheduler") {
      return textResponse(404, `No endpoint at "${path}"`);
    }
    // Like Mesos, a non-leading master redirects before looking at the request.
    if (this.#leader === null) return textResponse(503, "No leader elected");
    if (this.#leader !== undefined) {
      return {
        status: 307,
        headers: { Location: `//${this.#leader}${path}${request.search}` },
      };
    }
    let principal: string | undefined;
    if (this.#opt.credentials.length > 0) {
      principal = basicPrincipal(request, this.#opt.credentials);
      if (principal === undefined) {
        return unauthorized("Basic", "Unauthorized: this master authenticates frameworks");
      }
    }
    const parsed = parseCall<Call>(request, "mesos.v1.scheduler.Call");
    if ("response" in parsed) return parsed.response;
    const { call } = parsed;
    if (principal !== undefined) {
      const claimed = call.type === "SUBSCRIBE"
        ? (call.subscribe?.framework_info as FrameworkInfo | undefined)?.principal
        : this.#frameworks.get(call.framework_id?.value ?? "")?.info.principal;
      if (claimed !== undefined && claimed !== principal) {
        return textResponse(
          400,
          `Authenticated principal '${principal}' does not match principal '${claimed}' set in 'FrameworkInfo'`,
        );
      }
    }
    const invalid = validateSchedulerCall(call);
    if (invalid) return textResponse(400, invalid);
    if (call.type === "SUBSCRIBE") {
      const streamType = negotiateStream(request.headers.get("Accept"));
      if (!streamType) {
        return textResponse(
          406,
          "Expecting 'Accept' to allow application/json or application/x-protobuf",
        );
      }
      if (request.headers.has("Mesos-Stream-Id")) {
        return textResponse(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header");
      }
      return this.#subscribe(call, streamType);
    }
    const fid = call.framework_id!.value;
    const fw = this.#frameworks.get(fid);
    if (!fw) return textResponse(400, `Framework "${fid}" cannot be found`);
    if (!fw.connected) return textResponse(403, `Framework "${fid}" is not subscribed`);
    const streamId = request.headers.get("Mesos-Stream-Id");
    if (streamId === null) {
      return textResponse(
        400,
        "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
      );
    }
    if (streamId !== fw.streamId) {
      return textResponse(
        400,
        `The stream ID "${streamId}" included in this request didn't match the stream ID currently associated with framework "${fid}"`,
      );
    }
    return this.#dispatch(fw, call);
  }

  #dispatch(fw: Framework, call: Call): LocalResponse {
    switch (call.type) {
      case "UNKNOWN":
        return textResponse(501, "Received 'UNKNOWN' call");
      case "TEARDOWN":
        this.#removeFramework(fw, "teardown");
        break;
      case "ACCEPT":
        this.#accept(fw, call.accept);
        break;
      case "DECLINE":
        this.#decline(fw, call.decline);
        break;
      case "REVIVE": {
        const roles = this.#callRoles(fw, call.revive?.roles);
        fw.filters.clear(roles);
        for (const r of roles) fw.suppressed.delete(r);
        this.#allocateSoon();
        break;
      }
      case "SUPPRESS":
        for (const r of this.#callRoles(fw, call.suppress?.roles)) fw.suppressed.add(r);
        break;
      case "KILL":
        this.#kill(fw, call.kill);
        break;
      case "SHUTDOWN": {
        const agent = this.#agentsById.get(call.shutdown.agent_id.value);
        if (agent && this.#registered(agent)) {
          agent.shutdownExecutor(fw.id, call.shutdown.executor_id.value);
        }
        break;
      }
      case "ACKNOWLEDGE":
        this.#acknowledge(fw, call.acknowledge);
        break;
      case "RECONCILE":
        this.#reconcile(fw, call.reconcile?.tasks ?? []);
        break;
      case "MESSAGE": {
        const agent = this.#agentsById.get(call.message.agent_id.value);
        if (agent && this.#registered(agent)) {
          agent.sendMessage(fw.id, call.message.executor_id.value, call.message.data);
        }
        break;
      }
      case "UPDATE_FRAMEWORK": {
        const info = call.update_framework.framework_info as FrameworkInfo;
        if (info.id?.value !== fw.id) {
          return textResponse(400, "'framework_info.id' must equal 'framework_id'");
        }
        const suppressed: string[] = call.update_framework.suppressed_roles ?? [];
        const error = validateSubscription(info, suppressed) ??
          this.#immutableChange(fw.info, info);
        if (error) return textResponse(400, error);
        fw.info = { ...info, user: fw.info.user, checkpoint: fw.info.checkpoint };
        fw.suppressed = new Set(suppressed);
        this.#allocateSoon();
        return textResponse(200);
      }
      default:
        // REQUEST, inverse offers and operation feedback: accepted, nothing to do here.
        break;
    }
    return textResponse(202);
  }

  #callRoles(fw: Framework, roles: string[] | undefined): string[] {
    return roles && roles.length > 0 ? roles : frameworkRoles(fw.info);
  }

  #immutableChange(old: FrameworkInfo, next: FrameworkInfo): string | undefined {
    if ((old.principal ?? "") !== (next.principal ?? "")) {
      return `Changing the framework's principal from "${old.principal ?? ""}" to "${
        next.principal ?? ""
      }" is not allowed`;
    }
    return undefined;
  }

  // ---- SUBSCRIBE and framework lifecycle ----

  #subscribe(call: Call, contentType: ContentType): LocalResponse {
    const streamId = crypto.randomUUID();
    let fw: Framework | undefined;
    const stream: EventStream = new EventStream("mesos.v1.scheduler.Event", contentType, () => {
      if (fw && fw.stream === stream) this.#disconnect(fw);
    });
    const response: LocalResponse = {
      status: 200,
      headers: { "Content-Type": contentType, "Mesos-Stream-Id": streamId },
      stream,
    };
    const refuse = (message: string) => {
      stream.send({ type: "ERROR", error: { message } });
      stream.close();
      return response;
    };
    const info = call.subscribe.framework_info as FrameworkInfo;
    const suppressed: string[] = call.subscribe.suppressed_roles ?? [];
    const invalid = validateSubscription(info, suppressed);
    if (invalid) return refuse(invalid);
    const requestedId = info.id?.value;
    if (requestedId !== undefined && this.#completed.has(requestedId)) {
      return refuse("Framework has been removed");
    }
    fw = requestedId === undefined ? undefined : this.#frameworks.get(requestedId);
    const failover = fw !== undefined;
    if (fw) {
      const error = this.#immutableChange(fw.info, info);
      if (error) return refuse(error);
      clearTimeout(fw.failoverTimer);
      clearInterval(fw.heartbeatTimer);
      const old = fw.stream;
      fw.stream = undefined;
      if (old && !old.closed) {
        old.send({ type: "ERROR", error: { message: "Framework failed over" } });
        old.close();
      }
      this.#removeOffersOf(fw);
      fw.info = { ...info, user: fw.info.user, checkpoint: fw.info.checkpoint };
      this.#opt.log(`master: framework ${fw.id} re-subscribed`);
    } else {
      const id = requestedId ??
        `${this.masterId}-${String(this.#frameworkCounter++).padStart(4, "0")}`;
      fw = {
        id,
        info: { ...info, id: { value: id } },
        suppressed: new Set(),
        connected: false,
        tasks: new Map(),
        unreachable: new Map(),
        filters: new OfferFilters(),
      };
      this.#frameworks.set(id, fw);
      this.#opt.log(`master: framework ${id} ("${info.name}") subscribed`);
    }
    fw.info.id = { value: fw.id };
    fw.suppressed = new Set(suppressed);
    fw.stream = stream;
    fw.streamId = streamId;
    fw.connected = true;
    stream.send({
      type: "SUBSCRIBED",
      subscribed: {
        framework_id: { value: fw.id },
        heartbeat_interval_seconds: this.#opt.heartbeatIntervalSeconds,
        master_info: this.#masterInfo(),
      },
    });
    stream.send({ type: "HEARTBEAT" });
    const subscribed = fw;
    fw.heartbeatTimer = setInterval(
      () => subscribed.stream?.send({ type: "HEARTBEAT" }),
      this.#opt.heartbeatIntervalSeconds * 1000,
    );
    if (failover) { for (const agent of this.#agents) agent.resendUpdates(fw.id); }
    this.#allocateSoon();
    return response;
  }

  #masterInfo(): object {
    return {
      id: this.masterId,
      ip: packIp(this.address),
      port: this.#port,
      pid: `master@${this.address}:${this.#port}`,
      hostname: this.#net ? this.address : this.#opt.hostname,
      version: "1.11.0",
      address: {
        hostname: this.#net ? this.address : this.#opt.hostname,
        ip: this.address,
        port: this.#port,
      },
    };
  }

  #disconnect(fw: Framework): void {
    if (!fw.connected) return;
    fw.connected = false;
    fw.stream = undefined;
    clearInterval(fw.heartbeatTimer);
    this.#removeOffersOf(fw);
    this.#allocateSoon();
    if (this.#stopped) return;
    const timeoutMs = Math.max(0, (fw.info.failover_timeout ?? 0) * 1000);
    this.#opt.log(`master: framework ${fw.id} disconnected; failover timeout ${timeoutMs} ms`);
    if (timeoutMs === 0) {
      this.#removeFramework(fw, "failover timeout");
    } else if (timeoutMs <= MAX_TIMER_MS) {
      fw.failoverTimer = setTimeout(() => this.#removeFramework(fw, "failover timeout"), timeoutMs);
    }
  }

  #removeFramework(fw: Framework, why: string): void {
    this.#opt.log(`master: removing framework ${fw.id} (${why})`);
    clearTimeout(fw.failoverTimer);
    clearInterval(fw.heartbeatTimer);
    fw.connected = false;
    const stream = fw.stream;
    fw.stream = undefined;
    stream?.close();
    this.#removeOffersOf(fw);
    this.#frameworks.delete(fw.id);
    this.#completed.add(fw.id);
    for (const agent of this.#agents) agent.shutdownFramework(fw.id);
    this.#allocateSoon();
  }

  // ---- offers ----

  #takeOffers(fw: Framework, ids: Id[]): { offers: OfferRecord[] } | { error: string } {
    const result = checkOfferIds(ids.map((i) => i.value), fw.id, (id) => this.#offers.get(id));
    // Whatever happens, every offer of this framework named in the call is used up.
    for (const { value } of ids) {
      if (this.#offers.get(value)?.frameworkId === fw.id) this.#offers.delete(value);
    }
    return result;
  }

  #decline(
    fw: Framework,
    decline: { offer_ids?: Id[]; filters?: { refuse_seconds?: number } },
  ): void {
    const seconds = refuseSeconds(decline.filters, this.#opt.offerRefuseDefaultSeconds);
    for (const { value } of decline.offer_ids ?? []) {
      const offer = this.#offers.get(value);
      if (!offer || offer.frameworkId !== fw.id) continue;
      this.#offers.delete(value);
      fw.filters.add(offer.agentId, offer.role, offer.pool, seconds);
    }
    this.#allocateSoon();
  }

  #accept(
    fw: Framework,
    // deno-lint-ignore no-explicit-any
    accept: { offer_ids?: Id[]; operations?: any[]; filters?: { refuse_seconds?: number } },
  ): void {
    const operations = accept.operations ?? [];
    const taken = this.#takeOffers(fw, accept.offer_ids ?? []);
    const pa = hasCapability(fw.info, "PARTITION_AWARE");
    if ("error" in taken) {
      this.#opt.log(`master: invalid ACCEPT from ${fw.id}: ${taken.error}`);
      for (const op of operations) {
        for (const task of operationTasks(op)) {
          this.#send(fw, {
            type: "UPDATE",
            update: {
              status: this.#masterStatus(
                task.task_id.value,
                pa ? "TASK_DROPPED" : "TASK_LOST",
                "REASON_INVALID_OFFERS",
                {
                  message: `Task launched with invalid offers: ${taken.error}`,
                  agentId: task.agent_id?.value,
                },
              ),
            },
          });
        }
      }
      this.#allocateSoon();
      return;
    }
    const first = taken.offers[0]!;
    const agent = this.#agentsById.get(first.agentId)!;
    const role = first.role;
    let remaining = taken.offers.reduce((p, o) => addPools(p, o.pool), emptyPool());
    const launchedHere = new Map<string, NonNullable<TaskInfo["executor"]>>();
    const idsHere = new Set<string>();
    const taskError = (task: TaskInfo, reason: string, message: string) => {
      this.#send(fw, {
        type: "UPDATE",
        update: {
          status: this.#masterStatus(task.task_id.value, "TASK_ERROR", reason, {
            message,
            agentId: task.agent_id?.value,
          }),
        },
      });
    };
    for (const op of operations) {
      if (op.type === "LAUNCH_GROUP") {
        for (const task of operationTasks(op)) {
          taskError(
            task,
            "REASON_TASK_GROUP_INVALID",
            "LAUNCH_GROUP is not supported by the local cluster",
          );
        }
        continue;
      }
      if (op.type !== "LAUNCH") {
        this.#opt.log(`master: ignoring ${op.type ?? "UNKNOWN"} operation from ${fw.id}`);
        continue;
      }
      for (const task of operationTasks(op)) {
        if (op.id !== undefined) {
          taskError(
            task,
            "REASON_TASK_INVALID",
            "'Operation.id' must not be set on a LAUNCH operation",
          );
          continue;
        }
        let error = validateTask(task, {
          frameworkId: fw.id,
          agentId: agent.id,
          taskIdInUse: (id) => fw.tasks.has(id) || fw.unreachable.has(id) || idsHere.has(id),
          existingExecutor: (id) => agent.executorInfo(fw.id, id) ?? launchedHere.get(id),
        });
        // A command task runs under a command executor of its own, as in Mesos.
        const executor = task.executor ??
          commandExecutorInfo(task, fw.id, this.#opt.commandExecutor);
        let taskPool: Pool = emptyPool();
        let needed: Pool = emptyPool();
        if (!error) {
          const tp = poolFromResources(task.resources ?? [], role);
          const eid = executor.executor_id.value;
          const executorNew = !agent.executorInfo(fw.id, eid) && !launchedHere.has(eid);
          const ep = executorNew ? poolFromResources(executor.resources ?? [], role) : emptyPool();
          if (typeof tp === "string") error = tp;
          else if (typeof ep === "string") error = ep;
          else {
            taskPool = tp;
            needed = addPools(tp, ep);
            const short = shortfall(remaining, needed);
            if (short !== undefined) {
              error = `Task "${task.task_id.value}"${
                executorNew ? " with its new executor" : ""
              } uses more resources than the offers hold: it ${short} (needs ${
                describe(needed)
              }, remaining ${describe(remaining)})`;
            }
          }
        }
        if (error) {
          taskError(task, "REASON_TASK_INVALID", error);
          continue;
        }
        remaining = subtractPools(remaining, needed);
        injectAllocation(task.resources ?? [], role);
        injectAllocation(executor.resources ?? [], role);
        const eid = executor.executor_id.value;
        if (!agent.executorInfo(fw.id, eid)) launchedHere.set(eid, executor);
        idsHere.add(task.task_id.value);
        fw.tasks.set(task.task_id.value, {
          taskId: task.task_id.value,
          agentId: agent.id,
          executorId: eid,
          pool: taskPool,
          resources: structuredClone(task.resources ?? []),
          state: "TASK_STAGING",
          freed: false,
        });
        agent.launchTask(fw.info, task, executor);
      }
    }
    if (!isEmptyPool(remaining)) {
      fw.filters.add(
        agent.id,
        role,
        remaining,
        refuseSeconds(accept.filters, this.#opt.offerRefuseDefaultSeconds),
      );
    }
    this.#allocateSoon();
  }

  // ---- tasks ----

  #kill(fw: Framework, kill: { task_id: Id; agent_id?: Id; kill_policy?: unknown }): void {
    const task = fw.tasks.get(kill.task_id.value);
    if (!task) {
      this.#reconcile(fw, [{ task_id: kill.task_id, agent_id: kill.agent_id }]);
      return;
    }
    if (kill.agent_id && kill.agent_id.value !== task.agentId) return;
    const agent = this.#agentsById.get(task.agentId);
    if (agent && this.#registered(agent)) agent.killTask(fw.id, task.taskId, kill.kill_policy);
  }

  #acknowledge(fw: Framework, ack: { agent_id: Id; task_id: Id; uuid: Uint8Array }): void {
    const agent = this.#agentsById.get(ack.agent_id.value);
    if (!agent || !this.#registered(agent) || !agent.running) return; // dropped
    const result = agent.acknowledge(fw.id, ack.task_id.value, ack.uuid);
    if (result?.finished) {
      const task = fw.tasks.get(ack.task_id.value);
      if (task && isTerminal(task.state)) fw.tasks.delete(ack.task_id.value);
    }
  }

  #reconcile(fw: Framework, tasks: { task_id: Id; agent_id?: Id }[]): void {
    const pa = hasCapability(fw.info, "PARTITION_AWARE");
    const reply = (taskId: string, state: string, extra: StatusExtra) => {
      const finalState = !pa &&
          ["TASK_GONE", "TASK_UNREACHABLE", "TASK_UNKNOWN", "TASK_GONE_BY_OPERATOR", "TASK_DROPPED"]
            .includes(state)
        ? "TASK_LOST"
        : state;
      this.#send(fw, {
        type: "UPDATE",
        update: {
          status: this.#masterStatus(taskId, finalState, "REASON_RECONCILIATION", {
            message: "Reconciliation: Latest task state",
            ...extra,
          }),
        },
      });
    };
    const known = (task: MasterTask) =>
      reply(task.taskId, task.state, {
        agentId: task.agentId,
        executorId: task.executorId,
        unreachableTime: task.unreachableTime,
      });
    if (tasks.length === 0) {
      for (const task of fw.tasks.values()) known(task);
      for (const task of fw.unreachable.values()) known(task);
      return;
    }
    for (const { task_id, agent_id } of tasks) {
      const task = fw.tasks.get(task_id.value) ?? fw.unreachable.get(task_id.value);
      if (task && (!agent_id || agent_id.value === task.agentId)) {
        known(task);
        continue;
      }
      if (!agent_id) {
        reply(task_id.value, "TASK_UNKNOWN", {});
        continue;
      }
      const unreachableSince = this.#unreachableAgents.get(agent_id.value);
      if (unreachableSince !== undefined) {
        reply(task_id.value, "TASK_UNREACHABLE", {
          agentId: agent_id.value,
          unreachableTime: unreachableSince,
        });
      } else if (this.#agentsById.has(agent_id.value)) {
        reply(task_id.value, "TASK_GONE", { agentId: agent_id.value });
      } else {
        reply(task_id.value, "TASK_UNKNOWN", { agentId: agent_id.value });
      }
    }
  }
}

// deno-lint-ignore no-explicit-any
function operationTasks(op: any): TaskInfo[] {
  if (op?.type === "LAUNCH") return op.launch?.task_infos ?? [];
  if (op?.type === "LAUNCH_GROUP") return op.launch_group?.task_group?.tasks ?? [];
  return [];
}

function injectAllocation(
  resources: { allocation_info?: { role?: string } }[],
  role: string,
): void {
  for (const r of resources) r.allocation_info ??= { role };
}

function describe(pool: Pool): string {
  const parts = Object.entries(pool.scalars).map(([k, v]) => `${k}:${v}`);
  for (const [k, ranges] of Object.entries(pool.ranges)) {
    parts.push(`${k}:[${ranges.map((r) => `${r.begin}-${r.end}`).join(",")}]`);
  }
  return parts.join(";") || "nothing";
}

/** The field a call of each type must carry (400 without it). */
const NESTED_FIELD: Readonly<Record<string, string>> = {
  ACCEPT: "accept",
  DECLINE: "decline",
  ACCEPT_INVERSE_OFFERS: "accept_inverse_offers",
  DECLINE_INVERSE_OFFERS: "decline_inverse_offers",
  KILL: "kill",
  SHUTDOWN: "shutdown",
  ACKNOWLEDGE: "acknowledge",
  ACKNOWLEDGE_OPERATION_STATUS: "acknowledge_operation_status",
  RECONCILE: "reconcile",
  MESSAGE: "message",
  REQUEST: "request",
  UPDATE_FRAMEWORK: "update_framework",
};

/** Checks a scheduler Call the way the master does before any lookup (400 on failure). */
export function validateSchedulerCall(call: Call): string | undefined {
  if (call.type === undefined) return "Expecting 'type' to be present";
  if (call.type === "SUBSCRIBE") {
    if (!call.subscribe) return "Expecting 'subscribe' to be present";
    const infoId = call.subscribe.framework_info?.id?.value;
    const callId = call.framework_id?.value;
    if (infoId !== callId) {
      return "'framework_id' differs from 'subscribe.framework_info.id'";
    }
    return undefined;
  }
  if (!call.framework_id) return "Expecting 'framework_id' to be present";
  const field = NESTED_FIELD[call.type];
  if (field && !call[field]) return `Expecting '${field}' to be present`;
  if (call.type === "ACKNOWLEDGE") {
    const uuid: Uint8Array = call.acknowledge.uuid;
    if (uuid.length !== 16) return `Expecting 'uuid' to be 16 bytes, but got ${uuid.length}`;
  }
  return undefined;
}
