/**
 * The STATUS JSON of an instance, with the original mr-redis field names.
 *
 * @module
 */
import type { InstanceRecord, InstanceShape, ProcessRecord, ProxyRecord } from "../model.ts";
import type { RedisStats } from "../executor_messages.ts";
import { compareProcIds } from "./promotion.ts";
import { processCount } from "../model.ts";
import { formatSlotRange, slotRanges } from "../redis/cluster.ts";
import { shardMastersOf } from "./cluster_plan.ts";

/** One redis process in STATUS (original fields first). */
export interface ProcessView {
  IP: string;
  /** The port, as a string (as the original). */
  Port: string;
  /** Capacity in MB. */
  MemoryCapacity: number;
  /** `used_memory` in bytes. */
  MemoryUsed: number;
  /** Seconds. */
  Uptime: number;
  ClientsConnected: number;
  /** Seconds since the last I/O with the master (0 for a master). */
  LastSyncedToMaster: number;
  /** Process id within the instance. */
  Id: string;
  /** Scheduler-side process state (`RUNNING`, `STAGING`, `LOST`, ...). */
  State: string;
  /** Whether the slave is in sync with its master (from the executor's stats). */
  InSync: boolean;
  /** RC: the cluster node id, once reported. */
  NodeId?: string;
}

/** One shard of an RC instance in STATUS. */
export interface ShardView {
  /** Its slots, e.g. `"0-5460"`. */
  Slots: string;
  /** Its master, or `null` while it has none (its slots are then unavailable). */
  Master: ProcessView | null;
  Slaves: ProcessView[];
}

/** One running proxy endpoint in STATUS: where clients connect to reach the master. */
export interface ProxyView {
  IP: string;
  /** The port, as a string (like the processes' `Port`). */
  Port: string;
  /** The proxy id within the instance (`x1`, `x2`, ...). */
  Id: string;
}

/** One instance in STATUS. */
export interface InstanceView {
  Name: string;
  Type: string;
  Status: string;
  /** MB. */
  Capacity: number;
  Master: ProcessView | null;
  Slaves: ProcessView[];
  /** Why the instance is not RUNNING, or `null`. */
  Reason: string | null;
  Distribution: number;
  Masters: number;
  SlavesWanted: number;
  ProcessesRunning: number;
  ProcessesTotal: number;
  /** Failover epoch: how many times the master has changed. */
  Epoch: number;
  /** The last notable event (a promotion, a data loss), or `null`. */
  LastEvent: string | null;
  /** RC only: every shard; `Master` and `Slaves` above are the first shard's. */
  Shards?: ShardView[];
  /** The proxy endpoints whose task runs, by id; `[]` when none. */
  Proxies: ProxyView[];
  /** Proxy endpoints asked for (`Proxies` lists those running now). */
  ProxiesWanted: number;
  /** The change (UPDATE) in progress, or `null`. */
  Update: UpdateView | null;
}

/** The sizes of an instance in an {@linkcode UpdateView}. */
export interface ShapeView {
  /** MB. */
  Capacity: number;
  Slaves: number;
  Distribution: number;
}

/** An UPDATE in progress, in STATUS. */
export interface UpdateView {
  /** What the instance becomes. */
  Target: ShapeView;
  /** What it was when the change began. */
  From: ShapeView;
  /** The step it is at, in words. */
  Phase: string;
  /** When it began (ISO 8601). */
  Started: string;
  /** Why a process of the change waits for an offer, or `null`. */
  Waiting: string | null;
}

function shapeView(s: InstanceShape): ShapeView {
  return { Capacity: s.capacityMB, Slaves: s.slaves, Distribution: s.distribution };
}

function processView(
  inst: InstanceRecord,
  p: ProcessRecord,
  stats: RedisStats | undefined,
): ProcessView {
  return {
    IP: p.host ?? "",
    Port: String(p.port ?? ""),
    MemoryCapacity: p.capacityMB ?? inst.capacityMB,
    MemoryUsed: stats?.memoryUsed ?? 0,
    Uptime: stats?.uptime ?? 0,
    ClientsConnected: stats?.clients ?? 0,
    LastSyncedToMaster: stats?.lastIoSeconds ?? 0,
    Id: p.id,
    State: p.state,
    InSync: stats?.role === "master" ? true : stats?.inSync ?? false,
    ...(p.nodeId ? { NodeId: p.nodeId } : {}),
  };
}

/**
 * Renders an instance. `stats` maps task ids to the executor's latest stats;
 * `placementReason`, when given, explains why processes wait for offers.
 */
export function instanceView(
  inst: InstanceRecord,
  procs: readonly ProcessRecord[],
  stats: ReadonlyMap<string, RedisStats>,
  placementReason?: string,
  proxies: readonly ProxyRecord[] = [],
): InstanceView {
  const sorted = [...procs].sort((a, b) => compareProcIds(a.id, b.id));
  const shards = inst.type === "RC" ? shardViews(inst, sorted, stats) : undefined;
  const master = shownMaster(inst, inst.masterId, sorted, stats);
  const slaves = sorted.filter((p) => p.id !== inst.masterId && p.host && p.port);
  const running = sorted.filter((p) => p.state === "RUNNING").length;
  const waiting = sorted.some((p) => p.state === "PENDING");
  const reason = inst.status === "RUNNING"
    ? null
    : (waiting && placementReason) || inst.reason || null;
  return {
    Name: inst.name,
    Type: inst.type,
    Status: inst.status,
    Capacity: inst.capacityMB,
    Master: shards
      ? shards[0]?.Master ?? null
      : master
      ? processView(inst, master, stats.get(master.taskId))
      : null,
    Slaves: shards
      ? shards[0]?.Slaves ?? []
      : slaves.map((s) => processView(inst, s, stats.get(s.taskId))),
    Reason: reason,
    Distribution: inst.distribution,
    Masters: inst.masters,
    SlavesWanted: inst.slaves,
    ProcessesRunning: running,
    ProcessesTotal: processCount(inst),
    Epoch: inst.epoch ?? 0,
    LastEvent: inst.lastEvent ?? null,
    ...(shards ? { Shards: shards } : {}),
    Update: inst.update
      ? {
        Target: shapeView(inst.update.target),
        From: shapeView(inst.update.from),
        Phase: inst.update.phase,
        Started: new Date(inst.update.startedAt).toISOString(),
        Waiting: (waiting && placementReason) || null,
      }
      : null,
    Proxies: proxies
      .filter((p) => p.state === "RUNNING" && p.host && p.port)
      .sort((a, b) => compareProcIds(a.id, b.id))
      .map((p) => ({ IP: p.host!, Port: String(p.port), Id: p.id })),
    ProxiesWanted: inst.proxies ?? 0,
  };
}

/**
 * The process STATUS shows as the master `id` (an instance's, or an RC
 * shard's): placed (host and port known), and — while it is being promoted —
 * only once it is writable (its stats say master), not before.
 */
function shownMaster(
  inst: InstanceRecord,
  id: string | undefined,
  procs: readonly ProcessRecord[],
  stats: ReadonlyMap<string, RedisStats>,
): ProcessRecord | undefined {
  if (id === undefined) return undefined;
  const m = procs.find((p) => p.id === id);
  if (!m?.host || !m.port) return undefined;
  if (inst.promotingId === m.id && stats.get(m.taskId)?.role !== "master") return undefined;
  return m;
}

/** What a STATUS long poll waits on: the fields of {@linkcode InstanceView} it compares. */
export interface StatusHead {
  Status: string;
  Master: { IP: string; Port: string } | null;
  Epoch: number;
}

/**
 * `Status`, `Master` (address only) and `Epoch` of {@linkcode instanceView}
 * without rendering the rest: what a long poll checks on every turn.
 */
export function statusHead(
  inst: InstanceRecord,
  procs: readonly ProcessRecord[],
  stats: ReadonlyMap<string, RedisStats>,
): StatusHead {
  const id = inst.type === "RC" ? shardMastersOf(inst)[0] : inst.masterId;
  const m = shownMaster(inst, id, procs, stats);
  return {
    Status: inst.status,
    Master: m ? { IP: m.host ?? "", Port: String(m.port ?? "") } : null,
    Epoch: inst.epoch ?? 0,
  };
}

/** The shards of an RC instance: slots, master (once it serves as one), replicas placed. */
function shardViews(
  inst: InstanceRecord,
  sorted: readonly ProcessRecord[],
  stats: ReadonlyMap<string, RedisStats>,
): ShardView[] {
  const masters = shardMastersOf(inst);
  return slotRanges(inst.masters).map((range, k) => {
    const shown = shownMaster(inst, masters[k], sorted, stats);
    return {
      Slots: formatSlotRange(range),
      Master: shown ? processView(inst, shown, stats.get(shown.taskId)) : null,
      Slaves: sorted.filter((p) => (p.shard ?? 0) === k && p.id !== masters[k] && p.host && p.port)
        .map((p) => processView(inst, p, stats.get(p.taskId))),
    };
  });
}

/** STATUS of an instance from a view the scheduler could not confirm against the store. */
export interface StaleInstanceView extends InstanceView {
  /** Always `true`: this view may be out of date. */
  Stale: true;
  /** Whole seconds since the view was last known to be up to date. */
  StaleSeconds: number;
}

/** Marks `view` as stale, `ageMs` old (see {@linkcode StaleInstanceView}). */
export function markStale(view: InstanceView, ageMs: number): StaleInstanceView {
  return { ...view, Stale: true, StaleSeconds: Math.max(0, Math.floor(ageMs / 1000)) };
}
