/**
 * Table-driven tests of the Redis Cluster pieces: the slot split, the
 * `CLUSTER NODES` summary, the shard anti-affinity of `match`, and the RC
 * planner (formation, failover, forgetting, status).
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  checkClusterOps,
  type ClusterNodeStats,
  clusterNodeStats,
  type ClusterOp,
  slotRanges,
} from "../lib/redis/cluster.ts";
import { match, type PendingProcess } from "../lib/scheduler/match.ts";
import { type Action, type ObservedStats, plan } from "../lib/scheduler/plan.ts";
import { shardOfProcess } from "../lib/scheduler/cluster_plan.ts";
import type { Offer } from "../lib/mesos/types.ts";
import { agentOffer } from "./_core.ts";
import type { InstanceRecord, ProcessRecord } from "../lib/model.ts";

const ID = (c: string) => c.repeat(40);

Deno.test("slotRanges splits 16384 slots as redis-cli --cluster create does", () => {
  const cases: [number, string][] = [
    [2, "0-8191 8192-16383"],
    [3, "0-5460 5461-10922 10923-16383"],
    [4, "0-4095 4096-8191 8192-12287 12288-16383"],
  ];
  for (const [m, want] of cases) {
    assertEquals(slotRanges(m).map(([a, b]) => `${a}-${b}`).join(" "), want, `${m} masters`);
  }
  for (const m of [5, 7, 10, 100]) {
    const r = slotRanges(m);
    assertEquals(r.length, m);
    assertEquals(r[0]![0], 0);
    assertEquals(r[m - 1]![1], 16383);
    for (let k = 1; k < m; k++) assertEquals(r[k]![0], r[k - 1]![1] + 1);
  }
});

Deno.test("shardOfProcess: masters first, then replicas round the shards", () => {
  assertEquals(
    Array.from({ length: 9 }, (_, i) => shardOfProcess(i + 1, 3)),
    [0, 1, 2, 0, 1, 2, 0, 1, 2],
  );
});

Deno.test("clusterNodeStats summarizes CLUSTER NODES and CLUSTER INFO", () => {
  const nodes = [
    `${ID("a")} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460`,
    `${ID("b")} 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922 10923`,
    `${ID("c")} 127.0.0.1:7002@17002 slave ${ID("a")} 0 0 1 connected`,
    `${ID("d")} 127.0.0.1:7003@17003 master,fail - 0 0 3 disconnected`,
    `${ID("e")} 127.0.0.1:7004@17004 handshake - 0 0 0 disconnected`,
  ].join("\n");
  const s = clusterNodeStats(nodes, "cluster_state:ok\r\ncluster_slots_assigned:10924\r\n")!;
  assertEquals(s.nodeId, ID("a"));
  assertEquals(s.state, "ok");
  assertEquals(s.slots, 5461);
  assertEquals(s.slotsAssigned, 10924);
  assertEquals(s.masterNodeId, undefined);
  assertEquals(s.known, [ID("b"), ID("c"), ID("d")]);
  assertEquals(s.failing, [ID("d")]);
  assertEquals(s.signature, `${ID("a")}:0-5460|${ID("b")}:10923,5461-10922`);
  assertEquals(clusterNodeStats("", ""), undefined);
});

Deno.test("checkClusterOps refuses bad ops, naming them", () => {
  const bad: unknown[] = [
    [],
    [{ op: "meet", host: "", port: 1, busPort: 2 }],
    [{ op: "addslots", ranges: [[5, 3]] }],
    [{ op: "addslots", ranges: [[0, 16384]] }],
    [{ op: "replicate", nodeId: "abc" }],
    [{ op: "forget", nodeIds: ["x"] }],
    [{ op: "flushall" }],
  ];
  for (const ops of bad) {
    let error: Error | undefined;
    try {
      checkClusterOps(ops);
    } catch (e) {
      error = e as Error;
    }
    assert(error instanceof TypeError, `refused ${JSON.stringify(ops)}`);
  }
  assertEquals(checkClusterOps([{ op: "takeover" }]).length, 1);
});

const offer = (agent: string): Offer => agentOffer(agent);

function clusterPending(masters: number, slaves: number, distribution: number): PendingProcess[] {
  const n = masters * (1 + slaves);
  return Array.from({ length: n }, (_, i) => ({
    instance: "rc",
    procId: `p${i + 1}`,
    role: i < masters ? "master" as const : "slave" as const,
    capacityMB: 10,
    distribution,
    instanceSize: n,
    group: `rc/shard${shardOfProcess(i + 1, masters)}`,
    needsBusPort: true,
  }));
}

Deno.test("match keeps a shard's master and replicas on different agents, with a bus port each", () => {
  const cases = [
    { masters: 3, slaves: 1, agents: 3, distribution: 2 },
    { masters: 3, slaves: 2, agents: 3, distribution: 3 },
    { masters: 4, slaves: 1, agents: 2, distribution: 4 },
    { masters: 5, slaves: 2, agents: 4, distribution: 4 },
  ];
  for (const c of cases) {
    const offers = Array.from({ length: c.agents }, (_, i) => offer(`A${i}`));
    const pend = clusterPending(c.masters, c.slaves, c.distribution);
    const r = match(pend, offers, {}, { executorId: "mrr-executor" });
    const agentOf = new Map<string, string>();
    for (const l of r.launches) {
      const used = new Set<number>();
      for (const t of l.tasks) {
        agentOf.set(t.procId, l.agentId);
        assert(t.busPort !== undefined, `${t.procId} has a bus port`);
        for (const p of [t.port, t.busPort!]) {
          assert(!used.has(p), `port ${p} given twice on ${l.agentId}`);
          used.add(p);
        }
      }
    }
    assertEquals(agentOf.size, pend.length, `${JSON.stringify(c)}: all placed`);
    for (let k = 0; k < c.masters; k++) {
      const agents = pend.filter((p) => p.group === `rc/shard${k}`).map((p) =>
        agentOf.get(p.procId)
      );
      assertEquals(
        new Set(agents).size,
        Math.min(agents.length, c.agents),
        `${JSON.stringify(c)}: shard ${k} on ${agents.join(",")}`,
      );
    }
  }
});

// ---- the planner ----

function rc(patch: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    name: "rc",
    type: "RC",
    status: "CREATING",
    capacityMB: 10,
    masters: 2,
    slaves: 1,
    distribution: 2,
    shardMasters: ["p1", "p2"],
    rev: 1,
    createdAt: 1,
    updatedAt: 1,
    ...patch,
  };
}

function proc(n: number, patch: Partial<ProcessRecord> = {}): ProcessRecord {
  return {
    id: `p${n}`,
    taskId: `rc.p${n}.1`,
    role: n <= 2 ? "master" : "slave",
    state: "RUNNING",
    shard: shardOfProcess(n, 2),
    host: "127.0.0.1",
    port: 7000 + n,
    busPort: 17000 + n,
    agentId: `A${n}`,
    nodeId: ID(String(n)),
    updatedAt: 1,
    ...patch,
  };
}

const ALL = [1, 2, 3, 4].map((n) => ID(String(n)));

/** A node's view: it knows `known` (default: all others), serves `slots`, follows `master`. */
function view(n: number, patch: Partial<ClusterNodeStats> = {}): ClusterNodeStats {
  return {
    nodeId: ID(String(n)),
    state: "ok",
    slots: n === 1 ? 8192 : n === 2 ? 8192 : 0,
    slotsAssigned: 16384,
    known: ALL.filter((id) => id !== ID(String(n))),
    failing: [],
    signature: "sig",
    ...(n === 3 ? { masterNodeId: ID("1") } : n === 4 ? { masterNodeId: ID("2") } : {}),
    ...patch,
  };
}

function obs(n: number, patch: Partial<ClusterNodeStats> = {}, extra: Partial<ObservedStats> = {}) {
  const c = view(n, patch);
  return [`rc.p${n}.1`, {
    role: c.masterNodeId ? "slave" : "master",
    inSync: true,
    replOffset: 100,
    cluster: c,
    ...extra,
  } as ObservedStats] as const;
}

function run(
  inst: InstanceRecord,
  procs: ProcessRecord[],
  stats: (readonly [string, ObservedStats])[],
  inflight: string[] = [],
): Action[] {
  return plan({
    instances: [inst],
    processes: { rc: procs },
    stats: new Map(stats),
    inflight: new Set(inflight),
    now: 10_000,
  }).actions;
}

const of = (actions: Action[], type: Action["type"]) => actions.filter((a) => a.type === type);

Deno.test("RC plan: a formed cluster is RUNNING and nothing is sent", () => {
  const procs = [1, 2, 3, 4].map((n) => proc(n));
  const actions = run(rc(), procs, [obs(1), obs(2), obs(3), obs(4)]);
  assertEquals(actions, [{ type: "status", instance: "rc", status: "RUNNING" }]);
});

Deno.test("RC plan: formation steps, each from what the nodes report", () => {
  const procs = [1, 2, 3, 4].map((n) => proc(n));
  const alone = (_n: number) => ({
    known: [],
    slots: 0,
    slotsAssigned: 0,
    masterNodeId: undefined,
  });
  const cases: {
    name: string;
    stats: (readonly [string, ObservedStats])[];
    want: { procId: string; ops: ClusterOp[] }[];
  }[] = [
    {
      name: "nobody knows anybody: the anchor (p1) meets the others",
      stats: [1, 2, 3, 4].map((n) => obs(n, alone(n))),
      want: [{
        procId: "p1",
        ops: [2, 3, 4].map((n) => ({
          op: "meet",
          host: "127.0.0.1",
          port: 7000 + n,
          busPort: 17000 + n,
        })),
      }],
    },
    {
      name: "all met, no slots: each shard master gets its range",
      stats: [1, 2, 3, 4].map((n) =>
        obs(n, { ...alone(n), known: ALL.filter((id) => id !== ID(String(n))) })
      ),
      want: [
        { procId: "p1", ops: [{ op: "addslots", ranges: [[0, 8191]] }] },
        { procId: "p2", ops: [{ op: "addslots", ranges: [[8192, 16383]] }] },
      ],
    },
    {
      name: "slots served: the replicas attach to their shard masters by id",
      stats: [
        obs(1),
        obs(2),
        obs(3, { masterNodeId: undefined }),
        obs(4, { masterNodeId: undefined }),
      ],
      want: [
        { procId: "p3", ops: [{ op: "replicate", nodeId: ID("1") }] },
        { procId: "p4", ops: [{ op: "replicate", nodeId: ID("2") }] },
      ],
    },
    {
      name: "a node lists a failed node nobody owns: every node forgets it",
      stats: [1, 2, 3, 4].map((n) =>
        obs(n, {
          known: [...ALL.filter((id) => id !== ID(String(n))), ID("9")],
          failing: [ID("9")],
        })
      ),
      want: [1, 2, 3, 4].map((n) => ({
        procId: `p${n}`,
        ops: [{ op: "forget", nodeIds: [ID("9")] }],
      })),
    },
  ];
  for (const c of cases) {
    const got = of(run(rc(), procs, c.stats), "cluster").map((a) =>
      a.type === "cluster" ? { procId: a.procId, ops: a.ops } : undefined
    );
    assertEquals(got, c.want, c.name);
  }
  // A node with a command in flight is not sent another.
  const busy = run(rc(), procs, [1, 2, 3, 4].map((n) => obs(n, alone(n))), ["rc.p1.1"]);
  assert(!of(busy, "cluster").some((a) => a.type === "cluster" && a.procId === "p1"), "p1 busy");
});

Deno.test("RC plan: a lost shard master is replaced by its replica with the highest offset", () => {
  const procs = [
    proc(1, { state: "LOST", lastState: "TASK_FAILED", retryAt: 0 }),
    proc(2),
    proc(3),
    proc(4),
  ];
  const actions = run(rc({ status: "RUNNING" }), procs, [obs(2), obs(3), obs(4)]);
  assertEquals(of(actions, "shard-failover"), [{
    type: "shard-failover",
    instance: "rc",
    shard: 0,
    procId: "p3",
    oldMasterId: "p1",
  }]);
  assertEquals(of(actions, "relaunch"), [], "the lost master waits for the promotion");
  assertEquals(of(actions, "fence"), [], "a failed task needs no fence");
  const st = of(actions, "status")[0];
  assert(st?.type === "status" && st.status === "FAILING_OVER", JSON.stringify(st));

  // Unreachable (may still run): fenced first.
  const unsure = [proc(1, { state: "LOST", lastState: "TASK_UNREACHABLE" }), ...procs.slice(1)];
  assertEquals(
    of(run(rc({ status: "RUNNING" }), unsure, [obs(2), obs(3), obs(4)]), "fence").length,
    1,
  );

  // A replica that does not follow the lost master is no candidate: the master restarts in place.
  const stray = run(rc({ status: "RUNNING" }), procs, [
    obs(2),
    obs(3, { masterNodeId: ID("2") }),
    obs(4),
  ]);
  assertEquals(of(stray, "shard-failover"), []);
  assertEquals(of(stray, "relaunch").map((a) => a.type === "relaunch" && a.procId), ["p1"]);
});

Deno.test("RC plan: a shard with no replica restarts its master in place and says which slots are down", () => {
  const procs = [
    proc(1, { state: "PENDING", agentId: "A1", port: 7001, pinAgentUntil: 20_000 }),
    proc(2),
    proc(3, { state: "LOST", retryAt: 50_000 }),
    proc(4),
  ];
  const r = plan({
    instances: [rc({ status: "RUNNING" })],
    processes: { rc: procs },
    stats: new Map([obs(2), obs(4)]),
    inflight: new Set(),
    now: 10_000,
  });
  const p1 = r.launchable.find((p) => p.procId === "p1");
  assertEquals(p1?.requiredAgentId, "A1");
  assertEquals(p1?.role, "master");
  const st = of(r.actions, "status")[0];
  assert(
    st?.type === "status" && st.status === "DEGRADED" &&
      /Shard 0 \(slots 0-8191\) unavailable/.test(st.reason ?? ""),
    JSON.stringify(st),
  );
});

Deno.test("RC plan: ghosts are forgotten, then cleared; a promoted replica ends the failover", () => {
  const procs = [1, 2, 3, 4].map((n) => proc(n));
  const ghost = ID("9");
  const knowing = [1, 2, 3, 4].map((n) =>
    obs(n, { known: [...ALL.filter((id) => id !== ID(String(n))), ghost] })
  );
  const a1 = run(rc({ status: "RUNNING", ghosts: [ghost] }), procs, knowing);
  assertEquals(of(a1, "cluster").length, 4);
  assertEquals(of(a1, "ghosts"), []);
  const a2 = run(
    rc({ status: "RUNNING", ghosts: [ghost] }),
    procs,
    [1, 2, 3, 4].map((n) => obs(n)),
  );
  assertEquals(of(a2, "ghosts"), [{ type: "ghosts", instance: "rc", ghosts: [] }]);

  const promoted = run(
    rc({ status: "FAILING_OVER", promotingId: "p1" }),
    procs,
    [obs(1), obs(2), obs(3), obs(4)],
  );
  assertEquals(of(promoted, "promoted"), [{ type: "promoted", instance: "rc", procId: "p1" }]);
});

Deno.test("RC plan: a changed node id is recorded; DELETING kills every node", () => {
  const procs = [1, 2, 3, 4].map((n) => proc(n));
  const actions = run(rc(), procs, [obs(1), obs(2), obs(3, { nodeId: ID("7") }), obs(4)]);
  assertEquals(of(actions, "node-id"), [{
    type: "node-id",
    instance: "rc",
    procId: "p3",
    nodeId: ID("7"),
  }]);
  const del = run(rc({ status: "DELETING" }), procs, []);
  assertEquals(of(del, "kill").length, 4);
});

Deno.test("RC plan: with two replicas to choose from, they are asked for their offsets first", () => {
  const inst = rc({ status: "RUNNING", slaves: 2 });
  const ids = [1, 2, 3, 4, 5, 6].map((n) => ID(String(n)));
  const procs = [1, 2, 3, 4, 5, 6].map((n) =>
    proc(n, {
      shard: shardOfProcess(n, 2),
      ...(n === 1 ? { state: "LOST" as const, lastState: "TASK_FAILED", retryAt: 0 } : {}),
    })
  );
  const follows = (n: number) => (shardOfProcess(n, 2) === 0 ? ID("1") : ID("2"));
  const stats = [2, 3, 4, 5, 6].map((n) =>
    obs(n, {
      known: ids.filter((id) => id !== ID(String(n))),
      ...(n > 2 ? { masterNodeId: follows(n) } : {}),
    }, { replOffset: n === 3 ? 500 : 100 })
  );
  const base = {
    instances: [inst],
    processes: { rc: procs },
    stats: new Map(stats),
    inflight: new Set<string>(),
    now: 10_000,
  };
  const asked = plan({ ...base, offsetQueries: new Map() }).actions;
  assertEquals(of(asked, "query-offsets"), [{
    type: "query-offsets",
    instance: "rc",
    procIds: ["p3", "p5"],
  }]);
  assertEquals(of(asked, "shard-failover"), []);
  assertEquals(of(asked, "relaunch"), [], "the lost master waits for the answers");
  // The answers decide, not the stats (p3 reported more a second ago).
  const answered = plan({
    ...base,
    offsetQueries: new Map([["rc", { done: true, offsets: { p3: 700, p5: 900 } }]]),
  }).actions;
  assertEquals(of(answered, "shard-failover").map((a) => a.type === "shard-failover" && a.procId), [
    "p5",
  ]);
});
