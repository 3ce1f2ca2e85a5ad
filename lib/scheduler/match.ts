/**
 * Offer matching: a pure function from processes waiting for resources and
 * the offers at hand to launches and declines. No I/O, no clock.
 *
 * @module
 */
import type { Offer, OfferID, Resource } from "../mesos/types.ts";
import type { ProcessRole } from "../model.ts";
import type { AgentRoom } from "./spread.ts";

/** What one redis task and the executor cost. */
export interface TaskResources {
  /** cpus per redis task. */
  taskCpus: number;
  /** MB added to the capacity for each redis task (redis overhead beyond maxmemory). */
  memOverheadMB: number;
  /** cpus of the executor, charged once per agent when it is not running there yet. */
  executorCpus: number;
  /** MB of the executor, charged like `executorCpus`. */
  executorMemMB: number;
}

/** The defaults: 0.1 cpu + (capacity + 32 MB) per task; 0.1 cpu + 64 MB per executor. */
export const DEFAULT_RESOURCES: TaskResources = {
  taskCpus: 0.1,
  memOverheadMB: 32,
  executorCpus: 0.1,
  executorMemMB: 64,
};

/** A process that may be launched now: a redis process, or a proxy (`role` "proxy"). */
export interface PendingProcess {
  instance: string;
  procId: string;
  role: ProcessRole | "proxy";
  capacityMB: number;
  /** Most processes of the instance (of its `countAs`, when given) on one agent. */
  distribution: number;
  /**
   * What `distribution` counts, when not the instance's redis processes
   * (e.g. `{instance}/proxies`); `placements` is keyed by it too.
   */
  countAs?: string;
  /** cpus of this task, when not `TaskResources.taskCpus`. */
  cpus?: number;
  /** MB of this task, when not capacity + `TaskResources.memOverheadMB`. */
  memMB?: number;
  /** Number of processes the instance has in all (for the waiting reason). */
  instanceSize: number;
  /** Agent to prefer (a relaunch goes back where the data was). */
  preferredAgentId?: string;
  /** Port to take on the preferred agent when its offer holds it (a relaunch keeps its address). */
  preferredPort?: number;
  /** The only agent allowed (a restart in place, to keep the data dir). */
  requiredAgentId?: string;
  /** A slave's master, already placed: the address it replicates from. */
  master?: MasterAddress;
  /**
   * A slave whose master is launchable in the same round: the slave is placed
   * only after that master (then `PlacedTask.master` is its new address).
   */
  masterProcId?: string;
  /**
   * Processes of one group (a cluster shard: its master and its replicas)
   * go to different agents whenever the offers leave a choice.
   */
  group?: string;
  /** Needs a second port from the offer (a cluster node's bus port). */
  needsBusPort?: boolean;
}

/** Where a master listens. */
export interface MasterAddress {
  host: string;
  port: number;
}

/** One task placed on an offer. */
export interface PlacedTask {
  instance: string;
  procId: string;
  role: ProcessRole | "proxy";
  port: number;
  cpus: number;
  memMB: number;
  /** For a slave: the address of its master. */
  master?: MasterAddress;
  /** For a slave: its master was placed in this very round. */
  masterPlacedNow?: boolean;
  /** The second port taken for a process with `needsBusPort`. */
  busPort?: number;
}

/** Tasks to launch on one offer. */
export interface Launch {
  offerId: OfferID;
  agentId: string;
  hostname: string;
  /** True when the executor resources were counted (not yet running on the agent). */
  withExecutor: boolean;
  tasks: PlacedTask[];
}

/** What {@linkcode match} decided. */
export interface MatchResult {
  launches: Launch[];
  /** Offers not used at all. */
  declines: OfferID[];
  /** Instance name → why some of its processes could not be placed. */
  unplaced: Record<string, string>;
  /** Processes left for a less loaded agent's coming offer (see {@linkcode SpreadInput}). */
  deferred: number;
}

/**
 * What the scheduler knows of the agents beyond the offers at hand, for
 * spreading: an offer from an agent running more than its fair share of
 * tasks takes no more while a less loaded agent, known to offer again soon,
 * has room for them; the rest waits for that agent's offer. Redis processes
 * and proxies are shared out each on their own (a redis-server costs its
 * executor far more to start and watch than a proxy does: counted together,
 * proxies filled some agents while the redis-servers piled on another).
 */
export interface SpreadInput {
  /** Agent id → our live redis processes there. */
  load: Readonly<Record<string, number>>;
  /** Agent id → our live proxies there. */
  proxyLoad?: Readonly<Record<string, number>>;
  /**
   * Agents with no offer at hand that will offer again soon
   * (`spreadPeers` in spread.ts), with the room their last offer left.
   */
  peers: readonly AgentRoom[];
}

/** Options of {@linkcode match}. */
export interface MatchOptions {
  /** The executor id of this framework (looked up in `offer.executor_ids`). */
  executorId: string;
  resources?: TaskResources;
  /** Agent id → ports to avoid (held by our tasks lately); used only when others are left. */
  avoidPorts?: Record<string, readonly number[]>;
  /**
   * Ports in quarantine ({@linkcode notePortsInUse}): a port another
   * instance's process used on that agent lately goes to a process of this
   * instance only when the offers leave no other choice.
   */
  quarantine?: PortQuarantine;
  /** Group ({@linkcode PendingProcess.group}) → agent id → live processes of the group there. */
  groupPlacements?: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Spread over the known agents, not only the offers at hand. */
  spread?: SpreadInput;
}

/** Default time a port stays reserved for the instance that used it last: 10 minutes. */
export const DEFAULT_PORT_QUARANTINE_MS = 10 * 60_000;

/** `{agentId}:{port}` → the instance that used the port last, and until when it stays reserved. */
export type PortQuarantine = ReadonlyMap<string, { instance: string; until: number }>;

/** A port a process of `instance` holds on `agentId` now. */
export interface PortInUse {
  agentId: string;
  port: number;
  instance: string;
}

/**
 * The quarantine after a look at the ports in use at `now`: each port in use
 * is reserved for its instance until `now + quarantineMs` (so the reservation
 * runs from the last time it was seen in use); entries past their time are
 * dropped. Pure: returns a new map.
 */
export function notePortsInUse(
  quarantine: PortQuarantine,
  inUse: readonly PortInUse[],
  now: number,
  quarantineMs: number = DEFAULT_PORT_QUARANTINE_MS,
): Map<string, { instance: string; until: number }> {
  const next = new Map<string, { instance: string; until: number }>();
  for (const [key, entry] of quarantine) if (entry.until > now) next.set(key, entry);
  for (const { agentId, port, instance } of inUse) {
    next.set(`${agentId}:${port}`, { instance, until: now + quarantineMs });
  }
  return next;
}

/**
 * {@linkcode notePortsInUse} in place, without dropping expired entries (the
 * next `notePortsInUse` does): what a driver calls for each record it writes,
 * so the quarantine is not copied every time.
 */
export function markPortsInUse(
  quarantine: Map<string, { instance: string; until: number }>,
  inUse: readonly PortInUse[],
  now: number,
  quarantineMs: number = DEFAULT_PORT_QUARANTINE_MS,
): void {
  for (const { agentId, port, instance } of inUse) {
    quarantine.set(`${agentId}:${port}`, { instance, until: now + quarantineMs });
  }
}

/**
 * The quarantine by agent and port (the instance each port is reserved
 * for), read once per {@linkcode match}: a placement asks about hundreds of
 * ports when many were used lately, and a number key is cheaper than a
 * string made for every question.
 */
function quarantineByAgent(
  quarantine: PortQuarantine | undefined,
): Map<string, Map<number, string>> {
  const byAgent = new Map<string, Map<number, string>>();
  for (const [key, { instance }] of quarantine ?? []) {
    const colon = key.lastIndexOf(":");
    const port = Number(key.slice(colon + 1));
    if (colon < 0 || !Number.isInteger(port)) continue;
    const agentId = key.slice(0, colon);
    let ports = byAgent.get(agentId);
    if (!ports) byAgent.set(agentId, ports = new Map());
    ports.set(port, instance);
  }
  return byAgent;
}

interface OfferRoom {
  offer: Offer;
  agentId: string;
  cpus: number;
  mem: number;
  ports: number[];
  executorRunning: boolean;
  launch?: Launch;
}

function scalar(resources: readonly Resource[] | undefined, name: string): number {
  let sum = 0;
  for (const r of resources ?? []) {
    if (r.name === name && r.type === "SCALAR" && r.scalar) sum += r.scalar.value;
  }
  return sum;
}

function portList(resources: readonly Resource[] | undefined): number[] {
  const ports: number[] = [];
  for (const r of resources ?? []) {
    if (r.name !== "ports" || r.type !== "RANGES") continue;
    for (const range of r.ranges?.range ?? []) {
      for (let p = range.begin; p <= range.end && ports.length < 100_000; p++) ports.push(p);
    }
  }
  return ports.sort((a, b) => a - b);
}

/** Rounds like Mesos does (3 decimals), so repeated subtraction does not drift. */
function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/**
 * Places `pending` processes on `offers`. Rules: each task needs `taskCpus`
 * cpus, capacity + `memOverheadMB` MB and one port from the offer's `ports`
 * ranges (never one already taken in this round); the executor's resources are
 * added for the first task on an agent whose offer does not list the
 * executor in `executor_ids`; no agent ends up with more than `distribution`
 * processes of one instance, counting `placements` (instance → agent id →
 * processes already there). A preferred agent wins when it fits (and there the
 * preferred port, when its offer holds it); otherwise the
 * agent holding the fewest processes of the instance, then the agent running
 * the fewest tasks of the kind (redis processes: `spread.load`, proxies:
 * `spread.proxyLoad`, plus those given in this round: many small
 * instances spread over the agents, so their executors start them in
 * parallel), then the offer order.
 * With `spread.peers` the share of an agent is the tasks of the kind of
 * every agent known (at hand or peer) plus the pending ones, divided evenly:
 * a process
 * whose best offer is from an agent at or above its share goes instead to
 * the least loaded peer below its share that has room for it (its
 * Distribution and group counts allowed, a group no worse off): it is left
 * pending (`deferred`) for that peer's next offer. A process bound to the
 * offer's agent (required or preferred there) is never left.
 * A slave waiting for its master (`masterProcId`) is placed after every other
 * process, and only when that master was placed in this round: it gets the
 * master's new address. Ports another instance used on that agent lately
 * (`quarantine`) are taken only when no offer that fits has another port: an
 * offer with a clean port comes first after the preferred agent. Offers with
 * no task are declined.
 */
export function match(
  pending: readonly PendingProcess[],
  offers: readonly Offer[],
  placements: Readonly<Record<string, Readonly<Record<string, number>>>>,
  options: MatchOptions,
): MatchResult {
  const res = options.resources ?? DEFAULT_RESOURCES;
  const rooms: OfferRoom[] = offers.map((offer) => {
    const avoid = new Set(options.avoidPorts?.[offer.agent_id.value] ?? []);
    const ports = portList(offer.resources);
    const fresh = ports.filter((p) => !avoid.has(p));
    const reused = ports.filter((p) => avoid.has(p));
    return {
      offer,
      agentId: offer.agent_id.value,
      cpus: scalar(offer.resources, "cpus"),
      mem: scalar(offer.resources, "mem"),
      ports: [...fresh, ...reused],
      executorRunning: (offer.executor_ids ?? []).some((e) => e.value === options.executorId),
    };
  });
  const quarantine = quarantineByAgent(options.quarantine);
  // Executors launched in this round count as running for later tasks on the same agent.
  const executorPlanned = new Set<string>();
  const counts = new Map<string, Map<string, number>>();
  const countOf = (instance: string, agent: string): number =>
    counts.get(instance)?.get(agent) ?? placements[instance]?.[agent] ?? 0;
  const unplaced: Record<string, string> = {};
  // Tasks per agent: live ones, plus those placed (or left to a peer) in this round.
  const kindOf = (p: PendingProcess) => p.role === "proxy" ? "proxy" : "redis";
  const load = {
    redis: new Map<string, number>(Object.entries(options.spread?.load ?? {})),
    proxy: new Map<string, number>(Object.entries(options.spread?.proxyLoad ?? {})),
  };
  const peers = (options.spread?.peers ?? []).map((p) => ({ ...p }));
  const known = new Set([...rooms.map((r) => r.agentId), ...peers.map((p) => p.agentId)]);
  const shareOf = (kind: "redis" | "proxy") =>
    Math.ceil(
      ([...known].reduce((n, a) => n + (load[kind].get(a) ?? 0), 0) +
        pending.filter((p) => kindOf(p) === kind).length) / Math.max(1, known.size),
    );
  const shares = { redis: shareOf("redis"), proxy: shareOf("proxy") };
  let deferred = 0;
  const groupCounts = new Map<string, Map<string, number>>();
  const groupCountOf = (group: string | undefined, agent: string): number =>
    group === undefined
      ? 0
      : groupCounts.get(group)?.get(agent) ?? options.groupPlacements?.[group]?.[agent] ?? 0;
  /** Placed task → its pending process and room (for the group repair below). */
  const placedFrom = new Map<PlacedTask, { proc: PendingProcess; room: OfferRoom }>();
  /** `instance/procId` → address, for masters placed in this round. */
  const placedMasters = new Map<string, MasterAddress>();
  // Masters first: a slave waiting for its master comes after it; proxies last.
  const ordered = [
    ...pending.filter((p) => p.masterProcId === undefined && p.role !== "proxy"),
    ...pending.filter((p) => p.masterProcId !== undefined && p.role !== "proxy"),
    ...pending.filter((p) => p.role === "proxy"),
  ];

  for (const proc of ordered) {
    let master = proc.master;
    if (proc.masterProcId !== undefined && master === undefined) {
      master = placedMasters.get(`${proc.instance}/${proc.masterProcId}`);
      if (master === undefined) {
        unplaced[proc.instance] ??= `Waiting for master ${proc.masterProcId} to be placed`;
        continue;
      }
    }
    const kindLoad = load[kindOf(proc)];
    const loadOf = (agent: string): number => kindLoad.get(agent) ?? 0;
    const addLoad = (agent: string) => kindLoad.set(agent, loadOf(agent) + 1);
    const share = shares[kindOf(proc)];
    const memNeed = proc.memMB ?? proc.capacityMB + res.memOverheadMB;
    const cpuNeed = proc.cpus ?? res.taskCpus;
    const counted = proc.countAs ?? proc.instance;
    const fits = (room: OfferRoom): boolean => {
      if (proc.requiredAgentId !== undefined && room.agentId !== proc.requiredAgentId) return false;
      if (countOf(counted, room.agentId) >= proc.distribution) return false;
      if (room.ports.length < (proc.needsBusPort ? 2 : 1)) return false;
      const withExec = !room.executorRunning && !executorPlanned.has(room.agentId);
      const cpus = cpuNeed + (withExec ? res.executorCpus : 0);
      const mem = memNeed + (withExec ? res.executorMemMB : 0);
      return round3(room.cpus - cpus) >= 0 && round3(room.mem - mem) >= 0;
    };
    const candidates = rooms.filter(fits);
    /**
     * The first port of `room` not reserved for another instance, else -1;
     * found once per room for this process (the sort below asks for it in
     * every comparison), forgotten when a port of the room is taken.
     */
    const cleanIndex = new Map<OfferRoom, number>();
    const cleanPort = (room: OfferRoom): number => {
      let index = cleanIndex.get(room);
      if (index === undefined) {
        const reserved = quarantine.get(room.agentId);
        index = reserved === undefined ? (room.ports.length > 0 ? 0 : -1) : room.ports.findIndex(
          (p) => {
            const owner = reserved.get(p);
            return owner === undefined || owner === proc.instance;
          },
        );
        cleanIndex.set(room, index);
      }
      return index;
    };
    if (candidates.length === 0 && proc.requiredAgentId !== undefined) {
      unplaced[proc.instance] ??=
        `Waiting for an offer from agent ${proc.requiredAgentId} to restart ${proc.procId} in place with its data`;
      continue;
    }
    if (candidates.length === 0 && proc.role === "proxy") {
      unplaced[proc.instance] ??=
        `Waiting for resources for proxy ${proc.procId}: need an agent without another proxy of the instance, with ${memNeed} MB, ${cpuNeed} cpus and a port free`;
      continue;
    }
    if (candidates.length === 0) {
      const agents = Math.ceil(proc.instanceSize / Math.max(1, proc.distribution));
      unplaced[proc.instance] ??= `Waiting for resources: need ${agents} agent${
        agents === 1 ? "" : "s"
      } with ${memNeed} MB, ${res.taskCpus} cpus and a port free per process for Distribution ${proc.distribution}`;
      continue;
    }
    candidates.sort((a, b) => {
      const pa = a.agentId === proc.preferredAgentId ? 0 : 1;
      const pb = b.agentId === proc.preferredAgentId ? 0 : 1;
      if (pa !== pb) return pa - pb;
      const ga = groupCountOf(proc.group, a.agentId);
      const gb = groupCountOf(proc.group, b.agentId);
      if (ga !== gb) return ga - gb;
      // An offer with a port no other instance used lately beats one without.
      const qa = cleanPort(a) < 0 ? 1 : 0;
      const qb = cleanPort(b) < 0 ? 1 : 0;
      if (qa !== qb) return qa - qb;
      return countOf(counted, a.agentId) - countOf(counted, b.agentId) ||
        loadOf(a.agentId) - loadOf(b.agentId) ||
        (a.launch?.tasks.length ?? 0) - (b.launch?.tasks.length ?? 0);
    });
    const room = candidates[0]!;
    if (
      peers.length > 0 && loadOf(room.agentId) >= share &&
      proc.requiredAgentId === undefined && proc.preferredAgentId !== room.agentId
    ) {
      const peerFits = (p: AgentRoom): boolean => {
        if (loadOf(p.agentId) >= share) return false;
        if (countOf(counted, p.agentId) >= proc.distribution) return false;
        if (groupCountOf(proc.group, p.agentId) > groupCountOf(proc.group, room.agentId)) {
          return false;
        }
        if (p.ports < (proc.needsBusPort ? 2 : 1)) return false;
        const cpus = cpuNeed + (p.executorRunning ? 0 : res.executorCpus);
        const mem = memNeed + (p.executorRunning ? 0 : res.executorMemMB);
        return round3(p.cpus - cpus) >= 0 && round3(p.mem - mem) >= 0;
      };
      const peer = peers.filter(peerFits).sort((a, b) => loadOf(a.agentId) - loadOf(b.agentId))[0];
      if (peer !== undefined) {
        // Held for the peer: its room, load and counts, as if placed there.
        peer.cpus = round3(peer.cpus - cpuNeed - (peer.executorRunning ? 0 : res.executorCpus));
        peer.mem = round3(peer.mem - memNeed - (peer.executorRunning ? 0 : res.executorMemMB));
        peer.ports -= proc.needsBusPort ? 2 : 1;
        peer.executorRunning = true;
        addLoad(peer.agentId);
        const perAgent = counts.get(counted) ?? new Map<string, number>();
        perAgent.set(peer.agentId, countOf(counted, peer.agentId) + 1);
        counts.set(counted, perAgent);
        if (proc.group !== undefined) {
          const g = groupCounts.get(proc.group) ?? new Map<string, number>();
          g.set(peer.agentId, groupCountOf(proc.group, peer.agentId) + 1);
          groupCounts.set(proc.group, g);
        }
        deferred++;
        unplaced[proc.instance] ??=
          `Waiting for an offer from agent ${peer.agentId}, which runs fewer tasks (spreading the load)`;
        continue;
      }
    }
    const withExec = !room.executorRunning && !executorPlanned.has(room.agentId);
    room.cpus = round3(room.cpus - cpuNeed - (withExec ? res.executorCpus : 0));
    room.mem = round3(room.mem - memNeed - (withExec ? res.executorMemMB : 0));
    if (withExec) executorPlanned.add(room.agentId);
    // Its own old port on its preferred agent first, else a port no other
    // instance used lately, else (no choice) the first one.
    const keep = room.agentId === proc.preferredAgentId && proc.preferredPort !== undefined
      ? room.ports.indexOf(proc.preferredPort)
      : -1;
    const clean = cleanPort(room);
    const port = room.ports.splice(keep >= 0 ? keep : clean < 0 ? 0 : clean, 1)[0]!;
    cleanIndex.delete(room);
    let busPort: number | undefined;
    if (proc.needsBusPort) {
      const cleanBus = cleanPort(room);
      busPort = room.ports.splice(cleanBus < 0 ? 0 : cleanBus, 1)[0]!;
    }
    room.launch ??= {
      offerId: room.offer.id,
      agentId: room.agentId,
      hostname: room.offer.hostname,
      withExecutor: withExec,
      tasks: [],
    };
    const placed: PlacedTask = {
      instance: proc.instance,
      procId: proc.procId,
      role: proc.role,
      port,
      cpus: cpuNeed,
      memMB: memNeed,
      ...(master !== undefined ? { master } : {}),
      ...(proc.masterProcId !== undefined && proc.master === undefined
        ? { masterPlacedNow: true }
        : {}),
      ...(busPort !== undefined ? { busPort } : {}),
    };
    room.launch.tasks.push(placed);
    addLoad(room.agentId);
    placedFrom.set(placed, { proc, room });
    if (proc.group !== undefined) {
      const g = groupCounts.get(proc.group) ?? new Map<string, number>();
      g.set(room.agentId, groupCountOf(proc.group, room.agentId) + 1);
      groupCounts.set(proc.group, g);
    }
    if (proc.role === "master") {
      placedMasters.set(`${proc.instance}/${proc.procId}`, { host: room.offer.hostname, port });
    }
    const perAgent = counts.get(counted) ?? new Map<string, number>();
    perAgent.set(room.agentId, countOf(counted, room.agentId) + 1);
    counts.set(counted, perAgent);
  }
  repairGroups(placedFrom, groupCountOf, groupCounts);
  return {
    launches: rooms.flatMap((r) => (r.launch ? [r.launch] : [])),
    declines: rooms.filter((r) => !r.launch).map((r) => r.offer.id),
    unplaced,
    deferred,
  };
}

/**
 * The greedy placement can leave two processes of one group on an agent
 * while another agent holds a process of another group of the same
 * instance that could trade places: such pairs swap (agents, offers and
 * ports; both cost the same, both are free to move). Pure; changes the
 * launches and counts it is given.
 */
function repairGroups(
  placedFrom: Map<PlacedTask, { proc: PendingProcess; room: OfferRoom }>,
  groupCountOf: (group: string | undefined, agent: string) => number,
  groupCounts: Map<string, Map<string, number>>,
): void {
  const movable = (p: PendingProcess) =>
    p.group !== undefined && p.requiredAgentId === undefined && p.preferredAgentId === undefined;
  const bump = (group: string, agent: string, by: number) => {
    const g = groupCounts.get(group) ?? new Map<string, number>();
    g.set(agent, groupCountOf(group, agent) + by);
    groupCounts.set(group, g);
  };
  for (const [x, xf] of placedFrom) {
    if (!movable(xf.proc) || groupCountOf(xf.proc.group, xf.room.agentId) <= 1) continue;
    for (const [y, yf] of placedFrom) {
      if (
        y === x || !movable(yf.proc) || yf.proc.instance !== xf.proc.instance ||
        yf.proc.group === xf.proc.group || yf.room.agentId === xf.room.agentId ||
        Boolean(yf.proc.needsBusPort) !== Boolean(xf.proc.needsBusPort)
      ) continue;
      // After the swap: x alone of its group on y's agent, y alone of its on x's.
      if (groupCountOf(xf.proc.group, yf.room.agentId) > 0) continue;
      if (groupCountOf(yf.proc.group, xf.room.agentId) > 0) continue;
      const xr = xf.room;
      const yr = yf.room;
      xr.launch!.tasks[xr.launch!.tasks.indexOf(x)] = y;
      yr.launch!.tasks[yr.launch!.tasks.indexOf(y)] = x;
      [x.port, y.port] = [y.port, x.port];
      [x.busPort, y.busPort] = [y.busPort, x.busPort];
      bump(xf.proc.group!, xr.agentId, -1);
      bump(xf.proc.group!, yr.agentId, 1);
      bump(yf.proc.group!, yr.agentId, -1);
      bump(yf.proc.group!, xr.agentId, 1);
      xf.room = yr;
      yf.room = xr;
      break;
    }
  }
}
