/**
 * Planning of the proxy endpoints of instances (`lib/proxy` run as Mesos
 * tasks by MrRedisExecutor): how many, where, when to relaunch, and which
 * master each running proxy must be told. Pure: no I/O, no clock.
 *
 * @module
 */
import type { InstanceRecord, InstanceType, ProcessRecord, ProxyRecord } from "../model.ts";
import type { PendingProcess } from "./match.ts";
import type { ObservedStats } from "./plan.ts";
import type { ProxyMasterSpec } from "../proxy/task_spec.ts";

/** What one proxy task takes from an offer besides its port. */
export const PROXY_RESOURCES: { cpus: number; memMB: number } = { cpus: 0.05, memMB: 16 };

/** Most proxies of one instance. */
export const MAX_PROXIES = 16;

/**
 * Proxies of a new instance when CREATE does not say: 2 for a master with
 * slaves (on different agents), 1 for a single server, 0 for Redis Cluster
 * (its clients follow the cluster's own redirections; proxies for it are
 * not built).
 */
export function defaultProxies(type: InstanceType): number {
  return type === "MS" ? 2 : type === "S" ? 1 : 0;
}

/** Proxy id number `i` (from 1): `x{i}`. */
export function proxyIdOf(i: number): string {
  return `x${i}`;
}

/** The number of a proxy id (`x3` → 3), or 0 for anything else. */
export function proxyIndex(id: string): number {
  const m = /^x([1-9]\d*)$/.exec(id);
  return m ? Number(m[1]) : 0;
}

/** `host:port@epoch` of a master, or `none`: what a proxy was last told. */
export function proxyMasterVersion(master: ProxyMasterSpec | null): string {
  return master ? `${master.host}:${master.port}@${master.epoch}` : "none";
}

/**
 * The master proxies of `inst` must send clients to: the current master once
 * it runs and, after a promotion, once it says it is master (the same rule
 * as STATUS); `null` while there is none.
 */
export function proxyMaster(
  inst: InstanceRecord,
  procs: readonly ProcessRecord[],
  stats: ReadonlyMap<string, ObservedStats>,
): ProxyMasterSpec | null {
  const m = procs.find((p) => p.id === inst.masterId);
  if (!m || m.state !== "RUNNING" || !m.host || !m.port) return null;
  if (inst.promotingId === m.id && stats.get(m.taskId)?.role !== "master") return null;
  return { host: m.host, port: m.port, epoch: inst.epoch ?? 0 };
}

/** What a running proxy task was last told (its launch spec or a `proxy-master` command). */
export interface ToldMaster {
  /** {@linkcode proxyMasterVersion} of what it was told. */
  version: string;
  /** When it was sent, ms since the epoch. */
  sentAt: number;
  /** The executor answered that the proxy took it (a launch spec counts as taken). */
  confirmed: boolean;
}

/** Everything {@linkcode planProxies} looks at. */
export interface ProxyPlanInput {
  instances: readonly InstanceRecord[];
  /** Instance name → its redis processes. */
  processes: Readonly<Record<string, readonly ProcessRecord[]>>;
  /** Instance name → its proxies. */
  proxies: Readonly<Record<string, readonly ProxyRecord[]>>;
  /** Task id → latest stats of redis processes. */
  stats: ReadonlyMap<string, ObservedStats>;
  /** Proxy task id → what it was last told. */
  told: ReadonlyMap<string, ToldMaster>;
  /** Milliseconds since the epoch. */
  now: number;
  /** Resend a KILL unanswered for this long (ms). Default 10 s. */
  killResendMs?: number;
  /** Tell a proxy again when its executor has not confirmed for this long (ms). Default 5 s. */
  retellMs?: number;
}

/** One thing the driver must do for proxies. */
export type ProxyAction =
  /** Record a new PENDING proxy `proxyId` (the count grew, or a new instance). */
  | { type: "add-proxy"; instance: string; proxyId: string }
  /** Remove the record of a surplus proxy whose task is gone. */
  | { type: "drop-proxy"; instance: string; proxyId: string }
  /** Kill a proxy task (deleting, or surplus). */
  | { type: "kill-proxy"; instance: string; proxyId: string; taskId: string; agentId?: string }
  /** A LOST proxy's backoff has passed: make it PENDING again. */
  | { type: "relaunch-proxy"; instance: string; proxyId: string }
  /** Send the running proxy task `taskId` the instance's master. */
  | TellProxyAction;

/** {@linkcode ProxyAction} `tell-proxy`. */
export interface TellProxyAction {
  type: "tell-proxy";
  instance: string;
  proxyId: string;
  taskId: string;
  master: ProxyMasterSpec;
}

/** What {@linkcode planProxies} returns. */
export interface ProxyPlan {
  actions: ProxyAction[];
  /** Proxies that may be launched as soon as an offer fits (after every redis process). */
  launchable: PendingProcess[];
  /** Instances being deleted whose proxies still run: not to be forgotten yet. */
  holdForget: Set<string>;
}

const LIVE = new Set(["STAGING", "RUNNING", "KILLING"]);

/** The `match` group of an instance's proxies: at most one of them per agent. */
export function proxyGroup(instance: string): string {
  return `${instance}/proxies`;
}

/**
 * Plans the proxies of every instance. Per instance:
 *
 * * DELETING: kill every live proxy (resend after `killResendMs`) and hold
 *   the `forget` while any lives.
 * * `proxies` wanted (absent: 0; always 0 for RC): ids `x1`…`xN`; a missing one is added,
 *   one beyond N is killed, and dropped once its task is gone.
 * * LOST past its `retryAt` (or DONE: killed as surplus, wanted again):
 *   relaunch. PENDING: launchable, at most one
 *   proxy of the instance per agent, preferring its old agent and port.
 * * RUNNING: told the current master ({@linkcode proxyMaster}) when it was
 *   told another one, or not confirmed within `retellMs`. Nothing is told
 *   while the instance has no master: the proxy keeps its last one and its
 *   own ROLE checks.
 */
export function planProxies(input: ProxyPlanInput): ProxyPlan {
  const actions: ProxyAction[] = [];
  const launchable: PendingProcess[] = [];
  const holdForget = new Set<string>();
  const killResend = input.killResendMs ?? 10_000;
  const retell = input.retellMs ?? 5_000;
  const { now } = input;
  const instances = [...input.instances].sort((a, b) =>
    a.createdAt - b.createdAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
  for (const inst of instances) {
    const proxies = [...(input.proxies[inst.name] ?? [])].sort((a, b) =>
      proxyIndex(a.id) - proxyIndex(b.id) || (a.id < b.id ? -1 : 1)
    );
    const kill = (p: ProxyRecord) => {
      if (p.state === "KILLING" && now - (p.killSentAt ?? 0) < killResend) return;
      actions.push({
        type: "kill-proxy",
        instance: inst.name,
        proxyId: p.id,
        taskId: p.taskId,
        ...(p.agentId ? { agentId: p.agentId } : {}),
      });
    };
    if (inst.status === "DELETING" || inst.status === "DELETED") {
      for (const p of proxies) {
        if (!LIVE.has(p.state)) continue;
        holdForget.add(inst.name);
        kill(p);
      }
      continue;
    }
    // Redis Cluster instances get none (their clients follow the cluster).
    const wanted = inst.type === "RC" ? 0 : Math.max(0, Math.min(MAX_PROXIES, inst.proxies ?? 0));
    const have = new Set(proxies.map((p) => p.id));
    for (let i = 1; i <= wanted; i++) {
      if (!have.has(proxyIdOf(i))) {
        actions.push({ type: "add-proxy", instance: inst.name, proxyId: proxyIdOf(i) });
      }
    }
    const master = proxyMaster(inst, input.processes[inst.name] ?? [], input.stats);
    for (const p of proxies) {
      const index = proxyIndex(p.id);
      if (index === 0 || index > wanted) {
        if (LIVE.has(p.state)) kill(p);
        else actions.push({ type: "drop-proxy", instance: inst.name, proxyId: p.id });
        continue;
      }
      if ((p.state === "LOST" && now >= (p.retryAt ?? 0)) || p.state === "DONE") {
        actions.push({ type: "relaunch-proxy", instance: inst.name, proxyId: p.id });
      } else if (p.state === "PENDING") {
        launchable.push({
          instance: inst.name,
          procId: p.id,
          role: "proxy",
          capacityMB: 0,
          distribution: 1,
          instanceSize: wanted,
          countAs: proxyGroup(inst.name),
          cpus: PROXY_RESOURCES.cpus,
          memMB: PROXY_RESOURCES.memMB,
          ...(p.agentId && p.agentId !== p.avoidAgentId ? { preferredAgentId: p.agentId } : {}),
          ...(p.agentId && p.port && p.agentId !== p.avoidAgentId ? { preferredPort: p.port } : {}),
        });
      } else if (p.state === "KILLING") {
        kill(p);
      } else if (p.state === "RUNNING" && master !== null) {
        const told = input.told.get(p.taskId);
        const version = proxyMasterVersion(master);
        if (
          told === undefined || told.version !== version ||
          (!told.confirmed && now - told.sentAt >= retell)
        ) {
          actions.push({
            type: "tell-proxy",
            instance: inst.name,
            proxyId: p.id,
            taskId: p.taskId,
            master,
          });
        }
      }
    }
  }
  return { actions, launchable, holdForget };
}
