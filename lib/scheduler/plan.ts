/**
 * The reconciler: a pure function from what is wanted (instance records) and
 * what is known (process records, executor stats, commands in flight, the
 * time) to the actions that bring them together. No I/O.
 *
 * @module
 */
import type { InstanceRecord, InstanceStatus, ProcessRecord } from "../model.ts";
import type { PendingProcess } from "./match.ts";
import { choosePromotion, compareProcIds } from "./promotion.ts";
import type { ClusterNodeStats, ClusterOp } from "../redis/cluster.ts";
import { planCluster } from "./cluster_plan.ts";
import { launchSpecOf, planUpdate, type UpdateAction } from "./update_plan.ts";

/** The latest executor stats of one task, as far as planning needs them. */
export interface ObservedStats {
  role: "master" | "slave";
  inSync: boolean;
  replOffset: number;
  /**
   * Master: the slaves it counts towards `min-replicas-to-write`. Unknown
   * (absent) counts as enough, for executors that do not report it.
   */
  goodSlaves?: number;
  /** A cluster node's view of the cluster. */
  cluster?: ClusterNodeStats;
}

/** The answers to a `query-offsets` action, as far as planning needs them. */
export interface OffsetQueryView {
  /** Every slave asked has answered, or the deadline has passed. */
  done: boolean;
  /** Process id → the replication offset it answered. */
  offsets: Readonly<Record<string, number>>;
  /** Processes whose executor answered with an error (not running there): not candidates. */
  failed?: readonly string[];
}

/** Everything {@linkcode plan} looks at. */
export interface PlanInput {
  instances: readonly InstanceRecord[];
  /** Instance name → its processes. */
  processes: Readonly<Record<string, readonly ProcessRecord[]>>;
  /** Task id → latest stats. */
  stats: ReadonlyMap<string, ObservedStats>;
  /** Task ids with a command (promote, replicaof, fence) awaiting its result. */
  inflight: ReadonlySet<string>;
  /** Milliseconds since the epoch. */
  now: number;
  /** Resend a KILL unanswered for this long (ms). Default 10 s. */
  killResendMs?: number;
  /**
   * Instance name → the offset query of its failover. When this map is given,
   * a lost master's slaves are first asked for their current offsets
   * (`query-offsets`) and the promotion waits for the answers (or the
   * deadline); without it the last reported offsets decide at once.
   */
  offsetQueries?: ReadonlyMap<string, OffsetQueryView>;
  /**
   * Task ids Mesos was asked about after a (re-)subscription and has not
   * answered yet: their state is unconfirmed, so a lost master whose slaves
   * are unconfirmed waits for the answers instead of being failed over
   * (after a restart of the local cluster every task is gone at once, and
   * the master must then restart in place with its data, not a slave be
   * promoted).
   */
  unconfirmed?: ReadonlySet<string>;
}

/** One thing the driver must do. */
export type Action =
  /** Kill a launched task (mark the process KILLING). */
  | { type: "kill"; instance: string; procId: string; taskId: string; agentId?: string }
  /** Every task of a DELETING instance is gone: remove its keys and forget it. */
  | { type: "forget"; instance: string }
  /** A LOST process's backoff has passed: make it PENDING again. */
  | { type: "relaunch"; instance: string; procId: string }
  /** Ask the healthy slaves `procIds` of a master-less instance for their current offsets. */
  | { type: "query-offsets"; instance: string; procIds: string[] }
  /** Make `procId` the master (REPLICAOF NO ONE); `oldMasterId` was the lost master, if any. */
  | { type: "promote"; instance: string; procId: string; oldMasterId?: string }
  /** The promoted process reports itself master: the failover is over. */
  | { type: "promoted"; instance: string; procId: string }
  /**
   * The process being promoted was lost before it reported itself master,
   * and no slave is left: `procId`, the master it was replacing, is the
   * master again (its data dir holds the data; the other's AOF may be
   * unfinished, and it would start empty).
   */
  | { type: "unpromote"; instance: string; procId: string; lostId: string }
  /** Fence a master that may still be alive (possible second master). */
  | { type: "fence"; instance: string; procId: string }
  /** Point a slave at the current master. */
  | { type: "replicaof"; instance: string; procId: string; host: string; port: number }
  /** RC: run CLUSTER changes on the node `procId`. */
  | { type: "cluster"; instance: string; procId: string; ops: ClusterOp[] }
  /** RC: make replica `procId` the master of `shard` in place of the lost `oldMasterId`. */
  | { type: "shard-failover"; instance: string; shard: number; procId: string; oldMasterId: string }
  /** RC: `procId` reports node id `nodeId` (a different earlier one becomes a ghost). */
  | { type: "node-id"; instance: string; procId: string; nodeId: string }
  /** RC: the node ids still to forget. */
  | { type: "ghosts"; instance: string; ghosts: string[] }
  /** Record a new status/reason. */
  | { type: "status"; instance: string; status: InstanceStatus; reason?: string }
  /** A step of an UPDATE in progress (see `update_plan.ts`). */
  | UpdateAction;

/** What {@linkcode plan} returns. */
export interface Plan {
  actions: Action[];
  /** Processes that may be launched as soon as an offer fits. */
  launchable: PendingProcess[];
}

const LIVE = new Set(["STAGING", "RUNNING", "KILLING"]);
/** Last states after which the task may still be running somewhere. */
const MAYBE_ALIVE = new Set(["TASK_UNREACHABLE", "TASK_UNKNOWN", "TASK_LOST"]);

/** Whether the task of `p` may still run (launched and not known terminal). */
export function isLive(p: Pick<ProcessRecord, "state">): boolean {
  return LIVE.has(p.state);
}

/** `host:port` of a process, once launched. */
export function addressOf(p: ProcessRecord | undefined): string | undefined {
  return p?.host && p.port ? `${p.host}:${p.port}` : undefined;
}

/**
 * Computes the actions for every instance. Rules, per instance:
 *
 * * DELETING: kill every launched task (resend after `killResendMs`);
 *   `forget` once none is live.
 * * MS whose master is LOST: promote the healthy slave with the highest
 *   offset (see `choosePromotion`), fencing the old master first when it may
 *   still run; with no candidate the master is relaunched.
 * * LOST processes past their `retryAt`: relaunch.
 * * PENDING processes are launchable; a slave once its master runs or is
 *   launched as the master of the current epoch (`master` gives its
 *   address), or together with its PENDING master (`masterProcId`: placed
 *   in the same round, after it).
 * * RUNNING or STAGING slaves not pointing at the running master: `replicaof`,
 *   once no promotion is under way (the promoted process reports itself
 *   master).
 * * Status: RUNNING when every wanted process runs and every slave is in
 *   sync with the master; otherwise CREATING until first RUNNING, then
 *   FAILING_OVER during a promotion, else DEGRADED.
 */
export function plan(input: PlanInput): Plan {
  const actions: Action[] = [];
  const launchable: PendingProcess[] = [];
  const killResend = input.killResendMs ?? 10_000;
  const instances = [...input.instances].sort((a, b) =>
    a.createdAt - b.createdAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
  for (const inst of instances) {
    const procs = [...(input.processes[inst.name] ?? [])].sort((a, b) =>
      compareProcIds(a.id, b.id)
    );
    if (inst.status === "DELETING" || inst.status === "DELETED") {
      planDelete(inst, procs, input.now, killResend, actions);
      continue;
    }
    if (inst.type === "RC") planCluster(inst, procs, input, killResend, actions, launchable);
    else {
      planInstance(inst, procs, input, killResend, actions, launchable);
      actions.push(...planUpdate(inst, procs, input.stats));
    }
  }
  return { actions, launchable };
}

function planDelete(
  inst: InstanceRecord,
  procs: ProcessRecord[],
  now: number,
  killResend: number,
  actions: Action[],
): void {
  let live = 0;
  for (const p of procs) {
    if (!isLive(p)) continue;
    live++;
    if (p.state !== "KILLING" || now - (p.killSentAt ?? 0) >= killResend) {
      actions.push(killAction(inst, p));
    }
  }
  if (live === 0) actions.push({ type: "forget", instance: inst.name });
}

function killAction(inst: InstanceRecord, p: ProcessRecord): Action {
  return {
    type: "kill",
    instance: inst.name,
    procId: p.id,
    taskId: p.taskId,
    ...(p.agentId ? { agentId: p.agentId } : {}),
  };
}

function planInstance(
  inst: InstanceRecord,
  procs: ProcessRecord[],
  input: PlanInput,
  killResend: number,
  actions: Action[],
  launchable: PendingProcess[],
): void {
  const { stats, inflight, now } = input;
  let master = procs.find((p) => p.id === inst.masterId);
  const slaves = () => procs.filter((p) => p.id !== master?.id);
  let promoting = inst.promotingId;
  const skipRelaunch = new Set<string>();

  // Failover: the master of an MS instance is lost.
  let waiting: string | undefined;
  // A master an UPDATE retires is replaced by a slave whatever the type.
  const failsOver = inst.type === "MS" || master?.retiring === true;
  const unsure = failsOver && master?.state === "LOST"
    ? slaves().filter((s) => isLive(s) && input.unconfirmed?.has(s.taskId)).map((s) => s.id)
    : [];
  if (master && unsure.length > 0) {
    skipRelaunch.add(master.id);
    waiting = `Master ${master.id} lost: waiting for Mesos to confirm the state of ${
      unsure.join(", ")
    }`;
  } else if (failsOver && master && master.state === "LOST") {
    const lostId = master.id;
    const healthy = slaves().filter((s) => s.state === "RUNNING" && !inflight.has(s.taskId));
    const query = input.offsetQueries?.get(inst.name);
    if (input.offsetQueries && healthy.length > 0 && !query?.done) {
      if (!query) {
        actions.push({
          type: "query-offsets",
          instance: inst.name,
          procIds: healthy.map((s) => s.id),
        });
      }
      skipRelaunch.add(lostId);
      waiting = `Master ${lostId} lost: asking ${healthy.length} slave${
        healthy.length === 1 ? "" : "s"
      } for their replication offsets`;
    } else {
      const choice = choosePromotion(
        slaves().map((s) => {
          const offset = query?.offsets[s.id] ?? stats.get(s.taskId)?.replOffset;
          return {
            procId: s.id,
            healthy: s.state === "RUNNING" && !inflight.has(s.taskId) &&
              !query?.failed?.includes(s.id),
            ...(offset !== undefined ? { replOffset: offset } : {}),
          };
        }),
        { allowUnknownOffset: query?.done === true },
      );
      const from = procs.find((p) => p.id === inst.promotedFrom);
      if (
        choice === undefined && promoting === master.id && from !== undefined &&
        from.id !== master.id && !from.retiring &&
        (from.state === "LOST" || from.state === "PENDING") &&
        // Its process ended on a live agent (not one out of touch or gone): its data dir is there.
        from.lastState !== undefined && !MAYBE_ALIVE.has(from.lastState) &&
        from.lastState !== "TASK_GONE_BY_OPERATOR"
      ) {
        // Both lost mid-promotion: the one that was master keeps the data.
        actions.push({ type: "unpromote", instance: inst.name, procId: from.id, lostId: lostId });
        skipRelaunch.add(lostId);
        waiting =
          `Master ${lostId} lost while being promoted: ${from.id}, the master before it, is master again`;
      } else if (choice !== undefined) {
        if (master.lastState && MAYBE_ALIVE.has(master.lastState)) {
          actions.push({ type: "fence", instance: inst.name, procId: lostId });
        }
        actions.push({
          type: "promote",
          instance: inst.name,
          procId: choice,
          oldMasterId: lostId,
        });
        skipRelaunch.add(lostId);
        master = procs.find((p) => p.id === choice);
        promoting = choice;
      }
    }
  } else if (master && master.state === "RUNNING") {
    const role = stats.get(master.taskId)?.role;
    if (promoting === master.id && role === "master") {
      actions.push({ type: "promoted", instance: inst.name, procId: master.id });
      promoting = undefined;
    } else if (
      !inflight.has(master.taskId) &&
      (role === "slave" || (promoting === master.id && role === undefined))
    ) {
      actions.push({ type: "promote", instance: inst.name, procId: master.id });
    }
  }

  const masterAddr = master?.state === "RUNNING" ? addressOf(master) : undefined;
  const masterHost = master?.host;
  const masterPort = master?.port;
  // Where new slaves may point: a master that runs, or one launched as the
  // master of the current epoch (its address is fixed once placed). Never a
  // LOST one. A PENDING master is placed first in the same offer round.
  const launchMaster = master?.host && master.port &&
      (master.state === "RUNNING" ||
        (master.state === "STAGING" && master.role === "master" &&
          (master.launchEpoch ?? 0) === (inst.epoch ?? 0)))
    ? { host: master.host, port: master.port }
    : undefined;
  const masterPending = master?.state === "PENDING";

  for (const p of procs) {
    if (p.retiring) {
      // Being removed by an UPDATE: never relaunched, placed or re-pointed.
      if (p.state === "KILLING" && now - (p.killSentAt ?? 0) >= killResend) {
        actions.push(killAction(inst, p));
      }
    } else if (p.state === "LOST" && !skipRelaunch.has(p.id) && now >= (p.retryAt ?? 0)) {
      actions.push({ type: "relaunch", instance: inst.name, procId: p.id });
    } else if (p.state === "PENDING") {
      const isMaster = p.id === master?.id;
      if (isMaster || launchMaster !== undefined || masterPending) {
        launchable.push({
          instance: inst.name,
          procId: p.id,
          role: isMaster ? "master" : "slave",
          capacityMB: launchSpecOf(inst).capacityMB,
          distribution: inst.distribution,
          instanceSize: inst.masters + inst.slaves,
          ...(p.agentId ? { preferredAgentId: p.agentId } : {}),
          ...(p.agentId && p.port ? { preferredPort: p.port } : {}),
          ...(isMaster && p.agentId && now < (p.pinAgentUntil ?? 0)
            ? { requiredAgentId: p.agentId }
            : {}),
          ...(!isMaster && launchMaster !== undefined ? { master: launchMaster } : {}),
          ...(!isMaster && launchMaster === undefined ? { masterProcId: master!.id } : {}),
        });
      }
    } else if (p.state === "KILLING" && now - (p.killSentAt ?? 0) >= killResend) {
      actions.push(killAction(inst, p));
    } else if (
      (p.state === "RUNNING" || p.state === "STAGING") && p.id !== master?.id &&
      masterAddr !== undefined && masterHost !== undefined && masterPort !== undefined &&
      // Not before the promotion is done: REPLICAOF NO ONE drops the replicas
      // a replica has, and one dropped reconnects only at redis's next
      // once-a-second replication cron, while the new master refuses writes
      // (NOREPLICAS) for want of it. Re-pointed after, it attaches at once.
      promoting === undefined &&
      !inflight.has(p.taskId) &&
      (p.replicaOf !== masterAddr ||
        (p.state === "RUNNING" && stats.get(p.taskId)?.role === "master"))
    ) {
      // A STAGING slave launched towards a master that is gone since is
      // re-pointed too: it would otherwise wait for its sync forever.
      actions.push({
        type: "replicaof",
        instance: inst.name,
        procId: p.id,
        host: masterHost,
        port: masterPort,
      });
    }
  }

  const { status, reason } = waiting !== undefined
    ? { status: "FAILING_OVER" as const, reason: waiting }
    : instanceStatus(inst, procs, master, promoting, stats);
  if (status !== inst.status || reason !== inst.reason) {
    actions.push({
      type: "status",
      instance: inst.name,
      status,
      ...(reason !== undefined ? { reason } : {}),
    });
  }
}

function instanceStatus(
  inst: InstanceRecord,
  procs: ProcessRecord[],
  master: ProcessRecord | undefined,
  promoting: string | undefined,
  stats: ReadonlyMap<string, ObservedStats>,
): { status: InstanceStatus; reason?: string } {
  const wanted = inst.masters + inst.slaves;
  const masterAddr = master?.state === "RUNNING" ? addressOf(master) : undefined;
  // Processes an UPDATE adds count once in sync, those it removes no longer.
  procs = procs.filter((p) => !p.retiring && !p.joining);
  const slaves = procs.filter((p) => p.id !== master?.id);
  const running = procs.filter((p) => p.state === "RUNNING").length;
  const outOfSync = slaves.filter((s) => {
    const st = stats.get(s.taskId);
    return s.state !== "RUNNING" || !st || !st.inSync || st.role !== "slave" ||
      s.replicaOf !== masterAddr;
  });
  const masterStats = masterAddr !== undefined ? stats.get(master!.taskId) : undefined;
  // The slaves' side of the link (master_link_status:up) can be up a moment
  // before the master counts them for min-replicas-to-write: RUNNING waits for
  // the master's own count too, so a write right after RUNNING is not refused
  // with NOREPLICAS.
  const masterCounts = inst.slaves === 0 || masterStats?.goodSlaves === undefined ||
    masterStats.goodSlaves >= 1;
  const masterOk = masterAddr !== undefined && masterStats?.role !== "slave";
  // Stats not heard of yet (just after a restart) keep a RUNNING instance RUNNING.
  const unknownOnly = inst.status === "RUNNING" &&
    outOfSync.every((s) =>
      s.state === "RUNNING" && !stats.has(s.taskId) && s.replicaOf === masterAddr
    );
  if (
    procs.length === wanted && running === wanted && masterOk && masterCounts &&
    (outOfSync.length === 0 || unknownOnly) && promoting === undefined
  ) {
    return { status: "RUNNING" };
  }
  const status: InstanceStatus = inst.status === "CREATING"
    ? "CREATING"
    : promoting !== undefined
    ? "FAILING_OVER"
    : "DEGRADED";
  const lost = procs.find((p) => p.state === "LOST" && p.reason);
  const masterGone = master !== undefined && inst.status !== "CREATING" &&
    (master.state === "LOST" || master.state === "PENDING") && inst.type === "MS" &&
    promoting === undefined && !slaves.some((s) => s.state === "RUNNING");
  const pending = procs.filter((p) => p.state === "PENDING").length;
  const staging = procs.filter((p) => p.state === "STAGING").length;
  let reason: string;
  if (masterGone) {
    reason = `Master ${master!.id} lost with no slave to promote: relaunching it${
      master!.state === "LOST" && master!.reason ? ` (${master!.reason})` : ""
    }; its data survives only if it restarts in place`;
  } else if (lost) reason = `Process ${lost.id}: ${lost.reason}`;
  else if (promoting !== undefined) reason = `Promoting ${promoting} to master`;
  else if (pending > 0) reason = `Waiting for ${pending} of ${wanted} processes to be placed`;
  else if (staging > 0) reason = `Waiting for ${staging} of ${wanted} processes to start`;
  else if (!masterOk) reason = "Waiting for the master";
  else if (outOfSync.length === 0 && !masterCounts) {
    reason = "Waiting for the master to count its slaves for min-replicas-to-write";
  } else {reason =
      `Waiting for ${outOfSync.length} of ${slaves.length} slaves to sync with the master`;}
  return { status, reason };
}
