/**
 * The UPDATE planner: how an instance changes its number of slaves, its
 * capacity, its Distribution or its type (S ↔ MS) while it serves. Pure: the
 * instance record (with its `update`), its processes and the executor stats
 * in, the next steps out. The reconciler (`plan.ts`) calls it for every
 * instance with an update in progress; the driver (`core.ts`) performs the
 * actions. Everything it decides from is persisted, so a restarted scheduler
 * resumes a change where it stood.
 *
 * Mesos cannot grow a running task, and a master's `min-replicas-to-write`
 * is set when it starts, so a process whose capacity or kind (S or MS) is not
 * the target's is **stale** and is replaced, as is one in excess of the
 * target Distribution on its agent:
 *
 * 1. new slaves with the target's spec join (one at a time while stale
 *    slaves remain, so the instance holds at most one process more than the
 *    larger of its old and new size) and sync; a joining slave counts in the
 *    instance only once in sync;
 * 2. each time one is in sync, stale slaves go (the lowest offset first)
 *    while at least min(old slaves, new slaves) synced slaves remain — at
 *    least one while the master needs a replica to take writes — and only
 *    once the master counts every synced slave for `min-replicas-to-write`
 *    and streams to each (`streamingSlaves`);
 * 3. with only fresh slaves left, one more than the target count and all in
 *    sync, the master is fenced and killed; the usual failover
 *    (`choosePromotion`: the highest offset) promotes one of them — the one
 *    promotion of the change — and the others follow it;
 * 4. once every process is fresh and in sync, the change is done.
 *
 * Without stale processes only the count changes: the missing slaves are
 * added at once, the surplus ones (the lowest offsets, never the master)
 * removed at once.
 *
 * @module
 */
import type { InstanceRecord, InstanceShape, ProcessRecord } from "../model.ts";
import { compareProcIds } from "./promotion.ts";

/** The latest executor stats of one task, as far as the update needs them. */
export interface UpdateStats {
  role: "master" | "slave";
  inSync: boolean;
  replOffset: number;
  /** Master: the slaves it counts towards `min-replicas-to-write` (absent: unknown, enough). */
  goodSlaves?: number;
  /** Master: the slaves known to take its replication stream (absent: unknown, enough). */
  streamingSlaves?: number;
}

/** One step of an update for the driver. */
export type UpdateAction =
  /** Add a slave process `procId` (PENDING, joining) with the target's spec. */
  | { type: "add-slave"; instance: string; procId: string }
  /** Joining slave `procId` is in sync: it counts now; the instance has `slaves` slaves. */
  | { type: "joined"; instance: string; procId: string; slaves: number }
  /**
   * Remove process `procId`: kill it (fence it first when `master`); the
   * instance counts `slaves` slaves after it.
   */
  | { type: "retire"; instance: string; procId: string; master: boolean; slaves: number }
  /** A retired process's task has ended: delete its record (and its data dir). */
  | { type: "remove"; instance: string; procId: string }
  /** The change reached another step (shown in STATUS). */
  | { type: "update-phase"; instance: string; phase: string }
  /** Every process is fresh and in sync: the change is over. */
  | { type: "update-done"; instance: string };

const LIVE = new Set(["STAGING", "RUNNING", "KILLING"]);

/** The `maxmemory` (MB) process `p` runs with. */
export function capacityOf(p: ProcessRecord, inst: InstanceRecord): number {
  return p.capacityMB ?? inst.capacityMB;
}

/** The `min-replicas-to-write` process `p` was started with. */
export function minReplicasOf(p: ProcessRecord, inst: InstanceRecord): number {
  return p.minReplicas ?? (inst.type === "MS" ? 1 : 0);
}

/** `min-replicas-to-write` of a process of an instance with `slaves` slaves. */
export function minReplicasFor(slaves: number): number {
  return slaves > 0 ? 1 : 0;
}

/**
 * The spec of a process launched now: the target's during an update (a
 * relaunch mid-change comes back fresh), the instance's otherwise.
 */
export function launchSpecOf(
  inst: InstanceRecord,
): { capacityMB: number; minReplicasToWrite: number } {
  const shape = inst.update?.target ?? inst;
  return { capacityMB: shape.capacityMB, minReplicasToWrite: minReplicasFor(shape.slaves) };
}

/** Whether going from `from` to `to` replaces processes (capacity or S ↔ MS). */
export function replacesProcesses(from: InstanceShape, to: InstanceShape): boolean {
  return from.capacityMB !== to.capacityMB ||
    minReplicasFor(from.slaves) !== minReplicasFor(to.slaves);
}

/**
 * The processes in excess of `distribution` on their agent: slaves before
 * the master, the highest process ids first.
 */
export function overDistribution(
  procs: readonly ProcessRecord[],
  distribution: number,
  masterId: string | undefined,
): Set<string> {
  const byAgent = new Map<string, ProcessRecord[]>();
  for (const p of procs) {
    if (!p.agentId || !LIVE.has(p.state) || p.retiring) continue;
    byAgent.set(p.agentId, [...(byAgent.get(p.agentId) ?? []), p]);
  }
  const over = new Set<string>();
  for (const list of byAgent.values()) {
    if (list.length <= distribution) continue;
    const order = [...list].sort((a, b) =>
      Number(a.id === masterId) - Number(b.id === masterId) || compareProcIds(b.id, a.id)
    );
    for (const p of order.slice(0, list.length - distribution)) over.add(p.id);
  }
  return over;
}

/** The number in a process id (`p7` → 7), or 0. */
function procNumber(id: string): number {
  const m = /^p(\d+)$/.exec(id);
  return m ? Number(m[1]) : 0;
}

/** The next `count` unused process ids of an instance. */
export function nextProcIds(
  inst: InstanceRecord,
  procs: readonly ProcessRecord[],
  count: number,
): string[] {
  let n = Math.max(inst.lastProcId ?? 0, ...procs.map((p) => procNumber(p.id)));
  return Array.from({ length: count }, () => `p${++n}`);
}

/**
 * The next steps of the update of `inst` (none without one). `procs` are
 * the instance's processes, `stats` the executors' latest stats by task id.
 */
export function planUpdate(
  inst: InstanceRecord,
  procs: readonly ProcessRecord[],
  stats: ReadonlyMap<string, UpdateStats>,
): UpdateAction[] {
  const u = inst.update;
  if (!u || inst.status === "DELETING" || inst.status === "DELETED") return [];
  const name = inst.name;
  const actions: UpdateAction[] = [];
  const setPhase = (phase: string) => {
    if (phase !== u.phase) actions.push({ type: "update-phase", instance: name, phase });
  };
  // Retired processes whose task has ended are forgotten.
  for (const p of procs) {
    if (p.retiring && p.id !== inst.masterId && !LIVE.has(p.state)) {
      actions.push({ type: "remove", instance: name, procId: p.id });
    }
  }
  const lingering = procs.filter((p) => p.retiring && p.id !== inst.masterId && LIVE.has(p.state));
  const master = procs.find((p) => p.id === inst.masterId);
  if (
    !master || master.retiring || inst.promotingId !== undefined || master.state !== "RUNNING" ||
    !master.host || !master.port || stats.get(master.taskId)?.role !== "master"
  ) {
    // A failover (planned or not) runs, or the master is not back yet: wait.
    setPhase(master?.retiring ? "switching master" : "waiting for the master");
    return actions;
  }
  const masterAddr = `${master.host}:${master.port}`;
  const target = u.target;
  const targetMin = minReplicasFor(target.slaves);
  const isReady = (p: ProcessRecord) => {
    const st = stats.get(p.taskId);
    return p.state === "RUNNING" && st?.role === "slave" && st.inSync && p.replicaOf === masterAddr;
  };
  const offset = (p: ProcessRecord) => stats.get(p.taskId)?.replOffset ?? -1;
  const live = procs.filter((p) => !p.retiring);
  const over = overDistribution(live, target.distribution, master.id);
  const stale = (p: ProcessRecord) =>
    capacityOf(p, inst) !== target.capacityMB || minReplicasOf(p, inst) !== targetMin ||
    over.has(p.id);

  let slaves = inst.slaves;
  const others = live.filter((p) => p.id !== master.id);
  for (const p of others) {
    if (p.joining && isReady(p)) {
      slaves++;
      actions.push({ type: "joined", instance: name, procId: p.id, slaves });
    }
  }
  const joining = others.filter((p) => p.joining && !isReady(p));
  const counted = others.filter((p) => !joining.includes(p));
  const byOffset = (a: ProcessRecord, b: ProcessRecord) =>
    offset(a) - offset(b) || compareProcIds(b.id, a.id);
  const old = counted.filter(stale).sort(byOffset);
  const fresh = counted.filter((p) => !stale(p)).sort(byOffset);
  const masterStale = stale(master);
  const want = target.slaves + (masterStale ? 1 : 0);
  // Synced slaves kept at all times: the smaller of the old and new counts,
  // and one while the master needs a replica to take writes.
  const floor = Math.max(
    Math.min(target.slaves, u.from.slaves),
    minReplicasOf(master, inst) > 0 ? 1 : 0,
  );
  let ready = counted.filter(isReady).length;
  // A slave reports its link up a moment before its master counts it for
  // min-replicas-to-write (the master waits for the slave's first ACK: up to
  // ~80 ms measured), and up to a second before the master streams to it
  // (an ACK that comes before the master reaped its fork is not taken). A
  // synced slave goes only while the master counts every synced one and
  // streams to each: else the master would refuse writes (NOREPLICAS), or
  // the writes of that second would be on the retired slave only, lost if
  // the master failed then. Unknown counts: no wait.
  const masterStats = stats.get(master.taskId);
  let good = Math.min(
    minReplicasOf(master, inst) > 0 ? masterStats?.goodSlaves ?? Infinity : Infinity,
    masterStats?.streamingSlaves ?? Infinity,
  );
  let retired = 0;
  const canRetire = (p: ProcessRecord) => !isReady(p) || (ready - 1 >= floor && good >= ready);
  const retire = (list: ProcessRecord[], p: ProcessRecord) => {
    list.splice(list.indexOf(p), 1);
    if (isReady(p)) {
      ready--;
      good--;
    }
    slaves--;
    retired++;
    actions.push({ type: "retire", instance: name, procId: p.id, master: false, slaves });
  };
  // More slaves than wanted: stale ones first, then the lowest offsets.
  while (old.length + fresh.length + joining.length > want) {
    const pool = old.length > 0 ? old : fresh;
    const p = pool.find(canRetire);
    if (!p) break;
    retire(pool, p);
  }
  // A fresh slave in sync takes the place of a stale one.
  while (old.length > 0 && fresh.some(isReady)) {
    const p = old.find(canRetire);
    if (!p) break;
    retire(old, p);
  }
  // New slaves: at once, or one at a time while stale slaves remain.
  let toAdd = 0;
  if (fresh.length + joining.length < want) {
    if (old.length === 0) toAdd = want - fresh.length - joining.length;
    else if (joining.length === 0 && old.length + fresh.length <= want) toAdd = 1;
  }
  for (const procId of nextProcIds(inst, procs, toAdd)) {
    actions.push({ type: "add-slave", instance: name, procId });
  }
  const allFreshReady = old.length === 0 && joining.length === 0 && toAdd === 0 &&
    fresh.every(isReady) && lingering.length === 0 && retired === 0;
  if (allFreshReady && masterStale && fresh.length >= want) {
    // Only fresh slaves, in sync, one more than the target: switch the master.
    actions.push({
      type: "retire",
      instance: name,
      procId: master.id,
      master: true,
      slaves: slaves - 1,
    });
    setPhase("switching master");
    return actions;
  }
  const goodSlaves = stats.get(master.taskId)?.goodSlaves;
  const masterCounts = target.slaves === 0 || goodSlaves === undefined || goodSlaves >= 1;
  if (allFreshReady && !masterStale && fresh.length === target.slaves && masterCounts) {
    actions.push({ type: "update-done", instance: name });
    return actions;
  }
  const synced = fresh.filter(isReady).length;
  if (old.length > 0) {
    setPhase(`replacing slaves (${old.length} old left, ${synced} new in sync)`);
  } else if (toAdd > 0 || joining.length > 0) {
    setPhase(
      masterStale
        ? `adding slaves to replace the master (${synced} of ${want} in sync)`
        : `adding slaves (${synced} of ${want} in sync)`,
    );
  } else if (retired > 0 || lingering.length > 0) setPhase("removing slaves");
  else setPhase("finishing");
  return actions;
}
