/**
 * The reconciler of Redis Cluster (`RC`) instances: a pure function, called
 * by `plan` for each RC instance, from its records, the executors' stats
 * (each node's view of the cluster) and the commands in flight to actions.
 *
 * An RC instance has `masters` shards; shard k has the slots
 * `slotRanges(masters)[k]`, a master (`shardMasters[k]`) and `slaves`
 * replicas. Every process is a cluster node started on its own (no
 * `replicaof`); the scheduler forms the cluster through the executors:
 *
 * 1. meet: one node (the anchor) is told to `CLUSTER MEET` every node it
 *    does not know yet; gossip does the rest;
 * 2. slots: a shard master that serves nothing, once the anchor sees the
 *    shard's slots free, is given them (`ADDSLOTSRANGE`);
 * 3. replicas: each replica that knows its shard's master and follows
 *    another node (or none) is told `CLUSTER REPLICATE` its id;
 * 4. forget: node ids gone for good (`ghosts`, and any failed node that is
 *    no process's) are forgotten on every node that still lists them.
 *
 * Failure: a shard master LOST is replaced by the shard's healthy replica
 * with the highest offset (`shard-failover`: the epoch is bumped and the
 * replica runs `CLUSTER FAILOVER TAKEOVER`); the lost process relaunches as
 * a fresh replica (new node id; the old id becomes a ghost). A shard with
 * no replica left restarts its master in place with its data (same node
 * id, same slots).
 *
 * @module
 */
import type { InstanceRecord, InstanceStatus, ProcessRecord } from "../model.ts";
import { processCount } from "../model.ts";
import { type ClusterOp, formatSlotRange, slotRanges } from "../redis/cluster.ts";
import type { PendingProcess } from "./match.ts";
import type { Action, PlanInput } from "./plan.ts";
import { isLive } from "./plan.ts";
import { choosePromotion } from "./promotion.ts";

/** Last states after which the task may still be running somewhere. */
const MAYBE_ALIVE = new Set(["TASK_UNREACHABLE", "TASK_UNKNOWN", "TASK_LOST"]);

/** The shard of process number `n` (1-based) of an RC with `masters` shards. */
export function shardOfProcess(n: number, masters: number): number {
  return n <= masters ? n - 1 : (n - masters - 1) % masters;
}

/** The shard masters of `inst` (stored, else the first `masters` processes). */
export function shardMastersOf(inst: InstanceRecord): string[] {
  return inst.shardMasters ?? Array.from({ length: inst.masters }, (_, k) => `p${k + 1}`);
}

/** The group key of a shard (its processes go to different agents when possible). */
export function shardGroup(instance: string, shard: number): string {
  return `${instance}/shard${shard}`;
}

/**
 * Plans one RC instance (not DELETING): see the module doc. Appends to
 * `actions` and `launchable`.
 */
export function planCluster(
  inst: InstanceRecord,
  procs: readonly ProcessRecord[],
  input: PlanInput,
  killResend: number,
  actions: Action[],
  launchable: PendingProcess[],
): void {
  const { stats, inflight, now } = input;
  const name = inst.name;
  const masters = [...shardMastersOf(inst)];
  const ranges = slotRanges(inst.masters);
  const byId = new Map(procs.map((p) => [p.id, p]));
  const shardOf = (p: ProcessRecord) => p.shard ?? 0;
  const cluster = (p: ProcessRecord | undefined) =>
    p && p.state === "RUNNING" ? stats.get(p.taskId)?.cluster : undefined;
  const busy = (p: ProcessRecord) => inflight.has(p.taskId);
  let promoting = inst.promotingId;
  const skipRelaunch = new Set<string>();
  let waiting: string | undefined;

  // Node ids as reported: a changed id makes the old one a ghost (driver).
  for (const p of procs) {
    const c = cluster(p);
    if (c && c.nodeId !== p.nodeId) {
      actions.push({ type: "node-id", instance: name, procId: p.id, nodeId: c.nodeId });
    }
  }
  const nodeIdOf = (p: ProcessRecord | undefined) => cluster(p)?.nodeId ?? p?.nodeId;

  // Failover of each shard whose master is lost. A candidate follows the
  // lost master in the cluster (it holds its data).
  const candidatesOf = (m: ProcessRecord) =>
    procs.filter((s) => {
      const st = stats.get(s.taskId);
      return shardOf(s) === shardOf(m) && s.id !== m.id && s.state === "RUNNING" && !busy(s) &&
        st?.role === "slave" && st.cluster !== undefined && st.cluster.masterNodeId === m.nodeId;
    });
  // With a choice to make, the candidates are first asked for their offsets
  // now (the stats are up to a second old): every write a `WAIT` acknowledged
  // is on the one chosen.
  const query = input.offsetQueries?.get(name);
  const lostMasters = masters.map((id) => byId.get(id)).filter((m) => m?.state === "LOST");
  const toAsk = lostMasters.some((m) => candidatesOf(m!).length > 1)
    ? lostMasters.flatMap((m) => candidatesOf(m!).map((s) => s.id))
    : [];
  const asking = input.offsetQueries !== undefined && toAsk.length > 0 && !query?.done;
  if (asking && !query) actions.push({ type: "query-offsets", instance: name, procIds: toAsk });
  for (let k = 0; k < masters.length; k++) {
    const m = byId.get(masters[k]!);
    if (!m || m.state !== "LOST") continue;
    const replicas = procs.filter((p) => shardOf(p) === k && p.id !== m.id);
    const unsure = replicas.filter((s) => isLive(s) && input.unconfirmed?.has(s.taskId));
    if (unsure.length > 0) {
      skipRelaunch.add(m.id);
      waiting ??= `Master ${m.id} of shard ${k} lost: waiting for Mesos to confirm the state of ${
        unsure.map((s) => s.id).join(", ")
      }`;
      continue;
    }
    const candidates = new Set(candidatesOf(m).map((s) => s.id));
    if (asking && candidates.size > 0) {
      skipRelaunch.add(m.id);
      waiting ??=
        `Master ${m.id} of shard ${k} lost: asking ${candidates.size} replicas for their replication offsets`;
      continue;
    }
    const choice = choosePromotion(
      replicas.map((s) => {
        const offset = query?.offsets[s.id] ?? stats.get(s.taskId)?.replOffset;
        return {
          procId: s.id,
          healthy: candidates.has(s.id) && !query?.failed?.includes(s.id),
          ...(offset !== undefined ? { replOffset: offset } : {}),
        };
      }),
    );
    if (choice === undefined) continue; // restarts in place (relaunch below)
    if (m.lastState && MAYBE_ALIVE.has(m.lastState)) {
      actions.push({ type: "fence", instance: name, procId: m.id });
    }
    actions.push({
      type: "shard-failover",
      instance: name,
      shard: k,
      procId: choice,
      oldMasterId: m.id,
    });
    skipRelaunch.add(m.id);
    masters[k] = choice;
    promoting = choice;
  }

  // A promoted replica reports itself master: the failover is over.
  if (promoting !== undefined && promoting === inst.promotingId) {
    const p = byId.get(promoting);
    const st = p ? stats.get(p.taskId) : undefined;
    if (p?.state === "RUNNING" && st?.role === "master" && !st.cluster?.masterNodeId) {
      actions.push({ type: "promoted", instance: name, procId: promoting });
      promoting = undefined;
    } else if (p && p.state !== "RUNNING") {
      // The replica being promoted is gone too: its shard fails over again.
      promoting = undefined;
    }
  }

  // Launches, relaunches, kills resent.
  for (const p of procs) {
    const k = shardOf(p);
    const isMaster = masters[k] === p.id;
    if (p.state === "LOST" && !skipRelaunch.has(p.id) && now >= (p.retryAt ?? 0)) {
      actions.push({ type: "relaunch", instance: name, procId: p.id });
    } else if (p.state === "PENDING") {
      launchable.push({
        instance: name,
        procId: p.id,
        role: isMaster ? "master" : "slave",
        capacityMB: inst.capacityMB,
        distribution: inst.distribution,
        instanceSize: processCount(inst),
        group: shardGroup(name, k),
        needsBusPort: true,
        // A master restarts where its data is (its node id and slots with it).
        ...(isMaster && p.agentId ? { preferredAgentId: p.agentId } : {}),
        ...(isMaster && p.agentId && p.port ? { preferredPort: p.port } : {}),
        ...(isMaster && p.agentId && now < (p.pinAgentUntil ?? 0)
          ? { requiredAgentId: p.agentId }
          : {}),
      });
    } else if (p.state === "KILLING" && now - (p.killSentAt ?? 0) >= killResend) {
      actions.push({
        type: "kill",
        instance: name,
        procId: p.id,
        taskId: p.taskId,
        ...(p.agentId ? { agentId: p.agentId } : {}),
      });
    }
  }

  // Formation, on the nodes that run and report their view.
  const running = procs.filter((p) => cluster(p) !== undefined);
  const liveIds = new Set(running.map((p) => cluster(p)!.nodeId));
  const recordedIds = new Set(procs.flatMap((p) => (p.nodeId ? [p.nodeId] : [])));
  const ops = new Map<string, ClusterOp[]>();
  const addOp = (p: ProcessRecord, op: ClusterOp) => {
    if (busy(p)) return;
    const list = ops.get(p.id) ?? [];
    list.push(op);
    ops.set(p.id, list);
  };
  // 1. meet
  const anchor = running.find((p) => masters.includes(p.id) && !busy(p)) ??
    running.find((p) => !busy(p));
  const anchorView = cluster(anchor);
  if (anchor && anchorView) {
    for (const p of running) {
      const id = cluster(p)!.nodeId;
      if (p === anchor || anchorView.known.includes(id) || !p.host || !p.port || !p.busPort) {
        continue;
      }
      addOp(anchor, { op: "meet", host: p.host, port: p.port, busPort: p.busPort });
    }
  }
  // 4. forget (before slots: a ghost may still hold a shard's slots)
  const ghosts = new Set(inst.ghosts ?? []);
  for (const p of running) {
    for (const id of cluster(p)!.failing) if (!recordedIds.has(id)) ghosts.add(id);
  }
  for (const id of liveIds) ghosts.delete(id);
  if (ghosts.size > 0) {
    for (const p of running) {
      const c = cluster(p)!;
      // A replica cannot forget its own master: it is re-pointed first.
      const drop = c.known.filter((id) => ghosts.has(id) && id !== c.masterNodeId);
      if (drop.length > 0) addOp(p, { op: "forget", nodeIds: drop });
    }
  }
  const ghostsLeft = [...ghosts].filter((id) =>
    running.some((p) => cluster(p)!.known.includes(id))
  );
  const storedGhosts = inst.ghosts ?? [];
  if (
    running.length === procs.length && procs.every((p) => p.state === "RUNNING") &&
    storedGhosts.length > 0 && storedGhosts.some((id) => !ghostsLeft.includes(id))
  ) {
    actions.push({ type: "ghosts", instance: name, ghosts: ghostsLeft });
  }
  // 2. slots
  for (let k = 0; k < masters.length; k++) {
    const m = byId.get(masters[k]!);
    const c = cluster(m);
    if (!m || !c || c.masterNodeId || c.slots > 0 || !anchorView) continue;
    const size = ranges[k]![1] - ranges[k]![0] + 1;
    const knowsAll = [...liveIds].every((id) => id === c.nodeId || c.known.includes(id));
    if (!knowsAll || anchorView.slotsAssigned + size > 16384 || c.slotsAssigned + size > 16384) {
      continue;
    }
    if (ghostsLeft.length > 0) continue;
    addOp(m, { op: "addslots", ranges: [ranges[k]!] });
  }
  // 3. replicas
  for (const p of running) {
    const k = shardOf(p);
    if (masters[k] === p.id) continue;
    const m = byId.get(masters[k]!);
    const mc = cluster(m);
    const c = cluster(p)!;
    if (!mc || mc.masterNodeId || mc.slots === 0 || promoting === masters[k]) continue;
    if (c.masterNodeId === mc.nodeId || !c.known.includes(mc.nodeId)) continue;
    addOp(p, { op: "replicate", nodeId: mc.nodeId });
  }
  // The shard master a takeover did not reach (its command failed): again.
  for (let k = 0; k < masters.length; k++) {
    const m = byId.get(masters[k]!);
    const c = cluster(m);
    if (
      m && c?.masterNodeId && promoting === m.id && !busy(m) &&
      !actions.some((a) => a.type === "shard-failover" && a.procId === m.id)
    ) {
      addOp(m, { op: "takeover" });
    }
  }
  for (const [procId, list] of ops) {
    actions.push({ type: "cluster", instance: name, procId, ops: list });
  }

  const { status, reason } = waiting !== undefined
    ? { status: "FAILING_OVER" as const, reason: waiting }
    : clusterStatus(inst, procs, masters, promoting, input, ghostsLeft, nodeIdOf);
  if (status !== inst.status || reason !== inst.reason) {
    actions.push({
      type: "status",
      instance: name,
      status,
      ...(reason !== undefined ? { reason } : {}),
    });
  }
}

function clusterStatus(
  inst: InstanceRecord,
  procs: readonly ProcessRecord[],
  masters: readonly string[],
  promoting: string | undefined,
  input: PlanInput,
  ghostsLeft: readonly string[],
  nodeIdOf: (p: ProcessRecord | undefined) => string | undefined,
): { status: InstanceStatus; reason?: string } {
  const { stats } = input;
  const wanted = processCount(inst);
  const ranges = slotRanges(inst.masters);
  const byId = new Map(procs.map((p) => [p.id, p]));
  const running = procs.filter((p) => p.state === "RUNNING");
  const problems: string[] = [];
  const unavailable: string[] = [];
  const allIds = new Set(running.map((p) => nodeIdOf(p)).filter((id) => id !== undefined));
  let noStats = 0;
  for (let k = 0; k < masters.length; k++) {
    const m = byId.get(masters[k]!);
    const range = formatSlotRange(ranges[k]!);
    const ms = m ? stats.get(m.taskId) : undefined;
    if (!m || m.state !== "RUNNING") {
      unavailable.push(range);
      const replicaLeft = procs.some((p) =>
        (p.shard ?? 0) === k && p.id !== m?.id && p.state === "RUNNING"
      );
      if (inst.status !== "CREATING" && promoting !== masters[k] && !replicaLeft) {
        problems.push(
          `Shard ${k} (slots ${range}) unavailable: master ${
            masters[k]
          } lost with no replica; restarting it in place${
            m?.state === "LOST" && m.reason ? ` (${m.reason})` : ""
          }`,
        );
      }
      continue;
    }
    if (!ms) {
      noStats++;
      continue;
    }
    const size = ranges[k]![1] - ranges[k]![0] + 1;
    if (ms.role !== "master" || ms.cluster?.masterNodeId || (ms.cluster?.slots ?? 0) !== size) {
      problems.push(`Waiting for shard ${k}'s master ${m.id} to serve slots ${range}`);
    } else if (inst.slaves > 0 && (ms.goodSlaves ?? 1) < 1) {
      // min-replicas-to-write: writes would be refused until it counts a replica.
      problems.push(`Waiting for shard ${k}'s master ${m.id} to count its replica`);
    }
    for (const r of procs.filter((p) => (p.shard ?? 0) === k && p.id !== m.id)) {
      const rs = stats.get(r.taskId);
      if (r.state !== "RUNNING") continue;
      if (!rs) {
        noStats++;
        continue;
      }
      if (
        rs.role !== "slave" || !rs.inSync || !rs.cluster ||
        rs.cluster.masterNodeId !== ms.cluster?.nodeId
      ) {
        problems.push(`Waiting for replica ${r.id} to follow and sync with ${m.id}`);
      }
    }
  }
  for (const p of running) {
    const c = stats.get(p.taskId)?.cluster;
    if (!c) continue;
    const missing = [...allIds].filter((id) => id !== c.nodeId && !c.known.includes(id));
    if (missing.length > 0) problems.push(`Waiting for ${p.id} to meet ${missing.length} node(s)`);
    else if (c.state !== "ok") problems.push(`Waiting for ${p.id} to see cluster_state:ok`);
  }
  if (ghostsLeft.length > 0) {
    problems.push(`Forgetting ${ghostsLeft.length} failed node(s) on every node`);
  }
  const signatures = new Set(
    running.flatMap((p) => {
      const c = stats.get(p.taskId)?.cluster;
      return c ? [c.signature] : [];
    }),
  );
  if (signatures.size > 1) {
    problems.push("Waiting for the nodes to agree on who serves which slots");
  }
  const unknownOnly = inst.status === "RUNNING" && problems.length === 0 && noStats > 0;
  if (
    running.length === wanted && procs.length === wanted && problems.length === 0 &&
    (noStats === 0 || unknownOnly) && promoting === undefined && unavailable.length === 0
  ) {
    return { status: "RUNNING" };
  }
  const status: InstanceStatus = inst.status === "CREATING"
    ? "CREATING"
    : promoting !== undefined
    ? "FAILING_OVER"
    : "DEGRADED";
  const pending = procs.filter((p) => p.state === "PENDING").length;
  const staging = procs.filter((p) => p.state === "STAGING").length;
  const lost = procs.find((p) => p.state === "LOST" && p.reason);
  const shardDown = problems.find((p) => p.startsWith("Shard "));
  let reason: string;
  if (shardDown) reason = shardDown;
  else if (promoting !== undefined) reason = `Promoting ${promoting} to master of its shard`;
  else if (lost) reason = `Process ${lost.id}: ${lost.reason}`;
  else if (pending > 0) reason = `Waiting for ${pending} of ${wanted} processes to be placed`;
  else if (staging > 0) reason = `Waiting for ${staging} of ${wanted} processes to start`;
  else if (problems.length > 0) reason = problems[0]!;
  else reason = "Waiting for the nodes' reports";
  if (unavailable.length > 0 && inst.status !== "CREATING" && !shardDown) {
    reason += `; slots unavailable: ${unavailable.join(", ")}`;
  }
  return { status, reason };
}
